# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the Molecule scenarios' tests do to bench hosts: run a command over SSH (no shared control master),
watch ansible-playbook line by line and act when a task starts (kill the controller: the operator's laptop goes
away; cut a host's link: the host goes away), read what a task printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import tb_hosts

# The guest's end of a bench host's veth, in its netns (tb_hosts._start_nspawn).
GUEST_LINK = "host0"
# The powermta role's marker of files installed but not yet activated (roles/powermta/tasks/apply.yml).
PENDING_MARKER = "/etc/pmta/.mailops-activation-pending.json"


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


def kill_at_task(task):
    """on_line callback: SIGKILL ansible-playbook and its workers when ``task`` starts."""
    def on_line(line, process, _seen):
        if line.startswith("TASK [") and task in line:
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
