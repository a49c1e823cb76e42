"""The operators' runbooks on the converged fleet: playbooks/rolling_reload.yml and playbooks/add_ip.yml.

Runs after test_fleet.py (pytest takes the files in name order): add_ip.yml leaves the fleet with one
more vMTA than Molecule's inventory has.
"""

import json

import pytest
from helpers import HOSTS, ROOT, playbook, pmta_checksums, query, recap, spf_covers

LOG = "/var/log/pmta/log"
NEW_IP = "198.51.100.46"  # configured on site-n3 (molecule.yml), in no host_vars
NEW_VMTA = {"name": "mk-eu-46", "ip": NEW_IP, "hostname": "mta46.example.com", "pool": "marketing-eu",
            "warmup": True}


def reloads(fleet):
    return {name: int(h.run("grep -c 'configuration reloaded' %s" % LOG).stdout.strip() or 0)
            for name, h in fleet.items()}


# ---------------------------------------------------------------- rolling_reload.yml
def test_rolling_reload_reloads_every_host_one_by_one(once, fleet):
    before = reloads(fleet)
    result = playbook(ROOT / "playbooks" / "rolling_reload.yml")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert reloads(fleet) == {name: count + 1 for name, count in before.items()}
    # serial 1: one play batch per host, in inventory order
    assert [line.split("[")[1].rstrip("]") for line in output.splitlines()
            if line.startswith("changed: [")] == HOSTS, output[-4000:]
    for h in fleet.values():
        assert h.service("pmta").is_running


def test_rolling_reload_stops_at_the_first_refusing_host(once, fleet):
    first = fleet[HOSTS[0]]
    before = reloads(fleet)
    # The test double's hook: PowerMTA refuses a config containing this text (site-n1's host name).
    first.run_expect([0], "echo %s.example.com > /etc/pmta/TEST-DOUBLE-refuse" % HOSTS[0])
    try:
        result = playbook(ROOT / "playbooks" / "rolling_reload.yml")
    finally:
        first.run("rm -f /etc/pmta/TEST-DOUBLE-refuse")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "refused by test hook" in output, output[-4000:]
    counts = recap(result.stdout)
    assert counts[HOSTS[0]]["failed"] == 1
    assert not set(HOSTS[1:]) & set(counts), "hosts after the failure were touched: %s" % counts
    assert reloads(fleet) == before
    assert first.service("pmta").is_running


def test_rolling_reload_check_mode_reloads_nothing(once, fleet):
    before = reloads(fleet)
    result = playbook(ROOT / "playbooks" / "rolling_reload.yml", "--check")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert reloads(fleet) == before


# ---------------------------------------------------------------- add_ip.yml
@pytest.fixture(scope="module")
def edited_inventory(tmp_path_factory):
    """What the operator does first: the new vMTA in site-n3's host_vars (a second inventory source here,
    so the scenario's files stay as committed)."""
    directory = tmp_path_factory.mktemp("add-ip-inventory")
    (directory / "hosts.yml").write_text("pmta_fleet:\n  hosts:\n    site-n3: {}\n")
    (directory / "host_vars").mkdir()
    (directory / "host_vars" / "site-n3.yml").write_text(json.dumps({"powermta_host_vmtas": [NEW_VMTA]}))
    return directory


def test_add_ip_refuses_an_ip_missing_from_the_inventory(once, fleet):
    before = {name: pmta_checksums(h) for name, h in fleet.items()}
    result = playbook(ROOT / "playbooks" / "add_ip.yml", "-e", "add_ip=%s" % NEW_IP)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    assert "IP %s is in no powermta_vmtas" % NEW_IP in output, output[-4000:]
    assert {name: pmta_checksums(h) for name, h in fleet.items()} == before
    assert query("mta46.example.com", "A") == []


def test_add_ip_brings_the_new_ip_into_service(once, fleet, edited_inventory):
    others = {name: pmta_checksums(fleet[name]) for name in HOSTS[:2]}
    result = playbook(ROOT / "playbooks" / "add_ip.yml", "-e", "add_ip=%s" % NEW_IP, inventories=[edited_inventory])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = recap(result.stdout)
    assert counts["site-n3"]["changed"] > 0
    # the other hosts are not changed
    assert {name: pmta_checksums(fleet[name]) for name in HOSTS[:2]} == others
    # PowerMTA on site-n3 has the vMTA, with its warm-up include, and accepts the config
    target = fleet["site-n3"]
    vmtas = target.file("/etc/pmta/conf.d/vmtas.conf").content_string
    assert "smtp-source-host %s mta46.example.com" % NEW_IP in vmtas
    assert "include /etc/pmta/conf.d/warmup.d/mk-eu-46.conf" in vmtas
    assert target.run("pmta test config").rc == 0
    # DNS: SPF gains the IP, A and PTR agree (forward-confirmed), checked by the playbook too
    spf = [v for v in query("example.com", "TXT") if v.startswith("v=spf1")][0]
    assert spf_covers(spf, NEW_IP), spf
    assert query("mta46.example.com", "A") == [NEW_IP]
    assert query("46.100.51.198.in-addr.arpa", "PTR") == ["mta46.example.com."]
    assert "%s fcrdns ok" % NEW_IP in output, output[-6000:]
    # warm-up stage 1 for every ISP group of the new IP, rates in its include
    state = json.loads(target.file("/etc/ansible/facts.d/pmta_warmup.fact").content_string)
    stages = {isp: pair["stage"] for isp, pair in state["ips"][NEW_IP].items()}
    assert stages and set(stages.values()) == {1}, stages
    rates = target.file("/etc/pmta/conf.d/warmup.d/mk-eu-46.conf").content_string
    assert "max-msg-rate 200/d" in rates, rates
