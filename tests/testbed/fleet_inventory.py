# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet inventory of H hosts x M IPs for the bench (tests/bench/bench_fleet_scale.py) and the tests that run
the playbooks at fleet size (tests/integration/test_dns_fleet_play.py). Standard library only.

    write_inventory(workdir, hosts, ips, package, connections)   # workdir/hosts.json, group_vars/pmta_fleet.json

Hosts ``scale-1`` ... ``scale-H`` in group ``pmta_fleet``, each with M vMTAs (addresses from
``vmta_addresses``); ``connections=None`` makes every host ``ansible_connection: local`` with its addresses
given as ``bench_ipv4`` / ``bench_ipv6`` (controller side, no hosts).
"""

from __future__ import annotations

import ipaddress
import json
import os

VENV_BIN = os.path.join(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                                      os.pardir)), ".venv", "bin")


def vmta_addresses(hosts: int, ips: int) -> list[list[str]]:
    """Unique vMTA addresses per host: the IPv4 documentation ranges when they suffice, else 2001:db8::/32."""
    total = hosts * ips
    if total <= 3 * 250:
        pool = [f"{net}.{i}" for net in ("203.0.113", "198.51.100", "192.0.2") for i in range(1, 251)]
    else:
        base = int(ipaddress.IPv6Address("2001:db8:5ca1::"))
        pool = [str(ipaddress.IPv6Address(base + n + 1)) for n in range(total)]
    return [pool[h * ips:(h + 1) * ips] for h in range(hosts)]


def write_inventory(workdir: str, hosts: int, ips: int, package: str, connections: dict | None) -> list[str]:
    names = [f"scale-{h + 1}" for h in range(hosts)]
    addresses = vmta_addresses(hosts, ips)
    inv = {"all": {"children": {"pmta_fleet": {"hosts": {}}}}}
    for name, addrs in zip(names, addresses, strict=True):
        host = {}
        if connections is None:
            host.update(ansible_connection="local", ansible_python_interpreter=os.path.join(VENV_BIN, "python"),
                        bench_ipv4=[a for a in addrs if ":" not in a] + ["198.18.0.2"],
                        bench_ipv6=[a for a in addrs if ":" in a])
        else:
            conn = connections[name]
            host.update(ansible_host=conn["address"], ansible_port=conn["port"], ansible_user=conn["user"],
                        ansible_ssh_private_key_file=conn["identity_file"])
        host["powermta_hostname"] = f"{name}.example.com"
        host["powermta_vmtas"] = [
            {"name": f"v{i + 1:03d}", "ip": addr, "hostname": f"mta{i + 1}-{name}.example.com",
             "pool": "transactional" if i % 2 == 0 else "marketing-eu", "warmup": i % 2 == 1}
            for i, addr in enumerate(addrs)]
        inv["all"]["children"]["pmta_fleet"]["hosts"][name] = host
    fleet = {
        "powermta_package_src": package,
        "powermta_license": "# TEST DOUBLE license: not a PowerMTA license\nlicensee: bench\nexpires: 2100-01-01\n",
        # One DKIM key per selector for the fleet (what a fleet sharing a selector needs).
        "powermta_dkim_key_source": "controller",
        "powermta_dkim_controller_dir": os.path.join(workdir, "dkim"),
        "powermta_postmaster": "postmaster@example.com",
        "powermta_domains": [{"name": "example.com", "dkim_selectors": ["s2026a"], "dkim_key_bits": 1024,
                              "dmarc_policy": "none", "bounce_domain": "bounces.example.com"}],
        "powermta_pools": [{"name": "transactional", "traffic": "transactional"},
                           {"name": "marketing-eu", "traffic": "marketing", "region": "eu"}],
        "powermta_injectors": [{"name": "mumara", "password": "Bench-Only-Mumara-2026",
                                "networks": ["198.51.100.20/32"]}],
    }
    os.makedirs(os.path.join(workdir, "group_vars"), exist_ok=True)
    with open(os.path.join(workdir, "hosts.json"), "w", encoding="utf-8") as handle:
        json.dump(inv, handle)
    with open(os.path.join(workdir, "group_vars", "pmta_fleet.json"), "w", encoding="utf-8") as handle:
        json.dump(fleet, handle)
    return names
