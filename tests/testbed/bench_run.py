# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Molecule scenarios' tests do to bench hosts: run a command over SSH (no shared control master),
watch ansible-playbook line by line and act when a task starts (kill the controller: the operator's laptop goes
away; cut a host's link: the host goes away), read what a task printed.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import tb_hosts

# The guest's end of a bench host's veth, in its netns (tb_hosts._start_nspawn).
GUEST_LINK = "host0"
# The powermta role's marker of files installed but not yet activated (roles/powermta/tasks/apply.yml).
PENDING_MARKER = "/etc/pmta/.mailops-activation-pending.json"
RECAP_RE = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
SPOOL = "/var/spool/pmta"
# A full spool disk: a 4 MB tmpfs on the spool (owned by pmta, as the package leaves the directory), filled to
# ~97 % (below the role's powermta_spool_min_free_percent) or, with FILL_SPOOL_REST, to the last byte.
MOUNT_FULL_SPOOL = ("mount -t tmpfs -o size=4m,mode=0750,uid=$(id -u pmta),gid=$(id -g pmta) mailops-test-spool "
                    "%s && head -c 3980k /dev/zero > %s/filler" % (SPOOL, SPOOL))
FILL_SPOOL_REST = "head -c 1m /dev/zero > %s/filler-rest; true" % SPOOL  # ends with ENOSPC
# Back to the disk's spool: PowerMTA stopped, the message files spooled on the tmpfs meanwhile moved to the disk
# (nothing queued is lost), PowerMTA started again (it reads its spool files back).
UNMOUNT_FULL_SPOOL = (
    "systemctl stop pmta; rm -rf /run/mailops-test-spool && mkdir -m 0700 /run/mailops-test-spool && "
    f"find {SPOOL} -maxdepth 1 -name 'td-*.msg' -exec cp -p {{}} /run/mailops-test-spool/ ';'; umount {SPOOL} && "
    f"(cp -p /run/mailops-test-spool/* {SPOOL}/ 2>/dev/null; rm -rf /run/mailops-test-spool; true) && "
    "systemctl start pmta")


def ssh(host, command, timeout=60):
    """Run COMMAND on the bench host HOST over a fresh SSH connection (CompletedProcess)."""
    state = tb_hosts.read_state(host)
    return subprocess.run(tb_hosts.ssh_command(state, command), capture_output=True, text=True, timeout=timeout,
                          check=False)


def task_output(stdout, name):
    """What Ansible printed for the task ``name`` (from its banner to the next one; every batch of a serial
    play has its own banner: all of them)."""
    return "".join(part.split("TASK [", 1)[0] for part in stdout.split(name)[1:])


def run_watching(command, on_line: Callable[[str, subprocess.Popen, list[str]], bool], *, timeout=600,
                 env=None, cwd=None):
    """Run COMMAND (in its own session), calling ``on_line(line, process, seen)`` for every output line; the
    callback returns True to stop reading (and kill the command's session). Returns (returncode, output);
    returncode is None when the callback stopped the run."""
    env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               cwd=cwd, start_new_session=True)
    seen: list[str] = []
    stopped = False
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            seen.append(line)
            if on_line(line, process, seen):
                stopped = True
                break
            assert time.monotonic() < deadline, "".join(seen)[-3000:]
    finally:
        if process.poll() is None and stopped:
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.wait(timeout=30 if stopped else max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    return (None if stopped else process.returncode), "".join(seen)


def in_plan_play(seen):
    """True inside a rolling playbook's plan play (playbooks/powermta.yml, host_tuning.yml: the role in check mode
    on every host before the rollout), where a task banner is not yet the rollout's."""
    plays = [line for line in seen if line.startswith("PLAY [")]
    return bool(plays) and plays[-1].startswith("PLAY [Plan ")


def kill_at_task(task):
    """on_line callback: SIGKILL ansible-playbook and its workers when ``task`` starts (outside a plan play)."""
    def on_line(line, process, seen):
        if line.startswith("TASK [") and task in line and not in_plan_play(seen):
            os.killpg(process.pid, signal.SIGKILL)
            return True
        return False
    return on_line


def set_guest_link(name, up):
    """Cut (or restore) the network of the nspawn bench host NAME on its own side: the host keeps running
    with its disk, the controller's route to it stays (no-carrier), so packets to it are dropped, as when a
    host falls off the network. Bringing the link up restores its connected routes."""
    state = "up" if up else "down"
    subprocess.run(["ip", "-n", tb_hosts.netns_name(name), "link", "set", GUEST_LINK, state], check=True)


def recap(output):
    """{host: {ok, changed, unreachable, failed}} from the PLAY RECAP of an ansible-playbook run."""
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))} for m in RECAP_RE.finditer(output)}


def lossy_ssh_env(tmp_path):
    """The scenario's SSH settings, plus keep-alives so that a connection to a host that went away ends in
    seconds (UNREACHABLE) rather than TCP's retransmission timeout, and control masters of this test's own."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.environ["ANSIBLE_CONFIG"])
    ssh_args = config.get("ssh_connection", "ssh_args", fallback="")
    control = tmp_path / "cp"
    control.mkdir()
    # The role's staging trees on the controller: an unreachable host skips the role's cleanup (its `always`),
    # so the lost host's tree stays; here, in pytest's tmp_path.
    staging = tmp_path / "tmp"
    staging.mkdir()
    return {"ANSIBLE_SSH_ARGS": ssh_args + " -o ServerAliveInterval=2 -o ServerAliveCountMax=3",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control), "ANSIBLE_TIMEOUT": "10", "TMPDIR": str(staging)}


def in_batch_of(host, seen):
    """True when the current play batch (since the last PLAY banner) is HOST's."""
    plays = [i for i, line in enumerate(seen) if line.startswith("PLAY [")]
    return bool(plays) and any("[%s]" % host in line for line in seen[plays[-1]:])


def pmta_health(inventory, host, spool_dirs=(SPOOL,), timeout=120):
    """mailops.powermta.pmta_health on HOST, as an operator runs it (ad-hoc), as its JSON result."""
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    completed = subprocess.run(
        [ansible, "-i", inventory, host, "-b", "-m", "mailops.powermta.pmta_health",
         "-a", json.dumps({"spool_dirs": list(spool_dirs), "services": ["pmta", "pmtahttp"], "check_backoff": False,
                           "acct_file": ""})],
        capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert completed.stdout, completed.stderr
    return json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"][host]


def on(host, command, timeout=60):
    """stdout of COMMAND on HOST over a fresh SSH connection (no control master that a cut link left hanging)."""
    result = ssh(host, command, timeout=timeout)
    assert result.returncode == 0, "%s: %s: %s" % (host, command, result.stderr)
    return result.stdout


def checksums(host):
    """sha256 of every file under /etc/pmta on HOST."""
    return on(host, "find /etc/pmta -type f | sort | xargs sha256sum")


def reloads(host):
    """How often the running daemon on HOST loaded a new config (its own log line)."""
    return int(on(host, "grep -c 'configuration reloaded' /var/log/pmta/log || true").strip() or 0)


def marker(host):
    """HOST's pending-activation marker (a list of {dest, ...}), None when there is none."""
    text = on(host, "cat %s 2>/dev/null || true" % PENDING_MARKER)
    return json.loads(text) if text.strip() else None


def wait_back(host, timeout=60):
    """Wait until HOST answers over SSH again."""
    deadline = time.monotonic() + timeout
    while ssh(host, "true", timeout=15).returncode != 0:
        assert time.monotonic() < deadline, "%s did not come back" % host
        time.sleep(1)


def run_losing_host(command, host, task, env, cwd, timeout=600):
    """Run COMMAND (an ansible-playbook rollout) and cut HOST's link when TASK starts in HOST's batch of the
    rollout, not in the plan before it (the host falls off the network there); the link comes back when the run
    ends. Returns (returncode, output, cut): ``cut`` is False when the run never reached TASK on HOST."""
    cut = []

    def lose_the_host(line, _process, seen):
        if (not cut and line.startswith("TASK [") and task in line and in_batch_of(host, seen)
                and not in_plan_play(seen)):
            set_guest_link(host, up=False)
            cut.append(time.monotonic())
        return False

    try:
        returncode, output = run_watching(command, lose_the_host, env=dict(os.environ, **env), cwd=cwd,
                                          timeout=timeout)
    finally:
        set_guest_link(host, up=True)
    return returncode, output, bool(cut)
