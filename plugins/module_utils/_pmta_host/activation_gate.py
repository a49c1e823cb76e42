# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate around activating a PowerMTA config: room in the spool before, serving after.

PRIVATE to the collection (pmta_activation_gate). Standard library only, unit-tested without Ansible.
What to probe is read from the installed config itself (what PowerMTA reads at start, §3.1), so the
powermta role and the warm-up step gate the same way: every ``smtp-listener`` (§3.3.17) must answer with
an SMTP 220 banner, ``http-mgmt-port`` (§3.3.1.36.1, default 8080, 0 = no web monitor) must answer HTTP,
and every ``<spool>`` (§3.3.2) file system must have room.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import subprocess
import time

DEFAULT_HTTP_MGMT_PORT = 8080  # §3.3.1.36.1


class GateError(Exception):
    """The config on the host cannot be read."""


def _words(line):
    line = line.split("#", 1)[0].strip()
    return line.split() if line else []


def read_endpoints(config_path, max_files=200):
    """{listeners: [NAME], http_mgmt_port: N, spools: [DIR], log_file: PATH|None} from the config and its includes.

    A small reader: the lint step already proved the syntax; this only finds the few directives the gate
    probes. ``include`` takes a path or a glob (§3.1); later values of a global directive win.
    """
    found = {"listeners": [], "http_mgmt_port": DEFAULT_HTTP_MGMT_PORT, "spools": [], "log_file": None}
    queue = [config_path]
    seen = set()
    while queue:
        path = queue.pop(0)
        if path in seen or len(seen) >= max_files:
            continue
        seen.add(path)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            raise GateError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
        depth = 0
        for line in lines:
            words = _words(line)
            if not words:
                continue
            head = words[0].lower()
            if head.startswith("</"):
                depth = max(0, depth - 1)
                continue
            if head.startswith("<"):
                tag = head[1:].rstrip(">")
                arg = " ".join(words[1:]).rstrip(">").strip()
                if depth == 0 and tag == "smtp-listener" and arg:
                    found["listeners"].append(arg)
                elif depth == 0 and tag == "spool" and arg:
                    found["spools"].append(arg)
                depth += 1
                continue
            if head == "include" and len(words) > 1:
                target = " ".join(words[1:])
                matches = sorted(glob.glob(target)) if any(c in target for c in "*?[") else [target]
                queue[0:0] = matches
            elif depth == 0 and head == "smtp-listener" and len(words) > 1:
                found["listeners"].append(words[1])
            elif depth == 0 and head == "http-mgmt-port" and len(words) > 1 and words[1].isdigit():
                found["http_mgmt_port"] = int(words[1])
            elif depth == 0 and head == "log-file" and len(words) > 1:
                found["log_file"] = words[1]
    return found


def listener_address(name):
    """(host, port) to probe for a listener NAME ``IP:PORT``; every-address forms are probed on loopback."""
    host, _sep, port = name.rpartition(":")
    host = host.strip("[]")
    if host in ("0/0", "0.0.0.0", "0.0.0.0/0"):
        host = "127.0.0.1"
    elif host in ("::", "::/0", "[::]"):
        host = "::1"
    return host, int(port)


def _first_line(host, port, timeout, request=None):
    """Connect, send ``request`` (if any), read up to the first line: (line, None) or (None, why)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if request:
                sock.sendall(request)
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
            if not request:
                try:
                    sock.sendall(b"QUIT\r\n")
                except OSError:
                    pass
    except OSError as exc:
        return None, "%s:%d: %s" % (host, port, exc.strerror or exc)
    return (data.decode("utf-8", "replace").splitlines()[0] if data else ""), None


def probe_smtp_banner(host, port, timeout):
    """(True, banner) when the listener greets with 220 (RFC 5321 §4.2), else (False, why)."""
    line, error = _first_line(host, port, timeout)
    if error:
        return False, error
    if line.startswith("220"):
        return True, line
    return False, "%s:%d greeted %r, not 220" % (host, port, line[:80])


def probe_http(host, port, timeout, path="/status"):
    """(True, status line) when an HTTP server answers; any status counts (403 or a redirect to HTTPS too:
    the web monitor is up). Another service on that port (an SMTP listener: "220 ...") does not."""
    request = ("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode("ascii")
    line, error = _first_line(host, port, timeout, request)
    if error:
        return False, error
    if line.startswith("HTTP/"):
        return True, line
    return False, "%s:%d answered %r, not HTTP (another service holds the port?)" % (host, port, line[:80])


def probe_unit(name, timeout=10):
    """systemd's ActiveState of ``name`` (active, activating, failed, ...)."""
    try:
        completed = subprocess.run(["systemctl", "show", "-p", "ActiveState", "--value", name],
                                   capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "unknown (%s)" % exc
    return completed.stdout.strip() or "unknown"


def serving_checks(services, endpoints, timeout, probes=None):
    """One round of checks: [{name, ok, detail}]."""
    probes = probes or {}
    unit = probes.get("unit", probe_unit)
    smtp = probes.get("smtp", probe_smtp_banner)
    http = probes.get("http", probe_http)
    port = endpoints["http_mgmt_port"]
    checks = []
    for service in services:
        if service == "pmtahttp" and port == 0:
            continue  # http-mgmt-port 0: no web monitor is started (§3.3.1.36.1)
        state = unit(service)
        checks.append({"name": "service %s" % service, "ok": state == "active", "detail": state})
    for name in endpoints["listeners"]:
        host, listen_port = listener_address(name)
        ok, detail = smtp(host, listen_port, timeout)
        checks.append({"name": "smtp-listener %s" % name, "ok": ok, "detail": detail})
    if port:
        ok, detail = http("127.0.0.1", port, timeout)
        checks.append({"name": "http-mgmt-port %d" % port, "ok": ok, "detail": detail})
    return checks


def wait_until_serving(services, endpoints, timeout, interval=1.0, settle=2, probes=None, clock=time.monotonic,
                       sleep=time.sleep):
    """Repeat the checks until ``settle`` rounds in a row pass (a crash-looping unit can look active for a
    moment) or ``timeout`` seconds pass. Returns (ok, last checks, seconds waited)."""
    start = clock()
    passed = 0
    while True:
        checks = serving_checks(services, endpoints, min(5.0, max(1.0, timeout)), probes)
        passed = passed + 1 if all(c["ok"] for c in checks) else 0
        waited = clock() - start
        if passed >= settle:
            return True, checks, waited
        if waited >= timeout:
            return False, checks, waited
        sleep(interval)


def spool_problems(spools, min_free_percent, statvfs=os.statvfs):
    """Spool file systems with less free space than min_free_percent (space for non-root users, as
    PowerMTA's min-free-space counts it, §3.3.2.4): [{spool, free_percent, free_bytes}]."""
    problems = []
    for spool in spools:
        try:
            st = statvfs(spool)
        except OSError as exc:
            problems.append({"spool": spool, "error": exc.strerror or str(exc)})
            continue
        total = st.f_blocks * st.f_frsize
        free = st.f_bavail * st.f_frsize
        percent = 100.0 * free / total if total else 0.0
        if percent < min_free_percent:
            problems.append({"spool": spool, "free_percent": round(percent, 1), "free_bytes": free})
    return problems


STAMP_RE = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)")


def _since(lines, since):
    """The lines from the first one stamped at or after ``since`` (PowerMTA's log lines start with the local
    date and time); all of them when nothing carries a stamp."""
    if since is None:
        return lines
    stamped = False
    for index, line in enumerate(lines):
        match = STAMP_RE.match(line)
        if not match:
            continue
        stamped = True
        try:
            when = time.mktime(time.strptime("%s %s" % match.groups(), "%Y-%m-%d %H:%M:%S"))
        except (ValueError, OverflowError):
            continue
        if when >= since:
            return lines[index:]
    return [] if stamped else lines


def log_lines(paths, units, lines=8, since=None, run=subprocess.run):
    """PowerMTA's own words: the last lines of each log file written to since ``since`` (epoch seconds;
    all when None) and of each unit's journal. [{source, lines}]."""
    found = []
    for path in paths:
        try:
            if since is not None and os.stat(path).st_mtime < since:
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                tail = _since(handle.read().splitlines()[-200:], since)[-lines:]
        except OSError:
            continue
        if tail:
            found.append({"source": path, "lines": tail})
    for unit in units:
        argv = ["journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u", unit]
        if since is not None:
            argv += ["--since", "@%d" % int(since)]
        try:
            completed = run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        tail = [line for line in completed.stdout.splitlines() if line.strip()][-lines:]
        if tail:
            found.append({"source": "journal of %s" % unit, "lines": tail})
    return found
