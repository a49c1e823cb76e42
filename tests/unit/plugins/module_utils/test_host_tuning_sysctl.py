"""host_tuning's sysctl layers: merged once in Python, the nofile ceiling, the skipped annotation."""

from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning import sysctl as hts

PROFILE = [
    {"name": "fs.file-max", "value": 2097152, "comment": "open files"},
    {"name": "net.core.somaxconn", "value": 4096},
    {"name": "vm.swappiness", "value": 1},
]


def layers(all_hosts=None, group=None, host=None):
    return [{"variable": "host_tuning_sysctl", "items": all_hosts or []},
            {"variable": "host_tuning_group_sysctl", "items": group or []},
            {"variable": "host_tuning_host_sysctl", "items": host or []}]


def test_later_layers_win_keep_the_first_position_and_absent_drops():
    items, problems = hts.merge_layers(PROFILE, layers(
        all_hosts=[{"name": "net.core.somaxconn", "value": 8192}, {"name": "fs.nr_open", "value": 2097152}],
        group=[{"name": "vm.swappiness", "state": "absent"}],
        host=[{"name": "net.core.somaxconn", "value": 16384}]))
    assert problems == []
    assert items == [{"name": "fs.file-max", "value": 2097152, "comment": "open files"},
                     {"name": "net.core.somaxconn", "value": 16384},
                     {"name": "fs.nr_open", "value": 2097152}]
    assert PROFILE[1]["value"] == 4096  # the profile is not modified


def test_no_layers_give_the_profile():
    assert hts.merge_layers(PROFILE, layers()) == (PROFILE, [])


def test_a_name_twice_in_one_layer_is_a_problem_naming_the_variable():
    twice = [{"name": "a.b", "value": 1}, {"name": "a.b", "value": 2}]
    items, problems = hts.merge_layers(PROFILE, layers(group=twice))
    assert items == []
    assert problems == ["host_tuning_group_sysctl names 'a.b' twice; one list holds each name once"
                        " (put an override in a later layer)"]


def test_an_item_without_name_is_a_problem_naming_the_variable():
    _merged, problems = hts.merge_layers(PROFILE, layers(host=[{"value": 1}]))
    assert problems and problems[0].startswith("host_tuning_host_sysctl item 0 must be a dict with a 'name' key")


def test_limit_nofile_against_the_kernel_default_and_a_raised_nr_open():
    assert hts.nr_open(PROFILE) == 1048576
    assert hts.check_limit_nofile(1048576, PROFILE) == []
    assert hts.check_limit_nofile(2000000, PROFILE) == [
        "host_tuning_limit_nofile: 2000000 exceeds fs.nr_open (1048576); lower it or add fs.nr_open to"
        " host_tuning_sysctl"]
    raised = PROFILE + [{"name": "fs.nr_open", "value": "2097152"}]
    assert hts.nr_open(raised) == 2097152
    assert hts.check_limit_nofile(2000000, raised) == []
    assert hts.check_limit_nofile(0, PROFILE) == []  # 0: not checked


def test_a_bad_nr_open_value_falls_back_to_the_default():
    assert hts.nr_open([{"name": "fs.nr_open", "value": "lots"}]) == 1048576


def test_skipped_reasons_are_attached_in_order():
    skipped = [{"name": "net.core.somaxconn", "value": 4096, "reason": "read-only here (container)"}]
    assert [(i["name"], i["skipped"]) for i in hts.annotate_skipped(PROFILE, skipped)] == [
        ("fs.file-max", ""), ("net.core.somaxconn", "read-only here (container)"), ("vm.swappiness", "")]
