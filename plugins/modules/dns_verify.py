#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the mail DNS of a sending fleet: SPF, DKIM, DMARC, PTR / FCrDNS."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dns_verify
short_description: Check SPF, DKIM, DMARC, bounce MX and forward-confirmed PTR of a mail fleet
version_added: 0.1.0
author:
  - mailops.powermta contributors (@mailops)
description:
  - Asks one DNS server (O(server), O(port)) and checks, per sending domain and sending IP,
    what receivers check. Returns every check in RV(checks) and fails when a required check fails.
  - "Per domain: exactly one SPF record (C(spf_record)); at most 10 DNS lookups in its tree (C(spf_lookups));
    every sending IP passes SPF (C(spf_authorizes_ip)); each DKIM selector has one parseable key record of
    at least 1024 bits equal to the key PowerMTA signs with (C(dkim_key)); one DMARC record whose policy is at
    least the configured stage and which has C(rua) (C(dmarc_policy)); the bounce domain has MX (C(bounce_mx))."
  - "Per IP: exactly one PTR equal to the HELO host name (C(ptr)); that name resolves back to the IP
    (C(fcrdns)); the HELO name's SPF authorises the IP (C(helo_spf), advisory by default)."
  - "Read-only; runs on the controller (C(delegate_to: localhost)) and needs dnspython there."
options:
  timeout:
    description: Seconds to wait per query.
    type: float
    default: 5
  domains:
    description: Sending domains to check.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The domain.
        type: str
        required: true
      spf_ips:
        description: Sending IPs that SPF must authorise.
        type: list
        elements: str
        default: []
      dkim:
        description: DKIM selectors with the public key PowerMTA signs with (PEM text or file on the controller).
        type: list
        elements: dict
        default: []
        suboptions:
          selector:
            description: Selector name.
            type: str
            required: true
          public_key:
            description:
              - Public key (PEM or base64 DER).
              - Without it and O(domains[].dkim[].public_key_file), only the record is checked.
            type: str
          public_key_file:
            description: Path on the controller of a PEM public (or private) key file.
            type: path
      dmarc_policy:
        description: The configured DMARC stage; the published policy must be at least this strict.
        type: str
        default: none
        choices: [none, quarantine, reject]
      bounce_domain:
        description: Bounce / FBL domain that must have MX records.
        type: str
  ips:
    description: Sending IPs with their HELO host names.
    type: list
    elements: dict
    default: []
    suboptions:
      ip:
        description: IPv4 or IPv6 address.
        type: str
        required: true
      hostname:
        description: HELO host name; the PTR must equal it.
        type: str
      ptr:
        description:
          - V(publish) when the fleet publishes this IP's PTR (the C(ptr) and C(fcrdns) checks are required).
          - V(verify) when the reverse zone belongs to someone else (usually the hosting provider); the checks
            are reported but do not fail, and RV(provider_requests) lists the PTRs to ask for.
        type: str
        default: publish
        choices: [publish, verify]
  advisory:
    description: Checks reported but not failing the task.
    type: list
    elements: str
    default: [helo_spf]
    choices: [spf_record, spf_lookups, spf_authorizes_ip, dkim_key, dmarc_policy, bounce_mx, ptr, fcrdns, helo_spf]
requirements:
  - dnspython >= 2.0 on the controller
  - cryptography, only when O(domains[].dkim[].public_key_file) is a private key
seealso:
  - module: mailops.powermta.dns_records
extends_documentation_fragment:
  - mailops.powermta.dns_server
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Verify the fleet's mail DNS
  mailops.powermta.dns_verify:
    server: 192.0.2.53
    domains:
      - name: example.com
        spf_ips: [203.0.113.10, 2001:db8::10]
        dkim:
          - selector: s2026a
            public_key_file: files/dkim/s2026a.example.com.pub
        dmarc_policy: quarantine
        bounce_domain: bounces.example.com
    ips:
      - {ip: 203.0.113.10, hostname: mta10.example.com}
      - {ip: "2001:db8::10", hostname: mta6.example.com}
  delegate_to: localhost
  register: dns_verify
"""

RETURN = r"""
checks:
  description: Every check made.
  returned: always
  type: list
  elements: dict
  contains:
    subject: {description: 'Domain, record name or IP the check is about.', type: str}
    check: {description: Check name (see the description)., type: str}
    ok: {description: Whether it passed., type: bool}
    detail: {description: What was found., type: str}
    required: {description: Whether a failure fails the task., type: bool}
  sample:
    - {subject: 203.0.113.10, check: fcrdns, ok: true, detail: mta10.example.com resolves to 203.0.113.10,
       required: true}
failed_checks:
  description: The required checks that failed.
  returned: always
  type: list
  elements: dict
passed:
  description: Number of checks that passed.
  returned: always
  type: int
provider_requests:
  description:
    - For IPs with O(ips[].ptr=verify) whose PTR is missing or wrong, what to ask the owner of the reverse
      zone (usually the hosting provider) to publish.
  returned: always
  type: list
  elements: dict
  contains:
    ip: {description: The sending IP., type: str}
    ptr_name: {description: Its reverse name., type: str}
    wanted: {description: The PTR target to ask for (the HELO name)., type: str}
    current: {description: The PTR targets published now., type: list, elements: str}
  sample:
    - {ip: 203.0.113.30, ptr_name: 30.113.0.203.in-addr.arpa, wanted: mta30.example.net., current: []}
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._dns import verify as dnsv  # noqa: E402

CHECK_NAMES = ["spf_record", "spf_lookups", "spf_authorizes_ip", "dkim_key", "dmarc_policy", "bounce_mx",
               "ptr", "fcrdns", "helo_spf"]


def _public_key_from_file(module, path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        module.fail_json(msg="cannot read DKIM key file %s: %s" % (path, exc.strerror))
    if b"PRIVATE KEY" in data:
        try:
            from cryptography.hazmat.primitives import serialization
        except ImportError:
            module.fail_json(msg=missing_required_lib("cryptography") + " (to read the private key %s)" % path)
        key = serialization.load_pem_private_key(data, password=None)
        data = key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    return data.decode("ascii", "replace")


def main():
    module = AnsibleModule(
        argument_spec={
            "server": {"type": "str", "required": True},
            "port": {"type": "int", "default": 53},
            "timeout": {"type": "float", "default": 5},
            "domains": {
                "type": "list", "elements": "dict", "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "spf_ips": {"type": "list", "elements": "str", "default": []},
                    "dkim": {
                        "type": "list", "elements": "dict", "default": [],
                        "options": {
                            "selector": {"type": "str", "required": True},
                            "public_key": {"type": "str"},
                            "public_key_file": {"type": "path"},
                        },
                        "mutually_exclusive": [["public_key", "public_key_file"]],
                    },
                    "dmarc_policy": {"type": "str", "default": "none", "choices": ["none", "quarantine", "reject"]},
                    "bounce_domain": {"type": "str"},
                },
            },
            "ips": {
                "type": "list", "elements": "dict", "default": [],
                "options": {"ip": {"type": "str", "required": True}, "hostname": {"type": "str"},
                            "ptr": {"type": "str", "default": "publish", "choices": ["publish", "verify"]}},
            },
            "advisory": {"type": "list", "elements": "str", "default": ["helo_spf"], "choices": CHECK_NAMES},
        },
        supports_check_mode=True,
    )
    if not dnsv.HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=dnsv.DNSPYTHON_IMPORT_ERROR)

    domains = []
    for domain in module.params["domains"]:
        keys = []
        for key in domain["dkim"]:
            public_key = key["public_key"]
            if key["public_key_file"]:
                public_key = _public_key_from_file(module, key["public_key_file"])
            keys.append({"selector": key["selector"], "public_key": public_key})
        domains.append(dict(domain, dkim=keys))
    for item in module.params["ips"]:
        try:
            dnsv.ipaddress.ip_address(item["ip"])
        except ValueError:
            module.fail_json(msg="ips: %r is not an IP address" % item["ip"])

    lookup = dnsv.Lookup(module.params["server"], module.params["port"], module.params["timeout"])
    requests = []
    checks, failed = dnsv.verify(lookup, domains, module.params["ips"], module.params["advisory"], requests)
    result = {
        "changed": False,
        "checks": checks,
        "failed_checks": failed,
        "passed": sum(1 for c in checks if c["ok"]),
        "provider_requests": requests,
    }
    if failed:
        summary = "; ".join("%s %s: %s" % (c["subject"], c["check"], c["detail"]) for c in failed[:10])
        module.fail_json(msg="%d required mail DNS checks failed: %s%s"
                         % (len(failed), summary, " ..." if len(failed) > 10 else ""), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
