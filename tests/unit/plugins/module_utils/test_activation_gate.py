# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The activation gate: what it reads from the config, and real sockets for the probes."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.activation_gate import (
    GateError,
    listener_address,
    log_lines,
    probe_http,
    probe_smtp_banner,
    read_endpoints,
    serving_checks,
    spool_problems,
    wait_until_serving,
)


def test_read_endpoints_follows_includes_and_ignores_nested_blocks(tmp_path):
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "startup.conf").write_text(
        "http-mgmt-port 8181  # moved\n<smtp-listener 0/0:25>\n    tls-certificate /x.pem\n</smtp-listener>\n"
        "smtp-listener 203.0.113.10:587\n")
    (conf / "a.conf").write_text(
        "<virtual-mta v1>\n<domain *>\nsmtp-listener 192.0.2.1:26\n</domain>\n</virtual-mta>\n")
    (tmp_path / "config").write_text(
        "log-file /var/log/pmta/log\n<spool /var/spool/pmta>\n</spool>\n"
        "include %s/startup.conf\ninclude %s/*.conf\n" % (conf, conf))
    found = read_endpoints(str(tmp_path / "config"))
    assert found["listeners"] == ["0/0:25", "203.0.113.10:587"]
    assert found["http_mgmt_port"] == 8181
    assert found["spools"] == ["/var/spool/pmta"]
    assert found["log_file"] == "/var/log/pmta/log"


def test_read_endpoints_defaults_the_port_and_names_an_unreadable_file(tmp_path):
    (tmp_path / "config").write_text("include %s/missing.conf\n" % tmp_path)
    with pytest.raises(GateError, match="missing.conf"):
        read_endpoints(str(tmp_path / "config"))
    (tmp_path / "config").write_text("host-name mta.example.com\n")
    assert read_endpoints(str(tmp_path / "config"))["http_mgmt_port"] == 8080  # §3.3.1.36.1 default


@pytest.mark.parametrize("name, expected", [
    ("0/0:25", ("127.0.0.1", 25)),
    ("203.0.113.10:587", ("203.0.113.10", 587)),
    ("2001:db8::1:25", ("2001:db8::1", 25)),
    ("[::]:25", ("::1", 25)),
])
def test_listener_address(name, expected):
    assert listener_address(name) == expected


@contextlib.contextmanager
def serving(reply):
    """A real TCP server on loopback that sends ``reply`` to each client; yields its port.

    The accepting thread stops before the socket is closed: a thread still blocked in accept() on a closed
    socket would take connections from the next socket that gets the same descriptor number (another test's
    server), which answered a later test's HTTP request with this SMTP banner."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.1)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                client, _addr = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client:
                client.settimeout(5)
                if reply.startswith(b"HTTP"):
                    client.recv(1024)
                client.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


def test_probes_tell_smtp_from_http_and_a_closed_port():
    with serving(b"220 mta.example.com ESMTP\r\n") as smtp_port, \
            serving(b"HTTP/1.0 403 Forbidden\r\n\r\n") as http_port:
        assert probe_smtp_banner("127.0.0.1", smtp_port, 5) == (True, "220 mta.example.com ESMTP")
        assert probe_http("127.0.0.1", http_port, 5) == (True, "HTTP/1.0 403 Forbidden")
        # The SMTP listener on the management port (http-mgmt-port 25) is not the web monitor.
        ok, detail = probe_http("127.0.0.1", smtp_port, 5)
        assert not ok and "not HTTP" in detail
    unused = socket.socket()
    unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        ok, detail = probe_smtp_banner("127.0.0.1", unused.getsockname()[1], 2)
    finally:
        unused.close()
    assert not ok and "refused" in detail.lower()


def test_serving_checks_skip_pmtahttp_when_the_web_monitor_is_off():
    endpoints = {"listeners": ["0/0:25"], "http_mgmt_port": 0, "spools": [], "log_file": None}
    probes = {"unit": lambda name: "active", "smtp": lambda host, port, timeout: (True, "220 x"),
              "http": lambda *a: pytest.fail("no web monitor to probe")}
    checks = serving_checks(["pmta", "pmtahttp"], endpoints, 5, probes)
    assert [c["name"] for c in checks] == ["service pmta", "smtp-listener 0/0:25"]


def test_wait_needs_consecutive_passes_and_gives_up_at_the_timeout():
    endpoints = {"listeners": [], "http_mgmt_port": 8080, "spools": [], "log_file": None}
    now = [0.0]
    # pmtahttp crash-looping: active for a moment, the port never answers HTTP.
    states = iter(["active", "activating", "active", "failed"] * 20)
    probes = {"unit": lambda name: "active" if name == "pmta" else next(states),
              "http": lambda host, port, timeout: (False, "127.0.0.1:8080 answered '220 x', not HTTP")}
    ok, checks, waited = wait_until_serving(["pmta", "pmtahttp"], endpoints, 10, probes=probes,
                                            clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert not ok and waited >= 10
    assert any(not c["ok"] and "not HTTP" in c["detail"] for c in checks)
    probes = {"unit": lambda name: "active", "http": lambda *a: (True, "HTTP/1.0 200 OK")}
    ok, checks, waited = wait_until_serving(["pmta"], endpoints, 10, probes=probes,
                                            clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert ok and all(c["ok"] for c in checks)


class FakeStatvfs:
    def __init__(self, blocks, avail):
        self.f_blocks, self.f_bavail, self.f_frsize = blocks, avail, 4096


def test_spool_problems_names_full_and_missing_spools(tmp_path):
    sizes = {"/spool/full": FakeStatvfs(1000, 50), "/spool/ok": FakeStatvfs(1000, 500)}

    def statvfs(path):
        if path not in sizes:
            raise FileNotFoundError(2, "No such file or directory")
        return sizes[path]

    problems = spool_problems(["/spool/full", "/spool/ok", "/spool/gone"], 10, statvfs)
    assert problems == [{"spool": "/spool/full", "free_percent": 5.0, "free_bytes": 50 * 4096},
                        {"spool": "/spool/gone", "error": "No such file or directory"}]
    assert spool_problems([str(tmp_path)], 0.0) == []  # the real statvfs


def test_log_lines_tail_recent_files_only(tmp_path):
    recent = tmp_path / "pmtahttp.log"
    recent.write_text("".join("line %d\n" % n for n in range(40)))
    old = tmp_path / "old.log"
    old.write_text("old\n")
    os.utime(old, (1, 1))
    found = log_lines([str(recent), str(old), str(tmp_path / "none")], [], lines=3, since=1000)
    assert found == [{"source": str(recent), "lines": ["line 37", "line 38", "line 39"]}]


def test_log_lines_keep_only_what_was_logged_since_the_activation(tmp_path):
    log = tmp_path / "pmtahttp.log"
    log.write_text("2026-01-01 10:00:00 pmtahttpd: an old failure\n2026-01-01 10:05:00 pmtahttpd: cannot listen\n"
                   "  a continuation line\n")
    since = time.mktime(time.strptime("2026-01-01 10:04:00", "%Y-%m-%d %H:%M:%S"))
    assert log_lines([str(log)], [], since=since) == [
        {"source": str(log), "lines": ["2026-01-01 10:05:00 pmtahttpd: cannot listen", "  a continuation line"]}]
    later = time.mktime(time.strptime("2026-01-01 11:00:00", "%Y-%m-%d %H:%M:%S"))
    assert log_lines([str(log)], [], since=later) == []
