# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the DNS integration tests: run Ansible the way users do, query BIND independently."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_ENV = dict(
    os.environ,
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_CALLBACK_RESULT_FORMAT="json",
    ANSIBLE_NOCOLOR="1",
    ANSIBLE_DEPRECATION_WARNINGS="0",
    ANSIBLE_LOCALHOST_WARNING="0",
    ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
)
BIN = ROOT / ".venv" / "bin"


def unique_label(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def run_adhoc(module, args, check=False, diff=False):
    """``ansible localhost -m mailops.powermta.MODULE -a JSON``; returns (rc, result dict)."""
    command = [str(BIN / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % (BIN / "python"),
               "-m", "mailops.powermta.%s" % module, "-a", json.dumps(args)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    proc = subprocess.run(command, cwd=ROOT, env=ANSIBLE_ENV, capture_output=True, text=True, timeout=120,
                          check=False)
    out = proc.stdout
    start = out.find("=> {")
    assert start >= 0, "no result in ansible output:\n%s\n%s" % (out, proc.stderr)
    result, _end = json.JSONDecoder().raw_decode(out[start + 3:])
    return proc.returncode, result


def run_playbook(playbook, inventory, *extra):
    """``ansible-playbook``; returns (rc, stdout+stderr, recap {host: {changed, failed, ...}})."""
    command = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *extra]
    env = dict(ANSIBLE_ENV, ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    recap = {}
    in_recap = False
    for line in proc.stdout.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line and "ok=" in line:
            host, _sep, counters = line.partition(":")
            recap[host.strip()] = {k: int(v) for k, v in (c.split("=") for c in counters.split())}
    return proc.returncode, proc.stdout + proc.stderr, recap


def query(server, name, rdtype, tcp=False):
    """Unsigned query (as any resolver would ask); returns the answer RRset or None."""
    message = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp_with_fallback
    response = send(message, server.address, port=server.port, timeout=5)
    if isinstance(response, tuple):
        response = response[0]
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            return rrset
    return None


def txt_values(server, name):
    rrset = query(server, name, "TXT")
    return sorted(b"".join(rd.strings).decode() for rd in rrset) if rrset else []


def serial(server, zone):
    return query(server, zone, "SOA", tcp=True)[0].serial


def dig(server, *args):
    """The independent resolver client: BIND's own dig."""
    proc = subprocess.run(["dig", "+short", "+tcp", "-p", str(server.port), "@%s" % server.address, *args],
                          capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout.strip()
