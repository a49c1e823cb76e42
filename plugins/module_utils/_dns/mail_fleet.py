# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the mail DNS needs from the whole fleet: sending domains, vMTAs and DKIM public keys of every host.

PRIVATE to the collection: no compatibility promise outside it. Standard library only.
Pure functions. The dns role and lab_summary.yml read the central fleet model (``mail_dns_from_model``);
``gather_mail_dns`` combines what was read per host (the DKIM public keys):

    gather_mail_dns([{"host": "pmta1", "domains": [...], "vmtas": [...], "dkim_keys": [...]}, ...])
    -> {"domains": [...], "vmtas": [...], "dkim_keys": [...]}
"""

from __future__ import annotations

import ipaddress

# Per-domain settings that must agree between hosts: DNS holds one record per domain.
DOMAIN_LIST_KEYS = ("dkim_selectors",)


class FleetGatherError(ValueError):
    """Hosts disagree about something DNS can hold only once; the message names the hosts and the fix."""


def _domain_name(domain, host):
    name = domain.get("name") if isinstance(domain, dict) else None
    if not isinstance(name, str) or not name.strip(". "):
        raise FleetGatherError("host %s: every item of powermta_domains needs a name, got %r" % (host, domain))
    return name.strip().rstrip(".").lower()


def _merge_domain(merged, owners, domain, host):
    """Fold one host's view of a domain into ``merged``: selectors are united, other settings must agree."""
    name = _domain_name(domain, host)
    if name not in merged:
        merged[name] = dict(domain, name=name)
        if "dkim_selectors" in domain:
            merged[name]["dkim_selectors"] = list(domain["dkim_selectors"] or [])
        owners[name] = host
        return
    current = merged[name]
    for selector in domain.get("dkim_selectors") or []:
        selectors = current.setdefault("dkim_selectors", [])
        if selector not in selectors:
            selectors.append(selector)
    for key in sorted(set(domain) | set(current)):
        if key in DOMAIN_LIST_KEYS or key == "name":
            continue
        if domain.get(key) != current.get(key):
            raise FleetGatherError(
                "sending domain %s: %s is %r on host %s but %r on host %s; DNS holds one record per domain, so "
                "set it the same for the whole fleet (powermta_domains in group_vars)"
                % (name, key, current.get(key), owners[name], domain.get(key), host))


def gather_mail_dns(hosts):
    """Domains, vMTAs and DKIM keys of the whole fleet from ``[{host, domains, vmtas, dkim_keys}]``.

    Domains: every host's (a domain sent by one host only is still published); the same domain on
    several hosts must agree on everything but ``dkim_selectors`` (united, in first-seen order).
    vMTAs: every host's, tagged with ``inventory_host``; one IP on two hosts must have one hostname.
    DKIM keys: every host's, one per (domain, selector); two different keys for one selector are an error.
    """
    domains, domain_owners = {}, {}
    vmtas, ip_owner = [], {}
    keys, key_owner = {}, {}
    for item in hosts:
        host = item.get("host")
        for domain in item.get("domains") or []:
            _merge_domain(domains, domain_owners, domain, host)
        for vmta in item.get("vmtas") or []:
            entry = dict(vmta, inventory_host=host)
            ip = vmta.get("ip")
            if ip:
                try:
                    ip = str(ipaddress.ip_address(str(ip).strip()))
                except ValueError as exc:
                    raise FleetGatherError("host %s: vMTA %s has ip %r, not an IP address"
                                           % (host, vmta.get("name"), vmta.get("ip"))) from exc
                seen = ip_owner.get(ip)
                if seen and seen[1] != vmta.get("hostname"):
                    raise FleetGatherError(
                        "IP %s is vMTA %s on host %s (%s) and on host %s (%s): one PTR per IP, give it one "
                        "hostname" % (ip, vmta.get("name"), seen[0], seen[1], host, vmta.get("hostname")))
                ip_owner.setdefault(ip, (host, vmta.get("hostname")))
            vmtas.append(entry)
        for key in item.get("dkim_keys") or []:
            ident = (str(key.get("domain", "")).rstrip(".").lower(), str(key.get("selector", "")).lower())
            pem = "".join((key.get("public_key_pem") or key.get("public_key") or "").split())
            if ident in keys and "".join((keys[ident].get("public_key_pem") or keys[ident].get("public_key")
                                         or "").split()) != pem:
                raise FleetGatherError(
                    "DKIM selector %s._domainkey.%s has different public keys on hosts %s and %s; one DNS record "
                    "serves the whole fleet, so use one key per selector (powermta_dkim_key_source: controller) "
                    "or a selector per host" % (ident[1], ident[0], key_owner[ident], host))
            if ident not in keys:
                keys[ident] = key
                key_owner[ident] = host
    return {"domains": list(domains.values()), "vmtas": vmtas, "dkim_keys": list(keys.values())}


# Keys of a fleet model's domain items that describe the fleet rather than the domain.
MODEL_DOMAIN_KEYS = ("hosts", "fleet_dkim_selectors", "differs")


def mail_dns_from_model(model, dkim_keys_by_host=()):
    """Domains, vMTAs and DKIM keys for DNS from the fleet model (``mailops.powermta.fleet_model``).

    The model has merged every host's layers once; this only reads it: a domain's selectors are every
    host's (``fleet_dkim_selectors``), a setting the hosts disagree on (``differs``) is an error since DNS
    holds one record per domain, and one IP must have one hostname. ``dkim_keys_by_host``:
    ``[(host, [{domain, selector, public_key_pem}])]`` as read from the hosts (two different keys for one
    selector are an error, as in ``gather_mail_dns``).
    """
    if model == {}:  # not built yet (the role's variables are templated before its preflight builds it)
        return {"domains": [], "vmtas": [], "dkim_keys": []}
    if not isinstance(model, dict) or not isinstance(model.get("domains"), list):
        raise FleetGatherError("the fleet model has no domains list: give the result of mailops.powermta.fleet_model "
                               "(mailops_fleet, registered by playbooks/preflight.yml)")
    domains = []
    for domain in model["domains"]:
        for setting, by_host in sorted((domain.get("differs") or {}).items()):
            raise FleetGatherError(
                "sending domain %s: %s differs between hosts (%s); DNS holds one record per domain, so set it the "
                "same for the whole fleet (powermta_domains in group_vars)"
                % (domain.get("name"), setting, ", ".join("%s: %r" % item for item in sorted(by_host.items()))))
        item = {key: value for key, value in domain.items() if key not in MODEL_DOMAIN_KEYS}
        if "fleet_dkim_selectors" in domain:
            item["dkim_selectors"] = list(domain["fleet_dkim_selectors"])
        domains.append(item)
    hostnames = {}
    for vmta in model.get("vmtas") or []:
        ip = vmta.get("ip")
        if not ip:
            continue
        try:
            ip = str(ipaddress.ip_address(str(ip).strip()))
        except ValueError as exc:
            raise FleetGatherError("host %s: vMTA %s has ip %r, not an IP address"
                                   % (vmta.get("inventory_host"), vmta.get("name"), vmta.get("ip"))) from exc
        seen = hostnames.setdefault(ip, (vmta.get("inventory_host"), vmta.get("name"), vmta.get("hostname")))
        if seen[2] != vmta.get("hostname"):
            raise FleetGatherError(
                "IP %s is vMTA %s on host %s (hostname %s) and vMTA %s on host %s (hostname %s): one PTR per IP, "
                "give it one hostname in powermta_vmtas"
                % (ip, seen[1], seen[0], seen[2], vmta.get("name"), vmta.get("inventory_host"), vmta.get("hostname")))
    keys = gather_mail_dns([{"host": host, "dkim_keys": host_keys} for host, host_keys in dkim_keys_by_host])
    return {"domains": domains, "vmtas": list(model.get("vmtas") or []), "dkim_keys": keys["dkim_keys"]}
