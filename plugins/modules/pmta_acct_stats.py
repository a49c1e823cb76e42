#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pmta_acct_stats
short_description: Sending statistics per source IP, vMTA and ISP group from PowerMTA accounting files
version_added: 0.1.0
description:
  - Runs on the PowerMTA host. Streams the accounting CSV files (globs, rotated and gzipped files, oldest
    first), parses each by its own header row, and returns per source IP (C(dlvSourceIp)), vMTA and ISP group
    the counts of messages sent, delivered, bounced (also by bounce category), deferred (C(t) and C(tq)
    records), complaints (C(f) records) and throttled (transient replies matching the ISP group's
    throttling patterns), with the top recipient domains.
  - Memory stays flat whatever the file size. Corrupt or truncated lines are counted and skipped.
  - Read-only; the RV(observations) return value is the input of M(mailops.powermta.warmup_plan).
author:
  - mailops.powermta contributors (@mailops)
options:
  paths:
    description:
      - Accounting files or glob patterns. Enable C(t)/C(tq) and C(f) records in an C(<acct-file>) to get
        deferrals, throttling and complaints (C(records d,b,t,tq,f), or a separate file for transients).
    type: list
    elements: path
    default: ["/var/log/pmta/*.csv", "/var/log/pmta/*.csv.gz"]
  since:
    description:
      - Only records logged at or after this time (ISO 8601; a time without zone is UTC).
        Files last modified before it are not opened.
      - Usually the C(updated_at) of the previous warm-up step.
    type: str
  ips:
    description: Only these source IPs (exact C(dlvSourceIp) text). Default all.
    type: list
    elements: str
  vmtas:
    description: Only these vMTAs. Default all.
    type: list
    elements: str
  isp_groups:
    description:
      - Overrides of the ISP groups, merged by C(name) into the collection's groups
        (gmail, yahoo, microsoft, apple, comcast, other); C(state=absent) removes a group.
      - "Each item: C(name), C(domains), C(mx_patterns) (shell patterns matched against the MX host in
        C(dsnMta)), C(throttle_patterns) (regular expressions, case-insensitive)."
    type: list
    elements: dict
    default: []
  classify_by_mx:
    description:
      - Classify recipient domains not listed in any group by the MX host PowerMTA delivered to
        (for example Google Workspace domains count as gmail).
    type: bool
    default: true
  top_domains:
    description: How many top recipient domains to return per key and overall.
    type: int
    default: 10
notes:
  - Needs only the Python standard library on the PowerMTA host.
seealso:
  - module: mailops.powermta.warmup_plan
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Accounting since the last warm-up step
  mailops.powermta.pmta_acct_stats:
    paths:
      - /var/log/pmta/acct*.csv
      - /var/log/pmta/diag*.csv
    since: "{{ ansible_local.pmta_warmup.updated_at | default(omit) }}"
    ips: "{{ warmup_ips }}"
  register: acct

- name: Add a provider group
  mailops.powermta.pmta_acct_stats:
    isp_groups:
      - name: gmx
        domains: [gmx.net, gmx.de, web.de]
        mx_patterns: ["*.gmx.net", "*.web.de"]
        throttle_patterns: ["Reject due to policy restrictions"]
"""

RETURN = r"""
stats:
  description: One item per source IP, vMTA and ISP group, sorted.
  returned: success
  type: list
  elements: dict
  sample:
    - ip: 203.0.113.11
      vmta: mk-eu-01
      isp: gmail
      sent: 1960
      delivered: 1900
      bounced: 60
      bounced_by_category: {bad-mailbox: 50, policy-related: 10}
      deferred: 120
      deferred_queue: 4
      complaints: 1
      throttled: 3
      top_domains: [{domain: gmail.com, count: 1950}, {domain: googlemail.com, count: 10}]
observations:
  description: "C({ip: {isp: {sent, delivered, bounced, deferred, complaints, throttled}}}) summed over vMTAs;
    pass it to M(mailops.powermta.warmup_plan)."
  returned: success
  type: dict
  sample: {203.0.113.11: {gmail: {sent: 1960, delivered: 1900, bounced: 60, deferred: 120, complaints: 1,
          throttled: 3}}}
top_domains:
  description: Top recipient domains over all records used.
  returned: success
  type: list
  elements: dict
files:
  description: Per file read, its row counts (C(rows), C(used), C(corrupt), C(before_since)), header rows seen,
    and C(skipped) (a reason) when it was not opened, or C(error).
  returned: success
  type: list
  elements: dict
rows:
  description: Data rows read (header rows not counted).
  returned: success
  type: int
used:
  description: Rows counted in the statistics.
  returned: success
  type: int
corrupt:
  description: Rows skipped as corrupt (not CSV, wrong number of fields, unreadable time).
  returned: success
  type: int
before_since:
  description: Rows skipped as older than O(since).
  returned: success
  type: int
filtered:
  description: Rows skipped by O(ips) or O(vmtas).
  returned: success
  type: int
ignored_types:
  description: Counts of record types not used (C(r), C(rb), C(rs) ...).
  returned: success
  type: dict
first_time:
  description: The earliest C(timeLogged) used, as written in the file.
  returned: success
  type: str
last_time:
  description: The latest C(timeLogged) used, as written in the file.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - Ansible modules import after their docs
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.isp_groups import IspGroupError  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.acct import AcctError, collect  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=["/var/log/pmta/*.csv", "/var/log/pmta/*.csv.gz"]),
            since=dict(type="str"),
            ips=dict(type="list", elements="str"),
            vmtas=dict(type="list", elements="str"),
            isp_groups=dict(type="list", elements="dict", default=[]),
            classify_by_mx=dict(type="bool", default=True),
            top_domains=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = collect(
            params["paths"],
            since=params["since"],
            ips=params["ips"],
            vmtas=params["vmtas"],
            isp_groups=params["isp_groups"],
            classify_by_mx=params["classify_by_mx"],
            top_domains=params["top_domains"],
        )
    except (AcctError, IspGroupError) as exc:
        module.fail_json(msg=str(exc))
    if not result["files"]:
        module.warn("no accounting file matches %s" % ", ".join(params["paths"]))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
