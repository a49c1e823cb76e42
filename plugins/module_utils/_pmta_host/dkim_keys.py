# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DKIM keys are never replaced in place: the checks before any key is made or any host changes.

PRIVATE to the collection (pmta_dkim_keys_check). Pure Python: the caller reads the keys (hosts, the controller's
key directory, the published DNS record) and passes them in, so every rule is unit-tested on data.

A selector's key, once it exists anywhere (on a host, in powermta_dkim_controller_dir, or published at
SELECTOR._domainkey.DOMAIN), is the key of that selector for good:
- it is never regenerated: a different size asked for it is refused, unless the domain also lists a new selector
  (one with no key anywhere yet) to carry the new size, which is the rotation of docs/runbooks.md;
- a missing controller key file for a selector that exists elsewhere is refused (a typo in
  powermta_dkim_controller_dir, a lost directory), never answered with a new key; the same for a host that would
  make its own new key (powermta_dkim_key_source: host) for a selector another host or DNS already has;
- every host, the controller's file and the published record must hold the same public key.
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._dns.dkim_key import key_info
from ansible_collections.mailops.powermta.plugins.module_utils._dns.errors import RecordBuildError

ROTATION = ('a key is never replaced in place; rotate to a new selector instead (docs/runbooks.md "Rotate DKIM '
            'keys"): 1. add a new selector to the domain\'s dkim_selectors (e.g. [%(selector)s, %(selector)s2]) and '
            'run site.yml: its key is made at the new size and published while %(selector)s keeps signing; 2. after '
            'the TTL has passed (>= 48 h) put the new selector first and run site.yml; 3. a week later remove '
            '%(selector)s from dkim_selectors')


def _p_value(public_key_pem):
    """(bits, p) of a PEM public key, or (None, None) when it cannot be read."""
    try:
        _kind, bits, p_value = key_info(public_key_pem)
    except (RecordBuildError, ValueError, TypeError):
        return None, None
    return bits, p_value


def published_keys(txt_values):
    """[(bits, p)] of the DKIM records among ``txt_values`` (TXT strings at SELECTOR._domainkey.DOMAIN)."""
    found = []
    for text in txt_values or ():
        tags = {}
        for part in str(text).split(";"):
            name, _sep, value = part.partition("=")
            tags[name.strip().lower()] = "".join(value.split())
        if tags.get("v", "DKIM1") != "DKIM1" or not tags.get("p"):
            continue
        der_b64 = tags["p"]
        bits, p_value = _p_value("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % der_b64)
        found.append((bits, p_value or der_b64))
    return found


def _short(p_value):
    return "key ...%s" % (p_value or "?")[-12:]


def _names(items):
    return ", ".join(items)


def dkim_key_problems(keys, host_pems, controller_pems=None, published=None, key_source="host",
                      controller_dir=""):
    """Problems, one line each, naming the selector, the hosts and the fix. Empty when every key is safe.

    keys: [{host, domain, selector, bits, path}]: every key the fleet model wants (the hosts of this run).
    host_pems: {host: {path: public key PEM}}: what the hosts hold (pmta_host_state); a missing path: no key.
    controller_pems: {"DOMAIN/SELECTOR": PEM or None} (key_source controller; None: no file there).
    published: {"DOMAIN/SELECTOR": [TXT strings]} at SELECTOR._domainkey.DOMAIN, or None when DNS was not read.
    """
    selectors = {}
    for key in keys:
        name = "%s/%s" % (key["domain"], key["selector"])
        entry = selectors.setdefault(name, {"domain": key["domain"], "selector": key["selector"],
                                            "bits": int(key["bits"]), "hosts": {}, "missing": []})
        pem = (host_pems.get(key["host"]) or {}).get(key["path"])
        if pem:
            entry["hosts"][key["host"]] = _p_value(pem)
        else:
            entry["missing"].append(key["host"])
    # Which selectors already exist anywhere: a domain with a new selector is being rotated.
    existing = {}
    for name, entry in selectors.items():
        holders = {"host %s" % host: found for host, found in sorted(entry["hosts"].items())}
        if key_source == "controller" and controller_pems is not None and controller_pems.get(name):
            holders["the controller's %s/%s.pem" % (controller_dir.rstrip("/"), name)] = _p_value(controller_pems[name])
        for index, found in enumerate(published_keys((published or {}).get(name))):
            holders["DNS" if index == 0 else "DNS (record %d)" % (index + 1)] = found
        existing[name] = holders
    rotating = {entry["domain"] for name, entry in selectors.items() if not existing[name]}
    problems = []
    for name, entry in sorted(selectors.items()):
        holders = existing[name]
        label = "DKIM selector %s._domainkey.%s" % (entry["selector"], entry["domain"])
        if not holders:
            continue
        distinct = {}
        for holder, (_bits, p_value) in holders.items():
            distinct.setdefault(p_value, []).append(holder)
        if len(distinct) > 1:
            problems.append(
                "%s: the public keys differ (%s); one record serves every host, so the run stops before any host "
                "changes. Put the key that DNS publishes back on the other holders (restore it from your backup of "
                "powermta_dkim_controller_dir or from a host that has it), or rotate to a new selector"
                % (label, "; ".join("%s has %s" % (_names(who), _short(p)) for p, who in distinct.items())))
            continue
        sizes = sorted({bits for bits, _p in holders.values() if bits})
        if sizes and sizes != [entry["bits"]] and entry["domain"] not in rotating:
            problems.append(
                "%s: %s %s a %d-bit key but the inventory asks for %d bits (powermta_dkim_key_bits or the domain's "
                "dkim_key_bits); %s, or set the size back to %d"
                % (label, _names(holders), "holds" if len(holders) == 1 else "hold", sizes[0], entry["bits"],
                   ROTATION % {"selector": entry["selector"]}, sizes[0]))
            continue
        if key_source == "controller" and controller_pems is not None and not controller_pems.get(name):
            problems.append(
                "%s: powermta_dkim_controller_dir %s has no key %s/%s.pem, but %s already %s one; a new key would "
                "replace it in place. Check powermta_dkim_controller_dir (a typo or another controller's directory) "
                "or restore the key file from your backup; to change keys, %s"
                % (label, controller_dir, controller_dir.rstrip("/"), name, _names(holders),
                   "holds" if len(holders) == 1 else "hold",
                   ROTATION.split("; ", 1)[1] % {"selector": entry["selector"]}))
            continue
        if key_source == "host" and entry["missing"]:
            problems.append(
                "%s: %s %s no key yet and would make a new one of its own (powermta_dkim_key_source: host), but %s "
                "already %s one, so DNS and the hosts would disagree. Copy the existing private key to %s on %s first, "
                "or use powermta_dkim_key_source: controller (one key per selector for the fleet)"
                % (label, _names(entry["missing"]), "has" if len(entry["missing"]) == 1 else "have", _names(holders),
                   "holds" if len(holders) == 1 else "hold",
                   next(k["path"] for k in keys if "%s/%s" % (k["domain"], k["selector"]) == name),
                   _names(entry["missing"])))
    return problems
