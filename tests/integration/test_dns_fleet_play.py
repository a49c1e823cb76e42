# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""site.yml's DNS play (playbooks/dns.yml) on a 50 x 64 fleet model, controller side, BIND on loopback (issue 25).

The inventory is the bench's 50 x 64 fleet (tests/testbed/fleet_inventory.py, as bench_fleet_scale.py makes
it): 3,200 vMTA addresses in 2001:db8:5ca1::/48, host names in example.com, one sending domain. The play
publishes 3,200 AAAA, 3,200 PTR, 3,200 HELO SPF and the domain's SPF, DKIM, DMARC and bounce MX with the
ownership registry, verifies all of it with dns_verify, and the second run changes nothing.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
from conftest import TESTBED, Bind9Server, _require_named
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dns_helpers import ROOT, dig, run_playbook, serial

HOSTS, IPS = 50, 64
PLAYBOOK = ROOT / "playbooks" / "dns.yml"


def _failure(output):
    """The output without the per-host lines of 50 hosts (skipping, ok, the recap)."""
    lines = [line for line in output.splitlines() if not line.startswith(("skipping: ", "ok: [scale-"))
             and ": ok=" not in line]
    return "\n".join(lines)[-6000:]


def _fleet_inventory():
    name = "mailops_testbed_fleet_inventory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TESTBED / "fleet_inventory.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """``(inventory, extra vars file, named)``: the 50 x 64 inventory and the DNS connection to a named of its own."""
    _require_named()
    workdir = tmp_path_factory.mktemp("dns-fleet-play")
    server = Bind9Server(workdir / "bind9")
    server.start()
    package = workdir / "pmta.deb"
    package.write_text("not a package: the DNS play never installs it\n")
    _fleet_inventory().write_inventory(str(workdir), HOSTS, IPS, str(package), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    domains = json.loads((workdir / "group_vars" / "pmta_fleet.json").read_text())["powermta_domains"]
    for domain in domains:  # DNS needs where the DMARC reports go
        domain.setdefault("dmarc_rua", "mailto:dmarc-reports@%s" % domain["name"])
    extra = workdir / "dns.json"
    extra.write_text(json.dumps({
        "powermta_domains": domains,
        "dns_server": server.address, "dns_port": server.port, "dns_key_name": server.key_name,
        "dns_key_secret": server.key_secret, "dns_key_algorithm": server.key_algorithm,
        # No key files on these hosts: the public key as the powermta role's fact of this run.
        "dns_dkim_keys_from_hosts": False,
        "powermta_dkim_public_keys": [{"domain": "example.com", "selector": "s2026a", "public_key_pem": pem,
                                       "bits": 1024}],
    }))
    yield workdir / "hosts.json", extra, server
    server.stop()


@pytest.fixture(scope="module")
def first_run(fleet):
    inventory, extra, _server = fleet
    return run_playbook(PLAYBOOK, inventory, "-e", "@%s" % extra)


def test_first_run_publishes_and_verifies_the_whole_fleet(first_run, fleet):
    rc, output, recap = first_run
    assert rc == 0, _failure(output)
    assert sum(counters["changed"] for counters in recap.values()) >= 1
    total = HOSTS * IPS
    # Per IP: ptr, fcrdns, helo_spf; per domain: spf_record, spf_lookups, spf per IP, dkim, dmarc, bounce mx.
    checks = 3 * total + 2 + total + 3
    assert "checks passed: %d of %d" % (checks, checks) in output, _failure(output)
    server = fleet[2]
    assert dig(server, "AAAA", "mta64-scale-50.example.com") == "2001:db8:5ca1::c80"
    assert dig(server, "-x", "2001:db8:5ca1::c80") == "mta64-scale-50.example.com."
    assert dig(server, "TXT", "mta64-scale-50.example.com") == '"v=spf1 a -all"'


def test_second_run_changes_nothing(first_run, fleet):
    assert first_run[0] == 0, first_run[1][-4000:]
    inventory, extra, server = fleet
    serials = [serial(server, zone) for zone in ("example.com", "8.b.d.0.1.0.0.2.ip6.arpa")]
    rc, output, recap = run_playbook(PLAYBOOK, inventory, "-e", "@%s" % extra)
    assert rc == 0, _failure(output)
    assert all(counters["changed"] == 0 for counters in recap.values()), _failure(output)
    assert "changed RRsets: 0" in output
    assert [serial(server, zone) for zone in ("example.com", "8.b.d.0.1.0.0.2.ip6.arpa")] == serials
