import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.layers import LayerError, merge_by_name


def test_later_layer_overrides_keys_and_keeps_first_position():
    base = [{"name": "a", "rate": 1, "x": 1}, {"name": "b", "rate": 2}]
    host = [{"name": "a", "rate": 10}, {"name": "c", "rate": 3}]
    assert merge_by_name(base, host) == [
        {"name": "a", "rate": 10, "x": 1},
        {"name": "b", "rate": 2},
        {"name": "c", "rate": 3},
    ]


def test_absent_removes_and_state_is_dropped():
    assert merge_by_name([{"name": "a"}, {"name": "b", "state": "present"}], [{"name": "a", "state": "absent"}]) == [
        {"name": "b"}
    ]


def test_none_layers_are_empty_and_inputs_not_mutated():
    base = [{"name": "a", "v": [1]}]
    out = merge_by_name(base, None, [{"name": "a", "w": 2}])
    out[0]["v"].append(9)
    assert base == [{"name": "a", "v": [1]}]


@pytest.mark.parametrize(
    "layer, message",
    [
        ({"name": "a"}, "must be a list"),
        ([{"rate": 1}], "must be a dict with a 'name' key"),
        ([{"name": "a", "state": "gone"}], "state must be"),
    ],
)
def test_bad_layers_name_the_problem(layer, message):
    with pytest.raises(LayerError, match=message):
        merge_by_name(layer, layer_names=["powermta_pools"])
