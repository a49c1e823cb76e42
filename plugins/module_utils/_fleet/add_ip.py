# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/add_ip.yml: which hosts carry the requested new IPs, decided from the fleet model.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. "An IP is on one vMTA of one host" is the fleet model's rule (_fleet_model.py,
_fleet.py), refused by the preflight that add_ip.yml runs first, so it is not checked again here.
"""

from __future__ import annotations

from .derived import as_flag, is_warming


def requested_ips(value):
    """``-e add_ip=a,b`` or a YAML list -> the IPs, trimmed, lower case, once each, order kept."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    out = []
    for item in items:
        text = str(item).strip().lower()
        if text and text not in out:
            out.append(text)
    return out


def add_ip_plan(model, add_ip, play_hosts, require_warmup=True):
    """``{requested, found, problems, hosts}`` for ``-e add_ip=...`` against the fleet model.

    ``found``: the model's ``ips`` entries of the requested IPs; ``problems``: one line each (nothing changes
    while there is one); ``hosts``: ``{host: {vmtas, verify_ips, warming}}`` for each host that carries one:
    its vMTA items, the ``{ip, hostname}`` pairs dns_verify checks, and whether one of them warms up.
    """
    requested = requested_ips(add_ip)
    found = [entry for entry in model.get("ips") or [] if entry.get("ip") in requested]
    problems = []
    if not requested:
        problems.append("add_ip is empty: give the new IP(s), e.g. -e add_ip=203.0.113.12")
    for ip in requested:
        hits = [entry for entry in found if entry["ip"] == ip]
        if not hits:
            problems.append("IP %s is in no powermta_vmtas of the play hosts (%s): add its vMTA to the host_vars of "
                            "the host that carries it, e.g. {name: mk-eu-03, ip: %s, hostname: mtaNN.example.com, "
                            "pool: POOL, warmup: true}" % (ip, ", ".join(play_hosts), ip))
        elif as_flag(require_warmup, True) and not is_warming(hits[0]):
            problems.append("%s/powermta_vmtas %s (IP %s) has no warmup: true: a new IP must warm up; set warmup: "
                            "true, or -e add_ip_require_warmup=false for an IP that is already warm"
                            % (hits[0]["host"], hits[0]["vmta"], ip))
    hosts = {}
    for host in play_hosts:
        vmtas = [vmta for vmta in ((model.get("hosts") or {}).get(host) or {}).get("vmtas") or []
                 if vmta.get("ip") in requested]
        if vmtas:
            hosts[host] = {"vmtas": vmtas,
                           "verify_ips": [{"ip": str(vmta["ip"]), "hostname": vmta.get("hostname")} for vmta in vmtas],
                           "warming": any(is_warming(vmta) for vmta in vmtas)}
    return {"requested": requested, "found": found, "problems": problems, "hosts": hosts}
