"""Every nspawn bench host: reachable, its own address, isolated network, no default route."""

import ipaddress
import json

import pytest

BENCH_NET = ipaddress.ip_network("198.18.0.0/15")


def test_reachable_with_own_hostname(host):
    assert host.check_output("hostname") == host.backend.get_hostname()


def test_own_bench_address(host):
    fact = json.loads(host.file("/etc/ansible/facts.d/bench.fact").content_string)
    addrs = host.interface("host0").addresses
    assert fact["address"] in addrs
    assert ipaddress.ip_address(fact["address"]) in BENCH_NET


def test_no_default_route(host):
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""
    # Nothing outside the host's own /30 is reachable.
    out = host.run("ip route get 192.0.2.1")
    assert out.rc != 0 and "unreachable" in out.stderr


def test_systemd_running_and_sshd(host):
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state == "running", host.check_output("systemctl --failed --no-legend")
    assert host.service("ssh").is_running


def test_network_sysctl_applied_in_own_namespace(host):
    assert host.sysctl("net.core.somaxconn") == 4096
    assert host.file("/etc/sysctl.d/60-bench-smoke.conf").contains("net.core.somaxconn")


def test_extra_addresses_only_where_configured(host):
    addrs = host.interface("host0").addresses
    name = host.backend.get_hostname()
    if name == "smoke-n1":
        assert {"203.0.113.10", "203.0.113.11"} <= set(addrs)
    else:
        assert "203.0.113.10" not in addrs


def test_loop_disk_takes_xfs(host):
    if host.backend.get_hostname() != "smoke-n3":
        pytest.skip("only smoke-n3 has a loop disk")
    assert host.run("test -b /dev/nvme0n1").rc == 0
    host.check_output("mkfs.xfs -f -q /dev/nvme0n1")
    assert host.check_output("blkid -o value -s TYPE /dev/nvme0n1") == "xfs"
