"""The rolling plays take only the hosts their plan found changes on (playbooks/host_tuning.yml,
playbooks/powermta.yml): the plan is the role in check mode, and the role's last task lists the steps that
changed or would change (powermta_changes, host_tuning_changes). A step missing from that list would let a host
with a change be left out of the rollout, so every task that can change a host registers its result and the
list reads it. Read-only tasks (checks, reads, renders on the controller) and tasks with `changed_when: false`
need not; handlers, rescue and always sections follow a change of a listed step.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SUMMARY = "Record what this run changed or would change on the host"
READ_ONLY = {
    "ansible.builtin.assert", "ansible.builtin.debug", "ansible.builtin.fail", "ansible.builtin.set_fact",
    "ansible.builtin.setup", "ansible.builtin.meta", "ansible.builtin.include_role", "ansible.builtin.import_tasks",
    "ansible.builtin.include_tasks",
    "mailops.powermta.fleet_model", "mailops.powermta.host_tuning_probe", "mailops.powermta.pmta_host_state",
    "mailops.powermta.pmta_config_render", "mailops.powermta.pmta_config_lint", "mailops.powermta.pmta_dkim_keys_check",
    "mailops.powermta.pmta_activation_gate", "community.crypto.openssl_privatekey_info",
    "community.crypto.openssl_csr_pipe",
}
TASK_KEYS = {"name", "when", "register", "loop", "loop_control", "vars", "tags", "delegate_to", "become",
             "check_mode", "changed_when", "failed_when", "no_log", "notify", "throttle", "run_once", "listen",
             "environment", "ignore_errors", "delegate_facts", "args"}


def _changing_tasks(tasks, path):
    """(file, task name, register) of every task in TASKS (blocks included, not rescue/always) that can change."""
    found = []
    for task in tasks or []:
        if "block" in task:
            found += _changing_tasks(task["block"], path)
            continue
        module = next(key for key in task if key not in TASK_KEYS)
        if module in READ_ONLY or task.get("changed_when") is False:
            continue
        found.append((path.name, task.get("name"), task.get("register")))
    return found


@pytest.mark.parametrize("role, fact", [("powermta", "powermta_changes"), ("host_tuning", "host_tuning_changes")])
def test_every_step_that_can_change_the_host_is_in_the_rollout_plan(role, fact):
    tasks_dir = ROOT / "roles" / role / "tasks"
    main = yaml.safe_load((tasks_dir / "main.yml").read_text())
    summary = [task for task in main if task.get("name") == SUMMARY]
    assert len(summary) == 1 and summary[0].get("tags") == ["always"], "main.yml must end with %r" % SUMMARY
    assert main[-1] is summary[0], "the record must be the role's last task (after the handlers' flush)"
    listed = summary[0]["ansible.builtin.set_fact"][fact]
    # Task files of the main entry point (apply.yml is also the warmup role's entry point; it is imported here).
    changing = []
    for path in sorted(tasks_dir.glob("*.yml")):
        if path.name in ("lint.yml",):
            continue
        changing += _changing_tasks(yaml.safe_load(path.read_text()), path)
    assert len(changing) >= 8
    unregistered = [(f, name) for f, name, register in changing if not register]
    assert unregistered == []
    unlisted = [(f, name, register) for f, name, register in changing
                if not re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(register), listed)]
    assert unlisted == []


@pytest.mark.parametrize("playbook, fact", [("powermta.yml", "powermta_changes"),
                                            ("host_tuning.yml", "host_tuning_changes")])
def test_the_rollout_takes_the_hosts_the_plan_found_changes_on(playbook, fact):
    plays = [play for play in yaml.safe_load((ROOT / "playbooks" / playbook).read_text()) if "roles" in play]
    plan, rollout = plays[-2], plays[-1]
    assert plan["check_mode"] is True and plan["vars"]["mailops_planning"] is True and plan["any_errors_fatal"] is True
    assert "serial" not in plan and plan["diff"] is False
    group_by = plan["tasks"][0]
    assert group_by["when"] == "%s | length > 0" % fact and group_by["tags"] == ["always"]
    # The fleet group's order, filtered (group_by adds hosts in the order they answer; `intersect` goes through a
    # set): the canary is the first host of the inventory that has a change, as before the plan.
    assert rollout["hosts"].startswith("{{ groups[mailops_fleet_group | default('pmta_fleet')]")
    assert "| select('in', groups['%s']" % group_by["ansible.builtin.group_by"]["key"] in rollout["hosts"]
    assert "serial" in rollout and rollout["max_fail_percentage"] == 0
    assert plan["roles"][0]["role"] == rollout["roles"][0]["role"]
