"""Shared helpers of the site scenario's tests: the scenario's files, BIND 9 queries, ansible-playbook runs."""

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

SCENARIO = Path(__file__).resolve().parents[1]
ROOT = SCENARIO.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "testbed"))
from bench_run import recap  # noqa: E402,F401 - the scenario's tests import it from here

__all__ = ["recap"]

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
HOSTS = ["site-n1", "site-n2", "site-n3"]
# The fleet model of inventory/host_vars: host -> [(vmta, ip, hostname, pool, warmup)].
VMTAS = {
    "site-n1": [("tx-40", "203.0.113.40", "mta40.example.com", "transactional", False),
                ("mk-eu-41", "203.0.113.41", "mta41.example.com", "marketing-eu", True)],
    "site-n2": [("tx-42", "203.0.113.42", "mta42.example.com", "transactional", False),
                ("mk-eu-43", "203.0.113.43", "mta43.example.com", "marketing-eu", True)],
    "site-n3": [("tx-44", "198.51.100.44", "mta44.example.com", "transactional", False),
                ("mk-eu-45", "198.51.100.45", "mta45.example.com", "marketing-eu", True)],
}
ALL_IPS = [vmta[1] for host in HOSTS for vmta in VMTAS[host]]


def ephemeral():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def connection():
    return json.loads((ephemeral() / "bind9" / "connection.json").read_text())


def query(name, rdtype):
    """Answer strings of NAME/TYPE from the scenario's BIND 9 (TXT strings joined), [] when none."""
    conn = connection()
    request = dns.message.make_query(name, rdtype)
    response = dns.query.tcp(request, conn["server"], port=int(conn["port"]), timeout=5)
    values = []
    for rrset in response.answer:
        if rrset.rdtype != dns.rdatatype.from_text(rdtype):
            continue
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.TXT:
                values.append(b"".join(rdata.strings).decode())
            else:
                values.append(rdata.to_text())
    return sorted(values)


def soa_serial(zone):
    return [int(value.split()[2]) for value in query(zone, "SOA")]


def playbook(playbook_path, *args, inventories=(), timeout=900, env=None):
    """Run ansible-playbook against Molecule's inventory (plus INVENTORIES), as a user would (ENV: extra
    environment)."""
    command = [ANSIBLE_PLAYBOOK, "-i", os.environ["MOLECULE_INVENTORY_FILE"]]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    command += [str(playbook_path), *args]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)


def pmta_checksums(host):
    """sha256 of every file under /etc/pmta and of the warm-up state."""
    return host.check_output(
        "find /etc/pmta /etc/ansible/facts.d -type f 2>/dev/null | sort | xargs -r sha256sum")


def spf_covers(spf, ip):
    """True when an ip4:/ip6: term of the SPF record covers IP (the dns role aggregates neighbours)."""
    address = ipaddress.ip_address(ip)
    for term in spf.split():
        if term.startswith(("ip4:", "ip6:")):
            network = ipaddress.ip_network(term[4:], strict=False)
            if address.version == network.version and address in network:
                return True
    return False
