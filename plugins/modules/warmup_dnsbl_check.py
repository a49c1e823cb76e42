#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: warmup_dnsbl_check
short_description: Check sending IPs against DNS blocklists, telling listings from errors and dead lists
version_added: 0.1.0
description:
  - Looks up each IPv4 and IPv6 address in each DNSBL zone and returns per IP and zone V(listed),
    V(not_listed), V(policy), V(error) or V(skipped), with the return codes and the TXT reason.
  - Spamhaus error codes (127.255.255.252, 127.255.255.254, 127.255.255.255, 127.0.1.255) and answers
    outside 127.0.0.0/8 are errors, never listings.
  - Each zone is first health-checked with the RFC 5782 test points (127.0.0.2 listed, 127.0.0.1 not
    listed; ::FFFF:7F00:2 and ::FFFF:7F00:1 for IPv6). A zone that fails is reported unusable and its
    answers are not trusted.
  - Policy listings (Spamhaus PBL, 127.0.0.10 and 127.0.0.11) are returned as configuration RV(findings),
    not as reputation listings, and never appear in RV(blocklisted).
  - Read-only. Usually run on the controller (C(delegate_to=localhost), C(run_once=true)).
author:
  - mailops.powermta contributors (@mailops)
requirements:
  - dnspython >= 2.0.0
options:
  ips:
    description: IPv4 and IPv6 addresses to check.
    type: list
    elements: str
    required: true
  zones:
    description:
      - "DNSBL zones: names, or dicts C({zone, ipv6, policy_codes, error_codes}). C(ipv6=false) skips IPv6
        addresses for a zone that lists only IPv4. C(policy_codes) default to 127.0.0.10 and 127.0.0.11 for
        Spamhaus-style zones (zen, pbl, *spamhaus*) and to none elsewhere; C(error_codes) add to the
        Spamhaus error codes."
      - "Default: zen.spamhaus.org (IPv4 and IPv6), b.barracudacentral.org, bl.spamcop.net, psbl.surriel.com,
        bl.mailspike.net, dnsbl-1.uceprotect.net. SORBS (shut down in 2024) and other dead lists are not
        included."
      - Spamhaus refuses queries through public resolvers (127.255.255.254); query through your own
        resolver, or use Spamhaus DQS (C(<key>.zen.dq.spamhaus.net)).
    type: list
    elements: raw
  server:
    description: Address of the resolver to query. Default is the system resolver.
    type: str
  port:
    description: Port of O(server).
    type: int
    default: 53
  timeout:
    description: Seconds to wait for one answer (a query is tried for twice as long at most).
    type: float
    default: 3.0
  health_check:
    description: Check each zone with the RFC 5782 test points first; answers of failing zones are errors.
    type: bool
    default: true
seealso:
  - module: mailops.powermta.warmup_plan
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Check the warm-up IPs from the controller
  mailops.powermta.warmup_dnsbl_check:
    ips: ["203.0.113.11", "2001:db8::11"]
    server: 127.0.0.1
  delegate_to: localhost
  run_once: true
  register: dnsbl

- name: Stop when a zone cannot be trusted
  ansible.builtin.assert:
    that: dnsbl.summary.unusable_zones | length == 0
    fail_msg: "Unusable DNSBL zones: {{ dnsbl.summary.unusable_zones }}"

- name: Own zone list, one IPv4-only list
  mailops.powermta.warmup_dnsbl_check:
    ips: "{{ warmup_ips }}"
    zones:
      - "{{ spamhaus_dqs_key }}.zen.dq.spamhaus.net"
      - {zone: bl.spamcop.net, ipv6: false}
"""

RETURN = r"""
results:
  description: One item per IP and zone.
  returned: success
  type: list
  elements: dict
  contains:
    ip: {description: The address., type: str}
    zone: {description: The DNSBL zone., type: str}
    query: {description: The name queried., type: str}
    status:
      description: "V(listed) (reputation), V(policy) (PBL-style, configuration), V(not_listed), V(error)
        (error code, unusable zone, timeout) or V(skipped) (IPv6 address, IPv4-only zone)."
      type: str
    codes: {description: A records returned., type: list, elements: str}
    txt: {description: TXT reasons of a listing., type: list, elements: str}
    detail: {description: Meaning of the codes or the error., type: str}
  sample:
    - {ip: 203.0.113.66, zone: zen.spamhaus.org, query: 66.113.0.203.zen.spamhaus.org., status: listed,
       codes: [127.0.0.2], txt: ["https://check.spamhaus.org/sbl/query/SBL000000"],
       detail: "SBL: Spamhaus Block List"}
blocklisted:
  description:
    - "C({ip: [zones]}) of reputation listings in usable zones."
    - The O(mailops.powermta.warmup_plan#module:blocklisted) input of the warm-up engine.
  returned: success
  type: dict
  sample: {203.0.113.66: [zen.spamhaus.org]}
zones:
  description: Health of each zone (C(usable), C(reason), C(ipv6_usable), C(ipv6_reason)).
  returned: success
  type: list
  elements: dict
findings:
  description: Configuration findings (policy listings), each with C(ip), C(zone), C(codes) and C(finding) text.
  returned: success
  type: list
  elements: dict
summary:
  description: Counts per status and the list of C(unusable_zones).
  returned: success
  type: dict
  sample: {listed: 1, not_listed: 9, policy: 0, error: 0, skipped: 2, unusable_zones: []}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.dnsbl import (  # noqa: E402
    DNSPYTHON_IMPORT_ERROR,
    HAS_DNSPYTHON,
    DnsblInputError,
    DnspythonResolver,
    check,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ips=dict(type="list", elements="str", required=True),
            zones=dict(type="list", elements="raw"),
            server=dict(type="str"),
            port=dict(type="int", default=53),
            timeout=dict(type="float", default=3.0),
            health_check=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython >= 2.0.0"), exception=DNSPYTHON_IMPORT_ERROR)
    params = module.params
    if not 0 < params["port"] < 65536:
        module.fail_json(msg="port must be between 1 and 65535, got %d" % params["port"])
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %s" % params["timeout"])
    try:
        result = check(
            params["ips"],
            params["zones"],
            query=DnspythonResolver(params["server"], params["port"], params["timeout"]),
            health_check=params["health_check"],
        )
    except DnsblInputError as exc:
        module.fail_json(msg=str(exc))
    for zone in result["zones"]:
        if not zone["usable"]:
            module.warn("DNSBL zone %s is unusable: %s" % (zone["zone"], zone["reason"]))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
