#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmta_queue
short_description: Pause, resume, retry or delete PowerMTA queues, or disable a source IP toward them
version_added: 0.2.0
description:
  - Runs PowerMTA's own queue commands (v5.0 User's Guide section 6.3) on the host it runs on, for the queues chosen
    by O(queue) (C(domain[/vmta]) as PowerMTA names them, C(*) allowed) or by the fleet's names O(isp), O(vmta),
    O(pool) and O(ip). The action plugin resolves those names on the controller, from the fleet model
    (C(mailops_fleet)), into queue patterns of this host; a host with none of the named vMTAs is left alone.
  - It reads the queues first (C(pmta show queues --paused=yes|no), section 6.3.13), so a queue already in the wanted
    state is not touched and a second run reports no change.
  - V(paused) runs C(pmta pause queue) (6.3.23) for a pattern that has a running queue, and for an exact
    C(domain/vmta) not listed yet, so mail that arrives later waits too. V(resumed) runs C(pmta resume queue)
    (6.3.25) where a matching queue is paused. V(retried) runs C(pmta schedule) (6.3.10) where recipients are
    queued. V(deleted) runs C(pmta delete --queue=) (6.3.22) where recipients are queued; it needs O(confirm).
  - V(source_disabled) and V(source_enabled) run C(pmta disable source) / C(pmta enable source) (6.3.33, 6.3.34) for
    O(source_ip) toward the queues, read back with C(pmta show disabled sources) (6.3.35).
author:
  - mailops.powermta contributors (@mailops)
options:
  state:
    description: What the selected queues should be.
    type: str
    required: true
    choices: [paused, resumed, retried, deleted, source_disabled, source_enabled]
  queue:
    description:
      - Queue patterns C(domain[/vmta]) (section 6.3.13), e.g. C(gmail.com/tx-01), C(*/tx-01), C(gmail.rollup/*).
        An omitted vMTA means every vMTA. Added to what O(isp), O(vmta), O(pool) and O(ip) select.
    type: list
    elements: str
    default: []
  isp:
    description:
      - ISP groups, by their C(powermta_isp_policies) names. Each selects its recipient domains and its rollup
        queue C(NAME.rollup) (section 10.17). C(other) cannot be chosen (it is every other domain).
    type: list
    elements: str
    default: []
  vmta:
    description: vMTA names (C(powermta_vmtas)).
    type: list
    elements: str
    default: []
  pool:
    description: Pool names; the pool's vMTAs on this host.
    type: list
    elements: str
    default: []
  ip:
    description: vMTA IP addresses; the vMTA that sends from each.
    type: list
    elements: str
    default: []
  fleet:
    description:
      - The fleet model to resolve O(isp), O(vmta), O(pool) and O(ip) with. Default the play's C(mailops_fleet)
        (registered by P(mailops.powermta.fleet_model#module)).
    type: dict
  mx_rollup:
    description: Whether the fleet renders rollup queues (C(powermta_mx_rollup)); default that variable, else true.
    type: bool
  confirm:
    description: Must be V(true) for O(state=deleted); deleting queued mail cannot be undone.
    type: bool
    default: false
  source_ip:
    description: The IP to disable or enable toward the queues (O(state=source_disabled) or V(source_enabled)).
    type: str
  reenable_after:
    description:
      - With O(state=source_disabled), PowerMTA enables the source again after this TIME-INTERVAL (C(30m), C(2h),
        C(1d); C(--reenable-after), section 6.3.33).
    type: str
  retry_recipients:
    description:
      - With O(state=retried), also retry recipients held for C(retry-recipients-after) (C(--retry-recipients)).
    type: bool
    default: false
  pmta_command:
    description: Path of the C(pmta) command.
    type: path
    default: /usr/sbin/pmta
attributes:
  action:
    description: >-
      Indicates this has a corresponding action plugin so some parts of the options can be executed on the
      controller.
    support: full
    details: The fleet names are resolved into queue patterns on the controller.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the queues and returns the commands it would run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff lists the pmta commands that run (or would run).
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: partial
    details: >-
      V(paused), V(resumed) and the source states read the current state first. V(retried) and V(deleted) act
      while recipients are queued in the selected queues.
notes:
  - PowerMTA has no documented output for C(pause queue) on a queue that does not exist yet; the test double
    creates the queue paused, so mail that arrives later waits.
seealso:
  - name: PowerMTA queue commands
    description: docs/runbooks.md (incident, drain, retire) in this collection.
    link: https://github.com/mailops/powermta/blob/main/docs/runbooks.md
"""

EXAMPLES = r"""
- name: Gmail throttles 203.0.113.11 -- hold its gmail mail
  mailops.powermta.pmta_queue:
    state: paused
    isp: [gmail]
    ip: [203.0.113.11]

- name: Let it go again
  mailops.powermta.pmta_queue:
    state: resumed
    isp: [gmail]
    ip: [203.0.113.11]

- name: Retry the yahoo queues of one vMTA now
  mailops.powermta.pmta_queue:
    state: retried
    queue: ["yahoo.com/tx-01"]

- name: Stop one IP toward one domain for two hours
  mailops.powermta.pmta_queue:
    state: source_disabled
    source_ip: 203.0.113.11
    queue: ["example.net/mk-eu-01"]
    reenable_after: 2h

- name: Drop a queue of mail to a dead domain
  mailops.powermta.pmta_queue:
    state: deleted
    queue: ["dead-domain.example/*"]
    confirm: true
  register: deleted
"""

RETURN = r"""
patterns:
  description: The queue patterns of this host the task acted on (resolved from the fleet names, plus O(queue)).
  returned: always
  type: list
  elements: str
commands:
  description: The C(pmta) commands run (in check mode, that would run).
  returned: always
  type: list
  elements: str
queues:
  description: The selected queues before the change, C({queue, rcpt, kbytes, paused}).
  returned: always
  type: list
  elements: dict
queues_after:
  description: The selected queues after the commands ran.
  returned: when commands ran
  type: list
  elements: dict
deleted:
  description: With O(state=deleted), what was deleted, C({queue, rcpt, kbytes}) per queue.
  returned: when O(state=deleted)
  type: list
  elements: dict
outputs:
  description: What each command printed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._operations.queue import (  # noqa: E402
    QueueError,
    apply,
    diff,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "required": True,
                      "choices": ["paused", "resumed", "retried", "deleted", "source_disabled", "source_enabled"]},
            "queue": {"type": "list", "elements": "str", "default": []},
            "isp": {"type": "list", "elements": "str", "default": []},
            "vmta": {"type": "list", "elements": "str", "default": []},
            "pool": {"type": "list", "elements": "str", "default": []},
            "ip": {"type": "list", "elements": "str", "default": []},
            "fleet": {"type": "dict"},
            "mx_rollup": {"type": "bool"},
            "confirm": {"type": "bool", "default": False},
            "source_ip": {"type": "str"},
            "reenable_after": {"type": "str"},
            "retry_recipients": {"type": "bool", "default": False},
            "pmta_command": {"type": "path", "default": "/usr/sbin/pmta"},
        },
        required_if=[("state", "source_disabled", ["source_ip"]), ("state", "source_enabled", ["source_ip"])],
        supports_check_mode=True,
    )
    params = module.params
    if any(params[name] for name in ("isp", "vmta", "pool", "ip")):
        module.fail_json(msg="isp, vmta, pool and ip are resolved by the action plugin; call the module as "
                             "mailops.powermta.pmta_queue (not with ansible.builtin.raw or a module path)")
    if params["state"] == "deleted" and not params["confirm"]:
        module.fail_json(msg="state=deleted removes queued mail for good: add confirm: true to the task")
    if not params["queue"]:
        module.exit_json(changed=False, patterns=[], commands=[], queues=[], outputs=[],
                         msg="no queue of this host is selected")

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    try:
        result = apply(run, params["state"], params["queue"], pmta=params["pmta_command"],
                       check_mode=module.check_mode, source_ip=params["source_ip"],
                       reenable_after=params["reenable_after"], retry_recipients=params["retry_recipients"])
    except QueueError as exc:
        module.fail_json(msg="pmta_queue: %s" % exc)
    if module._diff:
        result["diff"] = diff(params["state"], result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
