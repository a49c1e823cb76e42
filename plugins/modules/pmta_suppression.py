#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pmta_suppression
short_description: Fleet-wide suppression CSV (hard bounces, complaints, repeated soft bounces) from PowerMTA accounting
version_added: 0.1.0
description:
  - Two steps, used by C(playbooks/suppression.yml).
  - O(step=read) runs on each PowerMTA host. It reads only what the accounting files gained since the host's
    cursor (O(state_file), a byte offset per file known by device and inode, so PowerMTA's own rotation by
    C(max-size) or C(move-to) loses and repeats nothing), classifies the C(b), C(rb) and C(f) records and
    returns the new suppressing events per address (RV(events)), the host's soft-bounce window (RV(soft)) and
    the new cursor (RV(state_text)). It changes nothing; the playbook saves RV(state_text) on the host once the
    export is written.
  - O(step=export) runs once on the controller. It merges the hosts' results into the CSV O(dest) (one row per
    address; columns C(email,reason,category,first_seen,last_seen,count), what an injector's suppression import
    such as Mumara's takes) and replaces it atomically when it changed.
  - "Classification with PowerMTA's bounce categories (C(bounceCat)): C(f) records are always suppressed (reason
    C(complaint)); O(hard_categories) on the first C(b)/C(rb) record (reason C(hard-bounce)); O(soft_categories)
    once an address has O(soft_threshold) of them within O(soft_window_days) over the whole fleet (reason
    C(soft-bounce)); any other category (policy-related, spam-related ...) is about the sender and suppresses nothing."
author:
  - mailops.powermta contributors (@mailops)
options:
  step:
    description: V(read) on a PowerMTA host, V(export) on the controller.
    type: str
    choices: [read, export]
    required: true
  acct_files:
    description:
      - O(step=read). The host's C(acct_files) from the fleet model (items with C(name), C(records), C(directives),
        C(enabled)); the files holding C(b), C(rb) or C(f) records are read, in their own directory and in their
        C(move-to) directory, with PowerMTA's date and sequence suffixes (C(acct-2026-05-01-0000.csv)).
    type: list
    elements: dict
    default: []
  paths:
    description: O(step=read). More accounting files or glob patterns to read.
    type: list
    elements: path
    default: []
  state_file:
    description: O(step=read). The host's cursor state (read here, written by the playbook).
    type: path
    default: /var/lib/mailops-powermta/suppression-state.json
  hard_categories:
    description: Bounce categories suppressed on the first bounce.
    type: list
    elements: str
    default: [bad-mailbox, inactive-mailbox, bad-domain]
  soft_categories:
    description: Bounce categories suppressed after O(soft_threshold) bounces within O(soft_window_days).
    type: list
    elements: str
    default: [quota-issues, message-expired, no-answer-from-host, bad-connection, routing-errors]
  soft_window_days:
    description: O(step=read). Days a soft bounce counts for.
    type: int
    default: 7
  results:
    description: O(step=export). The O(step=read) results of every host (each with RV(events) and RV(soft)).
    type: list
    elements: dict
    default: []
  soft_threshold:
    description: O(step=export). Soft bounces of one address, fleet-wide within the window, that suppress it.
    type: int
    default: 3
  dest:
    description: O(step=export). The CSV file on the controller; its directory must exist.
    type: path
  mode:
    description: O(step=export). File mode of O(dest) (it holds recipient addresses).
    type: raw
    default: "0640"
notes:
  - O(step=read) needs only the Python standard library on the PowerMTA host.
  - Rows already in O(dest) are kept (an address is never removed by a run); a record read twice cannot happen
    while the cursor is saved after each export.
seealso:
  - module: mailops.powermta.pmta_acct_stats
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The export's diff shows only the rows added or changed.
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
    details: With no new accounting records the export is rewritten byte for byte the same, so not at all.
"""

EXAMPLES = r"""
- name: Read the new records on each host
  mailops.powermta.pmta_suppression:
    step: read
    acct_files: "{{ mailops_fleet.hosts[inventory_hostname].acct_files }}"
  register: suppression_read

- name: Merge and write the CSV once, on the controller
  mailops.powermta.pmta_suppression:
    step: export
    dest: /srv/mumara/suppression.csv
    results: "{{ ansible_play_hosts | map('extract', hostvars, 'suppression_read') | list }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
events:
  description: "O(step=read). C({email: [reason, category, first_seen, last_seen, count]}) of the complaints and hard
    bounces read this time (times in UTC, C(2026-05-01T06:00:00Z))."
  returned: step=read
  type: dict
soft:
  description: "O(step=read). C({email: [category, first_seen, last_seen, count]}) of the soft bounces in the window."
  returned: step=read
  type: dict
state_text:
  description: O(step=read). The new cursor state to save in O(state_file) (JSON).
  returned: step=read
  type: str
rows:
  description: O(step=read) data rows read; O(step=export) rows in the CSV.
  returned: success
  type: int
used:
  description: O(step=read). Suppressing records among them.
  returned: step=read
  type: int
corrupt:
  description: O(step=read). Rows skipped as corrupt (not CSV, wrong width, no time or address).
  returned: step=read
  type: int
bytes:
  description: O(step=read). Accounting bytes read.
  returned: step=read
  type: int
added:
  description: O(step=export). Addresses added to the CSV.
  returned: step=export
  type: int
updated:
  description: O(step=export). Addresses whose row changed.
  returned: step=export
  type: int
by_reason:
  description: O(step=export). Rows per reason.
  returned: step=export
  type: dict
  sample: {complaint: 2, hard-bounce: 40, soft-bounce: 3}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - Ansible modules import after their docs
from ansible_collections.mailops.powermta.plugins.module_utils._operations import suppression as _suppression  # noqa: E402


def _read(module):
    params = module.params
    try:
        with open(params["state_file"], encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        module.fail_json(msg="state_file %s cannot be read: %s" % (params["state_file"], exc))
    state, note = _suppression.load_state(text)
    if note:
        module.warn("%s: %s" % (params["state_file"], note))
    patterns = _suppression.acct_patterns(params["acct_files"]) + list(params["paths"])
    if not patterns:
        module.fail_json(msg="pmta_suppression: no accounting file holds b, rb or f records (acct_files, paths): "
                             "enable them in powermta_acct_files or pass paths")
    result = _suppression.read_host(state, patterns, params["hard_categories"], params["soft_categories"],
                                    params["soft_window_days"])
    result.pop("state")
    module.exit_json(changed=False, patterns=patterns, state_changed=result["state_text"] != text, **result)


def _export(module):
    params = module.params
    if not params["dest"]:
        module.fail_json(msg="pmta_suppression: dest is required with step=export (suppression_export_file)")
    mode = params["mode"]
    mode = int(mode, 8) if isinstance(mode, str) else int(mode)
    try:
        result = _suppression.export(params["dest"], params["results"], params["soft_threshold"],
                                     check_mode=module.check_mode, mode=mode)
    except _suppression.SuppressionError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            step=dict(type="str", choices=["read", "export"], required=True),
            acct_files=dict(type="list", elements="dict", default=[]),
            paths=dict(type="list", elements="path", default=[]),
            state_file=dict(type="path", default="/var/lib/mailops-powermta/suppression-state.json"),
            hard_categories=dict(type="list", elements="str", default=list(_suppression.HARD_CATEGORIES)),
            soft_categories=dict(type="list", elements="str", default=list(_suppression.SOFT_CATEGORIES)),
            soft_window_days=dict(type="int", default=7),
            results=dict(type="list", elements="dict", default=[]),
            soft_threshold=dict(type="int", default=3),
            dest=dict(type="path"),
            mode=dict(type="raw", default="0640"),
        ),
        supports_check_mode=True,
    )
    if module.params["step"] == "read":
        _read(module)
    else:
        _export(module)


if __name__ == "__main__":
    main()
