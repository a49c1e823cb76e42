#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publish DNS RRsets with RFC 2136 dynamic updates signed with TSIG."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dns_records
short_description: Publish DNS RRsets with RFC 2136 dynamic updates (TSIG), one atomic UPDATE per zone
version_added: 0.1.0
author:
  - mailops.powermta contributors (@mailops)
description:
  - Reads the current RRsets of O(records) from the primary server over TCP (TSIG-signed queries),
    plans the changes, and sends B(one UPDATE per zone) carrying them all.
  - Each UPDATE's prerequisites are the RRsets as read (value-dependent, or "does not exist"), so a change
    made by someone else between the read and the write makes the server reject the whole UPDATE;
    the module then fails with "changed concurrently, re-run" and nothing is changed.
  - TXT values are logical strings; the module splits them into strings of at most 255 bytes
    (on UTF-8 bytes), so 2048- and 4096-bit DKIM keys publish as given.
  - The zone of each name is found by walking SOA queries up the name on O(server) unless O(zone) is set.
  - Refuses to write beside a CNAME (BIND would silently drop the data).
  - "Runs on the controller (use C(delegate_to: localhost)); needs dnspython there."
  - "With a local connection (C(delegate_to: localhost)) its action plugin runs it in the controller's
    Python process (the same code, without a module payload and a second Python process, which cost more
    than the DNS work); over any other connection the module runs on that host, as modules do."
  - UPDATE messages larger than 60 kB are split into several UPDATEs for the same zone, each still guarded
    by its own prerequisites.
options:
  zone:
    description:
      - Zone that holds every record. Leave unset to find each record's zone by SOA queries (CNAME-safe).
    type: str
  records:
    description:
      - The RRsets to manage. Names are FQDNs (trailing dot optional); names inside rdata (PTR, MX,
        CNAME targets) are always absolute.
      - With O(records[].state=present) each RRset is replaced by exactly O(records[].values) (or, with
        O(records[].shared), only the values with the same C(v=) tag are); other RRsets at the same name
        are not touched.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Owner name (FQDN).
        type: str
        required: true
      type:
        description: Record type.
        type: str
        required: true
        choices: [A, AAAA, CNAME, MX, NS, PTR, SRV, TXT, CAA]
      ttl:
        description:
          - TTL in seconds. A TTL difference alone counts as a change.
          - A shared TXT RRset that also holds values of others keeps its TTL (one TTL per RRset).
        type: int
        default: 3600
      values:
        description:
          - Rdata in presentation format (C(192.0.2.10), C(10 mx.example.com.)); for TXT, the logical string
            without quotes. Required for O(records[].state=present).
          - With O(records[].state=absent), the values to remove; leave out to delete the whole RRset.
        type: list
        elements: str
      state:
        description:
          - V(present) publishes the values; V(absent) removes the given values, or the whole RRset when
            O(records[].values) is not given. Default O(state).
        type: str
        choices: [present, absent]
      shared:
        description:
          - TXT only. The RRset is shared with others (the apex TXT of a domain usually holds
            C(google-site-verification=...), C(MS=...)). Only values whose C(v=) tag (C(v=spf1), C(v=DMARC1),
            C(v=DKIM1)...) is the tag of one of O(records[].values) are replaced, as a whole; every other value
            stays byte for byte. One value per tag (exactly one C(v=spf1), RFC 7208 §3.2).
          - An SPF in the zone whose terms the new SPF does not carry fails the task naming them, unless
            O(spf_foreign_terms=keep).
        type: bool
        default: false
  state:
    description: Default of O(records[].state).
    type: str
    default: present
    choices: [present, absent]
  owner:
    description:
      - Turns on the ownership registry under this name (the fleet's name, e.g. C(pmta_fleet)). Every RRset and
        shared TXT value written is recorded in a TXT RRset C(_mailops-owner.<zone>) of its zone, in the same
        UPDATE. An existing RRset holding values not written by this owner is never replaced unless O(adopt).
      - Needs the key to be allowed to write TXT at C(_mailops-owner.<zone>) in every zone it writes to.
    type: str
  prune:
    description:
      - With O(owner), remove what this owner wrote earlier (per the registry) and no item of O(records)
        wants any more, in the zones of O(records) and O(prune_zones). Nothing without a registry entry
        of this owner is ever removed; a shared TXT value edited by someone since is kept (see RV(kept)).
    type: bool
    default: false
  prune_zones:
    description:
      - More zones to prune (zones that may no longer receive any record, e.g. a reverse zone whose IPs all left).
    type: list
    elements: str
    default: []
  prune_exclude:
    description: Owner names never pruned (e.g. PTRs whose reverse zone is now only verified).
    type: list
    elements: str
    default: []
  adopt:
    description: With O(owner), replace (and from then on own) existing RRsets that hold values the owner did not write.
    type: bool
    default: false
  spf_foreign_terms:
    description:
      - What to do with terms of an SPF already in the zone that the new SPF (a O(records[].shared) C(v=spf1)
        value) does not carry, e.g. C(include:_spf.google.com). V(fail) stops before sending anything and
        names them; V(keep) puts them into the published SPF (and remembers them in the registry).
      - Terms the owner itself wrote (registry digest matches) are not foreign, so an IP leaving the fleet
        leaves the SPF.
    type: str
    default: fail
    choices: [fail, keep]
  max_changes:
    description:
      - Refuse (before sending anything) when more than this many existing values would be removed or
        replaced (in all RRsets together; registry entries do not count). Creating records does not count.
        A guard against a wrong inventory wiping a zone.
    type: int
    default: 100
  force:
    description: Send the plan even when it exceeds O(max_changes).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 10
  return_values:
    description:
      - Return the values before and after of every changed RRset in RV(changes) (always done in diff mode).
      - Off by default so that publishing a whole fleet returns a small result (name, type and action per RRset).
    type: bool
    default: false
  read_method:
    description:
      - How the current state is read. C(query) sends one TSIG-signed query per RRset, pipelined over one
        TCP connection. C(axfr) transfers each zone with the TSIG key (falling back to queries where the
        server refuses the transfer). C(auto) transfers the zones that receive at least 32 records and
        queries the rest.
      - With C(axfr)/C(auto), a child zone served by the same server must be delegated in its parent (NS).
      - A transfer's TSIG is checked over every message as RFC 8945 section 5.3.1 says (each MAC chained to the
        previous one, up to 99 unsigned messages in between, the first and the last signed). A transfer that
        fails that check, is cut or is incomplete is not used; the zone is read by queries, with a warning.
    type: str
    default: auto
    choices: [auto, query, axfr]
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
    details: With a local connection the whole task runs in the controller's process.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Reads the current state and returns the plan; sends no UPDATE.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Before and after of the changed RRsets, in zone-file form.
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
requirements:
  - dnspython >= 2.0 on the controller
extends_documentation_fragment:
  - mailops.powermta.dns_server
  - mailops.powermta.dns_server.tsig
notes:
  - NS records at a zone apex and SOA records are not managed (the server owns them).
  - BIND refuses an UPDATE that adds an in-zone MX or SRV target without address records; publish the
    A/AAAA records in the same task.
seealso:
  - module: mailops.powermta.dns_verify
  - module: community.general.nsupdate
"""

EXAMPLES = r"""
- name: Publish SPF, DKIM and a PTR
  mailops.powermta.dns_records:
    server: 192.0.2.53
    key_name: ansible-key
    key_secret: "{{ vault_dns_key_secret }}"
    records:
      - name: example.com
        type: TXT
        ttl: 3600
        values: ["v=spf1 ip4:203.0.113.10 -all"]
      - name: s2026a._domainkey.example.com
        type: TXT
        values: ["v=DKIM1; k=rsa; p=MIIBIjANBgkqh..."]
      - name: 10.113.0.203.in-addr.arpa
        type: PTR
        values: [mta10.example.com.]
  delegate_to: localhost
  run_once: true

- name: Publish the fleet's SPF beside the site verifications at the apex, owned and pruned as pmta_fleet
  mailops.powermta.dns_records:
    server: 192.0.2.53
    key_name: ansible-key
    key_secret: "{{ vault_dns_key_secret }}"
    owner: pmta_fleet
    prune: true
    records:
      - name: example.com
        type: TXT
        shared: true
        values: ["v=spf1 ip4:203.0.113.10 -all"]
      - name: mta10.example.com
        type: A
        values: [203.0.113.10]
  delegate_to: localhost
  run_once: true

- name: Remove an old selector
  mailops.powermta.dns_records:
    server: 192.0.2.53
    key_name: ansible-key
    key_secret: "{{ vault_dns_key_secret }}"
    state: absent
    records:
      - {name: s2025a._domainkey.example.com, type: TXT}
  delegate_to: localhost
"""

RETURN = r"""
changes:
  description: The RRsets changed (or that would change in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    zone: {description: Zone of the RRset., type: str}
    name: {description: Owner name (absolute)., type: str}
    type: {description: Record type., type: str}
    action: {description: "C(create), C(update) or C(delete).", type: str}
    before: {description: "C({ttl, values}) as read, or null. Only in diff mode or with O(return_values).", type: dict}
    after: {description: "C({ttl, values}) as wanted, or null. Only in diff mode or with O(return_values).", type: dict}
    registry: {description: "True for the ownership registry RRset C(_mailops-owner.<zone>).", type: bool}
  sample:
    - zone: example.com.
      name: example.com.
      type: TXT
      action: create
      before: null
      after: {ttl: 3600, values: ["v=spf1 ip4:203.0.113.10 -all"]}
      registry: false
kept:
  description: What was deliberately left in place (e.g. a shared value edited by someone after the owner wrote it).
  returned: always
  type: list
  elements: str
zones:
  description: Zones the records belong to.
  returned: always
  type: list
  elements: str
updates_sent:
  description: Number of UPDATE messages sent (0 when nothing changed or in check mode).
  returned: always
  type: int
queries_sent:
  description: Number of queries sent to read the current state.
  returned: always
  type: int
zone_transfers:
  description: Number of zone transfers (AXFR) used to read the current state.
  returned: always
  type: int
elapsed:
  description: Seconds spent reading, planning and sending.
  returned: always
  type: float
zones_updated:
  description: Zones whose UPDATE succeeded before a later zone failed (nothing is rolled back).
  returned: failure
  type: list
  elements: str
rcode:
  description: DNS response code or TSIG error behind a failure (NOTAUTH, REFUSED, BADSIG, YXRRSET, TIMEOUT...).
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._dns import task  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as dns_values  # noqa: E402


def main():
    module = AnsibleModule(argument_spec=task.ARGUMENT_SPEC, required_together=task.REQUIRED_TOGETHER,
                           supports_check_mode=True)
    if not dns_values.HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=dns_values.DNSPYTHON_IMPORT_ERROR)
    result, warnings = task.run(module.params, check_mode=module.check_mode, diff=module._diff)
    for message in warnings:
        module.warn(message)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
