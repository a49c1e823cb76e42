"""Bench host lifecycle: `down` leaves nothing behind, `up` cleans stale state of the same name.

Runs real hosts through the same CLI Molecule uses; the checks below read the machine's state
directly (ps, /proc/mounts, losetup, ip) rather than trusting the bench's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, str(HERE / "testbed.py")]
STATE = Path(os.environ.get("MAILOPS_TESTBED_STATE", "/var/lib/mailops-testbed"))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the bench needs root")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([*CLI, *args], capture_output=True, text=True, check=False, timeout=900)
    if check and res.returncode != 0:
        pytest.fail(f"testbed.py {' '.join(args)} failed (rc={res.returncode}):\n{res.stderr[-3000:]}")
    return res


@pytest.fixture(scope="module", autouse=True)
def image():
    cli("image")


def machine_state(name: str) -> dict:
    """What of host NAME is visible on this machine, read straight from the kernel and tools."""
    hdir = str(STATE / "hosts" / name)
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            root = os.readlink(f"/proc/{pid}/root")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if root.startswith(hdir) or hdir in cmd:
            procs.append(int(pid))
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if hdir in line.split()[1]]
    loops = [line for line in subprocess.run(["losetup", "-l", "-n"], capture_output=True, text=True, check=True).stdout
             .splitlines() if hdir in line]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    veth = "mtb" + __import__("hashlib").sha1(name.encode()).hexdigest()[:8]
    return {
        "processes": procs,
        "mounts": mounts,
        "loop_devices": loops,
        "netns": f"mtb-{name}" in netns.split(),
        "veth": f" {veth}@" in links or f" {veth}:" in links,
        "dir": os.path.exists(hdir),
    }


def assert_gone(name: str) -> None:
    assert machine_state(name) == {
        "processes": [], "mounts": [], "loop_devices": [], "netns": False, "veth": False, "dir": False,
    }
    assert cli("leftovers", name, check=False).returncode == 0


def host(name: str) -> dict:
    hosts = {h["instance"]: h for h in json.loads(cli("list", "--json").stdout)}
    return hosts[name]


def ssh(name: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "ssh", name, command], capture_output=True, text=True, timeout=60, check=False)


def test_nspawn_host_up_and_down_leaves_nothing():
    name = "tb-life-n1"
    cli("up", name, "--kind", "nspawn", "--extra-address", "203.0.113.20/32", "--loop-disk", "nvme0n1:64M")
    try:
        present = machine_state(name)
        assert present["processes"] and present["mounts"] and present["loop_devices"]
        assert present["netns"] and present["veth"] and present["dir"]
        out = ssh(name, "ip -4 -o addr show dev host0; ip route show default; test -b /dev/nvme0n1 && echo disk")
        assert out.returncode == 0, out.stderr
        assert "203.0.113.20/32" in out.stdout and host(name)["address"] in out.stdout
        assert "default" not in out.stdout and "disk" in out.stdout
    finally:
        cli("down", name)
    assert_gone(name)


def test_up_cleans_stale_nspawn_host_of_a_crashed_run():
    name = "tb-life-n2"
    cli("up", name, "--kind", "nspawn", "--loop-disk", "nvme0n1:64M")
    state_file = STATE / "hosts" / name / "state.json"
    old = json.loads(state_file.read_text())
    old_procs = set(machine_state(name)["processes"])
    # A crash: the supervisor dies without cleaning up, its bookkeeping is lost.
    os.kill(old["pid"], signal.SIGKILL)
    state_file.unlink()
    time.sleep(0.5)
    assert machine_state(name)["mounts"], "the container should still be there, as after a crash"
    try:
        cli("up", name, "--kind", "nspawn", "--loop-disk", "nvme0n1:64M")
        now = machine_state(name)
        assert not (old_procs & set(now["processes"])), "processes of the stale host survived"
        assert len(now["loop_devices"]) == 1, now["loop_devices"]
        assert len([m for m in now["mounts"] if m.endswith("/root")]) == 1, now["mounts"]
        assert ssh(name, "true").returncode == 0
    finally:
        cli("down", name)
    assert_gone(name)


def test_qemu_host_removed_by_name_without_state():
    name = "tb-life-q1"
    cli("up", name, "--kind", "qemu", "--nvme-disk", "spool1:64M", "--memory-mb", "512")
    try:
        out = ssh(name, "cat /sys/class/nvme/nvme0/serial")
        assert out.returncode == 0 and out.stdout.strip() == "spool1", out
        assert machine_state(name)["processes"]
        (STATE / "hosts" / name / "state.json").unlink()  # a crash lost the bookkeeping
    finally:
        cli("down", name)
    assert_gone(name)


def test_down_all_removes_hosts_and_reports_nothing_left():
    names = ["tb-life-n3", "tb-life-n4"]
    cli("up", *names, "--kind", "nspawn")
    assert {h["instance"] for h in json.loads(cli("list", "--json").stdout)} >= set(names)
    # down-all would also remove other people's bench hosts on a shared machine; remove ours by name.
    cli("down", *names)
    for name in names:
        assert_gone(name)


def test_bad_input_is_refused_before_anything_changes():
    res = cli("up", "tb-life-bad", "--kind", "nspawn", "--nvme-disk", "s1:1G", check=False)
    assert res.returncode != 0 and "nvme_disks need kind: qemu" in res.stderr
    res = cli("up", "Bad_Name", check=False)
    assert res.returncode != 0 and "host name" in res.stderr
    res = cli("up", "tb-life-bad", "--address", "192.0.2.2", check=False)
    assert res.returncode != 0 and "198.18.0.0/15" in res.stderr
    assert_gone("tb-life-bad")


def test_nspawn_guest_reboot_restarts_the_container():
    name = "tb-life-n5"
    cli("up", name, "--kind", "nspawn")
    try:
        before = ssh(name, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
        ssh(name, "systemctl reboot")
        deadline = time.monotonic() + 120
        after = ""
        while time.monotonic() < deadline:
            res = ssh(name, "cat /proc/sys/kernel/random/boot_id")
            if res.returncode == 0 and res.stdout.strip() not in ("", before):
                after = res.stdout.strip()
                break
            time.sleep(1)
        assert after, "the container did not come back after a guest reboot"
        assert "guest rebooted" in (STATE / "hosts" / name / "console.log").read_text()
    finally:
        cli("down", name)
    assert_gone(name)
