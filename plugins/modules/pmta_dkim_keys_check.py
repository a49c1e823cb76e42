#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refuse to replace a DKIM key in place; check hosts, controller and DNS agree on every selector's key."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pmta_dkim_keys_check
short_description: Refuse to replace a DKIM key in place and check every selector's key agrees everywhere
version_added: 0.1.0
author:
  - mailops.powermta contributors (@mailops)
description:
  - "Runs on the controller (C(delegate_to: localhost)) before any host changes, with the public keys the hosts
    hold (read by M(mailops.powermta.pmta_host_state)). Reads the private keys in O(controller_dir) and, when
    O(server) is given, the published C(SELECTOR._domainkey.DOMAIN) TXT records (a read-only query)."
  - "Fails, naming the selector, the hosts and the fix, when: the hosts, the controller's key file and the
    published record hold different public keys; a size other than the existing key's is asked for a selector
    and the domain has no new selector to carry it (a key is never regenerated: rotate to a new selector, see
    docs/runbooks.md); the controller has no key file for a selector that already exists on a host or in DNS
    (a typo in C(powermta_dkim_controller_dir) must not make new keys); or, with keys made on the hosts, a host
    would make its own new key for a selector another host or DNS already has."
options:
  keys:
    description:
      - "Per inventory host, the DKIM keys the fleet model wants there (C(mailops_fleet.hosts[HOST].dkim_keys)),
        a list of C({domain, selector, bits, path})."
    type: dict
    required: true
  host_keys:
    description:
      - Per host, the public key (PEM) of each key file it holds (C(dkim_public_keys) of
        M(mailops.powermta.pmta_host_state)).
    type: dict
    default: {}
  key_source:
    description: Where keys are made (C(powermta_dkim_key_source)).
    type: str
    choices: [host, controller]
    default: host
  controller_dir:
    description: The controller's key directory (C(powermta_dkim_controller_dir)), with C(DOMAIN/SELECTOR.pem) files.
    type: path
  server:
    description: DNS server to read the published records from; without it DNS is not read.
    type: str
  port:
    description: Its port.
    type: int
    default: 53
  timeout:
    description: Seconds to wait per query.
    type: float
    default: 5
  fail_on_problems:
    description: Fail when a problem is found; V(false) only returns RV(problems).
    type: bool
    default: true
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
requirements:
  - dnspython (when O(server) is given) and cryptography (with O(key_source=controller)), on the controller
"""

EXAMPLES = r"""
- name: Check no DKIM key is replaced in place, and hosts and DNS agree
  mailops.powermta.pmta_dkim_keys_check:
    keys: {pmta1: [{domain: example.com, selector: s2026a, bits: 2048, path: /etc/pmta/dkim/example.com/s2026a.pem}]}
    host_keys: {pmta1: {/etc/pmta/dkim/example.com/s2026a.pem: "-----BEGIN PUBLIC KEY-----..."}}
    key_source: controller
    controller_dir: /srv/dkim
    server: 192.0.2.53
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
problems:
  description: One line per problem (selector, holders, fix); empty when every key is safe.
  returned: always
  type: list
  elements: str
published:
  description: The TXT records read per C(DOMAIN/SELECTOR) (when O(server) is given).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._dns import verify as dnsv  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.dkim_keys import dkim_key_problems  # noqa: E402

KEY_FIELDS = ("domain", "selector", "bits", "path")


def _controller_public_key(module, path):
    """Public key PEM of the private key file at ``path`` on the controller, or None when there is no file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        module.fail_json(msg="cannot read the DKIM key %s on the controller: %s" % (path, exc.strerror))
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        module.fail_json(msg=missing_required_lib("cryptography") + " (to read the private key %s)" % path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        module.fail_json(msg="%s on the controller is not a readable private key: %s; restore it from your backup"
                         % (path, exc))
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def main():
    module = AnsibleModule(
        argument_spec={
            "keys": {"type": "dict", "required": True, "no_log": False},
            "host_keys": {"type": "dict", "default": {}, "no_log": False},  # public keys only
            "key_source": {"type": "str", "choices": ["host", "controller"], "default": "host"},
            "controller_dir": {"type": "path"},
            "server": {"type": "str"},
            "port": {"type": "int", "default": 53},
            "timeout": {"type": "float", "default": 5},
            "fail_on_problems": {"type": "bool", "default": True},
        },
        required_if=[("key_source", "controller", ("controller_dir",))],
        supports_check_mode=True,
    )
    params = module.params
    keys = []
    for host, wanted in sorted(params["keys"].items()):
        for key in wanted or []:
            if not isinstance(key, dict) or any(key.get(field) in (None, "") for field in KEY_FIELDS):
                module.fail_json(msg="keys[%s]: each key needs %s, got %r" % (host, ", ".join(KEY_FIELDS), key))
            keys.append(dict(key, host=host))
    names = sorted({"%s/%s" % (key["domain"], key["selector"]) for key in keys})
    controller_pems = None
    if params["key_source"] == "controller":
        directory = params["controller_dir"].rstrip("/")
        controller_pems = {name: _controller_public_key(module, "%s/%s.pem" % (directory, name)) for name in names}
    published = None
    if params["server"]:
        if not dnsv.HAS_DNSPYTHON:
            module.fail_json(msg=missing_required_lib("dnspython"), exception=dnsv.DNSPYTHON_IMPORT_ERROR)
        lookup = dnsv.Lookup(params["server"], params["port"], params["timeout"])
        published = {}
        for name in names:
            domain, selector = name.split("/", 1)
            try:
                published[name] = lookup.txt("%s._domainkey.%s." % (selector, domain))
            except dnsv.LookupFailed as exc:
                module.fail_json(msg="cannot read the published DKIM record to compare keys: %s" % exc)
    problems = dkim_key_problems(keys, params["host_keys"], controller_pems, published,
                                 params["key_source"], params["controller_dir"] or "")
    result = {"changed": False, "problems": problems, "published": published or {}}
    if problems and params["fail_on_problems"]:
        module.fail_json(msg="DKIM keys: %d problem(s), nothing was changed: %s"
                         % (len(problems), " | ".join(problems)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
