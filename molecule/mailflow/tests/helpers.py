"""Shared helpers of the mailflow scenario: the fleet model, the ISP side, injection, accounting on the hosts."""

import csv
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]
ROOT = SCENARIO.parents[1]
TESTBED = ROOT / "tests" / "testbed"
sys.path.insert(0, str(TESTBED))

import injector  # noqa: E402 - the bench's Mumara-like client
import isp_world  # noqa: E402 - the ISP side (sinks, zones)
import tb_hosts  # noqa: E402 - bench host state (addresses, SSH)
from bench_run import ssh  # noqa: E402,F401 - the scenario's tests import it from here

HOSTS = ["mf-n1", "mf-n2"]
# inventory/host_vars: host -> {pool: (vmta, ip)}
VMTAS = {
    "mf-n1": {"transactional": ("tx-60", "203.0.113.60"), "marketing": ("mk-61", "203.0.113.61")},
    "mf-n2": {"transactional": ("tx-62", "203.0.113.62"), "marketing": ("mk-63", "203.0.113.63")},
}
POOLS = ["transactional", "marketing"]
GROUPS = {g["name"]: g for g in isp_world.LAB_ISPS}
PASSWORD = "mf-injector-secret"  # inventory/group_vars/pmta_fleet.yml (a test secret)


def ephemeral():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def world_dir():
    return ephemeral() / "isp"


def address(host):
    return tb_hosts.read_state(host)["address"]


def unique(local, domain):
    return "%s-%s@%s" % (local, uuid.uuid4().hex[:10], domain)


def inject(host, recipients, pool=None, **kwargs):
    return injector.inject(address(host), recipients, user="mumara", password=PASSWORD, pool=pool, **kwargs)


def sink_messages(group):
    return isp_world_jsonl(group, "messages.jsonl")


def isp_world_jsonl(group, name):
    path = world_dir() / "sinks" / group / name
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def acct_rows(host, pattern):
    """Rows of the accounting files /var/log/pmta/PATTERN on HOST (each file has its own header row)."""
    result = ssh(host, "for f in /var/log/pmta/%s; do [ -f \"$f\" ] && echo '=== FILE' && cat \"$f\"; done; true"
                 % pattern)
    rows = []
    for chunk in result.stdout.split("=== FILE\n")[1:]:
        rows.extend(csv.DictReader(io.StringIO(chunk)))
    return rows


def wait_for(check, timeout=120, interval=2, what="condition"):
    """Poll CHECK() until it returns a truthy value; fail with WHAT and the last value after TIMEOUT s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %d s waiting for %s (last: %r)" % (timeout, what, last))


def sink_counts():
    """{group: {source_ip: {accepted, deferred, rejected}}} as the sinks counted them."""
    return isp_world.counts(world_dir())


def set_policy(group, **settings):
    return isp_world.set_policy(world_dir(), group, settings)


def in_sink_netns(group, *argv, timeout=60):
    """Run ARGV (a python script and its arguments) inside the sink's network namespace: an outside host."""
    world = isp_world.load(world_dir())
    command = ["ip", "netns", "exec", isp_world.netns(world, group), sys.executable, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def playbook(playbook_path, *args, timeout=600, env=None):
    """Run ansible-playbook against Molecule's inventory, as a user would (ENV: extra environment)."""
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
               os.environ["MOLECULE_INVENTORY_FILE"], str(playbook_path), *args]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)


def arrivals(recipients):
    """{recipient: how many times it reached any ISP sink} (nothing lost: >= 1; nothing twice: == 1)."""
    counts = dict.fromkeys(recipients, 0)
    for group in GROUPS:
        for message in sink_messages(group):
            for rcpt in message["rcpts"]:
                if rcpt in counts:
                    counts[rcpt] += 1
    return counts
