"""What a role's run changed or, in check mode, would change (module_utils/_rollout/changes.py): the rolling
playbooks roll out only the hosts where this list is not empty."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._rollout.changes import changed_steps, would_change

SKIPPED_BY_WHEN = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
COMMAND_IN_CHECK_MODE = {"changed": False, "skipped": True, "rc": 0,
                         "msg": "Command would have run if not in check mode"}
MODULE_WITHOUT_CHECK_MODE = {"changed": False, "skipped": True,
                             "msg": "remote module (community.general.foo) does not support check mode"}
ACTION_WITHOUT_CHECK_MODE = {"changed": False, "skipped": True,
                             "msg": "This action (ansible.builtin.foo) does not support check mode."}


@pytest.mark.parametrize("result, expected", [
    ({"changed": True}, True),
    ({"changed": False}, False),
    ({}, False),  # a step the run did not reach (--tags): the role passes default({})
    (SKIPPED_BY_WHEN, False),
    (COMMAND_IN_CHECK_MODE, True),
    (MODULE_WITHOUT_CHECK_MODE, True),
    (ACTION_WITHOUT_CHECK_MODE, True),
    (True, True),  # a decision the role made itself (reload or restart due)
    (False, False),
    (None, False),
    ({"changed": False, "results": [{"changed": False}, {"changed": True}]}, True),  # one item of a loop
    ({"changed": False, "results": [SKIPPED_BY_WHEN, {"changed": False}]}, False),
    ({"changed": False, "results": [SKIPPED_BY_WHEN, COMMAND_IN_CHECK_MODE]}, True),
    ({"changed": False, "skipped": True, "results": [SKIPPED_BY_WHEN, SKIPPED_BY_WHEN]}, False),
    # not skipped: the message alone is not enough
    ({"changed": False, "failed": False, "msg": "not in check mode"}, False),
])
def test_would_change(result, expected):
    assert would_change(result) is expected


def test_changed_steps_names_the_steps_sorted():
    steps = {"services": {"changed": False, "results": [{"changed": True}]}, "license": {"changed": False},
             "activation": True, "swap off": COMMAND_IN_CHECK_MODE, "mounts": SKIPPED_BY_WHEN}
    assert changed_steps(steps) == ["activation", "services", "swap off"]
    assert changed_steps({"license": {"changed": False}, "reload": False}) == []


def test_changed_steps_refuses_what_is_not_a_mapping():
    with pytest.raises(TypeError, match="expects a mapping of step name to registered result, got a list"):
        changed_steps(["license"])
    with pytest.raises(TypeError, match="got a string"):
        changed_steps("license")
