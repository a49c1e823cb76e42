"""site.yml on three bench hosts and BIND 9: every host serves, its config lints clean, BIND has the
fleet's mail records, the metrics are written, and --check changes nothing."""

import base64
import io
import json
import sys
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization
from helpers import (
    ALL_IPS,
    HOSTS,
    ROOT,
    SCENARIO,
    VMTAS,
    ephemeral,
    playbook,
    pmta_checksums,
    query,
    recap,
    soa_serial,
    spf_covers,
)

sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))
from _pmta_config import lint_path  # noqa: E402 - the collection's linter, imported by path

TEXTFILE = "/var/lib/prometheus/node-exporter/pmta.prom"


def reverse_name(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


# ---------------------------------------------------------------- every host
@pytest.mark.parametrize("service", ["pmta", "pmtahttp", "prometheus-node-exporter", "pmta-metrics.timer"])
def test_services_running_and_enabled(host, service):
    unit = host.service(service)
    assert unit.is_running, host.run("systemctl status %s" % service).stdout
    assert unit.is_enabled


def test_config_files_present(host):
    with host.sudo():
        for path in ("/etc/pmta/config", "/etc/pmta/license", "/etc/pmta/conf.d/vmtas.conf",
                     "/etc/pmta/conf.d/isp-policies.conf", "/etc/pmta/conf.d/acct.conf",
                     "/etc/pmta/dkim/example.com/s2026a.pem"):
            assert host.file(path).is_file, path


def test_config_carries_this_hosts_vmtas_and_no_other(host):
    name = host.backend.get_hostname()
    with host.sudo():
        vmtas = host.file("/etc/pmta/conf.d/vmtas.conf").content_string
    for other, entries in VMTAS.items():
        for vmta, ip, hostname, _pool, warmup in entries:
            line = "smtp-source-host %s %s" % (ip, hostname)
            if other == name:
                assert line in vmtas
                assert ("include /etc/pmta/conf.d/warmup.d/%s.conf" % vmta in vmtas) == warmup
            else:
                assert line not in vmtas


def test_pmta_accepts_the_config(host):
    with host.sudo():
        result = host.run("pmta test config")
    assert result.rc == 0, result.stdout + result.stderr


def test_config_is_lint_clean(host, tmp_path):
    """The collection's linter on a copy of the host's /etc/pmta (includes resolved inside the copy)."""
    with host.sudo():
        archive = host.check_output("tar -C / -czf - etc/pmta | base64 -w0")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(archive))) as tar:
        tar.extractall(tmp_path, filter="data")
    result = lint_path(str(tmp_path / "etc/pmta/config"), include_root=str(tmp_path))
    assert result.errors == [], [finding.format_pmta() for finding in result.errors]


def test_same_dkim_key_on_every_host(host):
    """powermta_dkim_key_source: controller: one key per selector, so one DNS record serves the fleet."""
    with host.sudo():
        on_host = host.check_output("openssl rsa -in /etc/pmta/dkim/example.com/s2026a.pem -pubout 2>/dev/null")
    assert on_host.strip() == controller_public_key().strip()


def test_metrics_textfile_written(host):
    with host.sudo():
        host.run("for i in $(seq 30); do test -s %s && break; sleep 1; done" % TEXTFILE)
        textfile = host.file(TEXTFILE)
        assert textfile.is_file and textfile.size > 0
        samples = dict(line.rsplit(" ", 1) for line in textfile.content_string.splitlines()
                       if line and not line.startswith("#"))
    assert float(samples["pmta_status_up"]) == 1
    assert 'pmta_service_active{unit="pmta"}' in samples


# ---------------------------------------------------------------- DNS (controller side)
def controller_public_key():
    pem = (ephemeral() / "dkim" / "example.com" / "s2026a.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_spf_authorizes_every_sending_ip_of_the_fleet():
    spf = [value for value in query("example.com", "TXT") if value.startswith("v=spf1")]
    assert len(spf) == 1, spf
    assert [ip for ip in ALL_IPS if not spf_covers(spf[0], ip)] == [], spf
    assert spf[0].split()[-1] == "-all"
    assert not spf_covers(spf[0], "198.51.100.46"), "an IP outside the fleet model is authorised: %s" % spf


def test_dkim_record_holds_the_fleets_key():
    records = query("s2026a._domainkey.example.com", "TXT")
    assert len(records) == 1, records
    tags = dict(part.strip().split("=", 1) for part in records[0].split(";") if part.strip())
    body = "".join(controller_public_key().strip().splitlines()[1:-1])
    assert tags["v"] == "DKIM1" and tags["p"] == body


def test_dmarc_and_bounce_mx():
    dmarc = query("_dmarc.example.com", "TXT")
    assert len(dmarc) == 1 and "p=none" in dmarc[0] and "rua=mailto:dmarc-reports@example.com" in dmarc[0], dmarc
    assert query("bounces.example.com", "MX"), "bounce domain without MX"


@pytest.mark.parametrize("vmta", [v for host in HOSTS for v in VMTAS[host]], ids=lambda v: v[1])
def test_forward_confirmed_reverse_dns(vmta):
    _name, ip, hostname, _pool, _warmup = vmta
    assert query(hostname, "A") == [ip]
    assert query(reverse_name(ip), "PTR") == [hostname + "."]


# ---------------------------------------------------------------- check mode (whole fleet)
def test_check_mode_changes_nothing(host):
    """--check --diff on the converged fleet with one change pending (DMARC none -> quarantine): the hosts
    report nothing to change, the DNS change is shown, and neither the hosts nor BIND 9 change."""
    if host.backend.get_hostname() != HOSTS[0]:
        pytest.skip("runs once for the fleet")
    hosts = {name: host.get_host("ansible://%s?ansible_inventory=%s" % (name, host.backend.ansible_inventory))
             for name in HOSTS}
    before = {name: pmta_checksums(h) for name, h in hosts.items()}
    serial = soa_serial("example.com")
    domains = [{"name": "example.com", "dkim_selectors": ["s2026a"], "dkim_key_bits": 2048,
                "dmarc_policy": "quarantine", "dmarc_rua": "mailto:dmarc-reports@example.com",
                "bounce_domain": "bounces.example.com"}]
    result = playbook(SCENARIO / "converge.yml", "--check", "--diff", "-e", json.dumps({"powermta_domains": domains}))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "p=quarantine" in output, output[-4000:]
    counts = recap(result.stdout)
    # site-n1 runs the controller-side dns role (run_once): its one change is the UPDATE it would send.
    assert {name: counts[name]["changed"] for name in HOSTS} == {HOSTS[0]: 1, HOSTS[1]: 0, HOSTS[2]: 0}, \
        output[-6000:]
    assert {name: pmta_checksums(h) for name, h in hosts.items()} == before
    assert soa_serial("example.com") == serial
    assert "p=none" in query("_dmarc.example.com", "TXT")[0]
