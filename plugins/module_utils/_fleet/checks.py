# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide inventory checks that no single host can make on its own.

PRIVATE to the collection: no compatibility promise outside it.

Input is one "view" per host, built by playbooks/preflight.yml from the merged fleet model:
``{host: {vmtas: [{name, ip, pool}], pools: [name], domains: [{name, dkim_selectors}],
dkim_sign: bool, dkim_key_source: 'host'|'controller', package_given: bool, license_given: bool}}``.
Output is a list of messages, each naming the host and the variable to fix.
"""

from __future__ import annotations

import ipaddress


def _normalised_ip(value):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return str(value).strip()


def ip_owner_problems(owners_by_ip):
    """The one rule "a sending IP belongs to exactly one vMTA on one host" (``{ip: [(host, vMTA name)]}``).

    Twice on one host names the host and both vMTAs; on several hosts names every owner.
    """
    problems = []
    for ip, owners in sorted(owners_by_ip.items()):
        first_on_host = {}
        for host, name in owners:
            if host in first_on_host:
                problems.append("%s: powermta_vmtas item %s: several vMTAs use the same IP %s (%s and %s); give each "
                                "vMTA its own IP" % (host, name, ip, first_on_host[host], name))
            else:
                first_on_host[host] = name
        if len(first_on_host) > 1:
            problems.append(
                "IP %s is used by %s: each sending IP belongs to exactly one vMTA on one host; fix powermta_vmtas "
                "(or powermta_host_vmtas) of those hosts" % (ip, ", ".join("%s/%s" % owner for owner in owners))
            )
    return problems


def fleet_problems(views):
    problems = []
    owners_by_ip = {}
    hosts_by_selector = {}
    for host in sorted(views):
        view = views[host] or {}
        pools = set(view.get("pools") or [])
        for vmta in view.get("vmtas") or []:
            name = vmta.get("name", "?")
            if vmta.get("ip") not in (None, ""):
                owners_by_ip.setdefault(_normalised_ip(vmta["ip"]), []).append((host, name))
            pool = vmta.get("pool")
            if pool and pool not in pools:
                problems.append(
                    "%s: vMTA %s is in pool %r, which is not defined for this host (powermta_vmtas item %s: unknown "
                    "pool %s): add it to powermta_pools (defined: %s) or fix the vMTA's pool in powermta_vmtas"
                    % (host, name, pool, name, pool, ", ".join(sorted(pools)) or "none")
                )
        signing = bool(view.get("dkim_sign", True))
        for domain in view.get("domains") or []:
            selectors = domain.get("dkim_selectors") or []
            if signing and not selectors:
                problems.append(
                    "%s: domain %s has no dkim_selectors while powermta_dkim_sign is true: add a selector "
                    "(e.g. dkim_selectors: [s2026a]) to it in powermta_domains, or set powermta_dkim_sign: false"
                    % (host, domain.get("name", "?"))
                )
            if view.get("dkim_key_source", "host") == "host":
                for selector in selectors:
                    hosts_by_selector.setdefault((domain.get("name"), selector), []).append(host)
        if not view.get("package_given"):
            problems.append(
                "%s: no PowerMTA package: this role never downloads it. Set exactly one of powermta_package_src "
                "(your .deb/.rpm on the controller) or powermta_package_name (a package in your internal repository)"
                % host
            )
        if not view.get("license_given"):
            problems.append(
                "%s: no PowerMTA license: set powermta_license (vaulted text) or powermta_license_src "
                "(a file on the controller)" % host
            )
    problems += ip_owner_problems(owners_by_ip)
    for (domain, selector), hosts in sorted(hosts_by_selector.items()):
        if len(hosts) > 1:
            problems.append(
                "DKIM selector %s of %s is used on %s with powermta_dkim_key_source: host, so each host would sign "
                "with its own key under one DNS record: set powermta_dkim_key_source: controller (one key shared) "
                "or give each host its own selector" % (selector, domain, ", ".join(hosts))
            )
    return problems
