# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults around activating a config (issues 20 and 24), on the bench host with the test double.

- A config PowerMTA accepts but that leaves pmtahttp unable to start (its http-mgmt-port taken, §3.3.1.36.1):
  the serving gate fails, the previous files come back, PowerMTA restarts with them, its log lines are
  reported and the run stops.
- The controller killed between "Install the configuration files" and the reload: the host keeps a pending
  marker and the next run reloads.
- A full spool (a 4 MB tmpfs on /var/spool/pmta): the run refuses to activate, pmta_health says CRITICAL;
  with no space left new mail is refused (452 4.3.1) and pmta_health says full; nothing queued is lost,
  also across a restart (the spool files are read back).
Each test ends with the host converged on the scenario's inventory (the next run reports no change).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "testbed"))
from bench_run import (  # noqa: E402
    FILL_SPOOL_REST,
    MOUNT_FULL_SPOOL,
    SPOOL,
    UNMOUNT_FULL_SPOOL,
    kill_at_task,
    pmta_health,
    run_watching,
    task_output,
)
from bench_run import PENDING_MARKER as MARKER  # noqa: E402 - the bench's shared helpers
from test_powermta import (
    ANSIBLE_PLAYBOOK,
    INJECTOR_PASSWORD,
    INJECTOR_USER,
    REAL_PACKAGE,
    SCENARIO,
    config_checksums,
    inject,
    playbook,
)

PMTA_LOG = "/var/log/pmta/log"
FAST = ("-e", json.dumps({"powermta_activation_timeout": 15}))


def flat(result):
    return " ".join((result.stdout + result.stderr).split())


def main_pids(host):
    with host.sudo():
        return {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in ("pmta", "pmtahttp")}


def reloads(host):
    """How often the running daemon loaded a new config (its own log line)."""
    with host.sudo():
        return int(host.check_output(f"grep -c 'configuration reloaded' {PMTA_LOG} || true") or 0)


def assert_serving(host):
    with host.sudo():
        for unit in ("pmta", "pmtahttp"):
            assert host.run(f"systemctl is-active {unit}").stdout.strip() == "active", unit
        assert host.run("curl -fsS -o /dev/null 'http://127.0.0.1:8080/status?format=json'").rc == 0
        assert not host.file(MARKER).exists
        assert host.check_output("find /etc/pmta -name '*~'") == ""


def assert_converged(host):
    result = playbook(*FAST)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "changed=0" in result.stdout, result.stdout[-3000:]
    # No activation on a no-op run: no reload, and so no serving gate either.
    for task in ("Reload PowerMTA", "Wait until PowerMTA serves"):
        assert "skipping" in task_output(result.stdout, task), result.stdout[-3000:]
    assert_serving(host)


def delivered_to_accounting(host, vmta="tx-01"):
    """One message injected now reaches the accounting files from its vMTA (PowerMTA accepts and routes)."""
    from test_powermta import first_attempt_rows
    rcpt = "fault-%d@yahoo.com" % time.time_ns()
    sent = inject(host, starttls=True, user=INJECTOR_USER, password=INJECTOR_PASSWORD, rcpt=[rcpt],
                  headers={"X-Virtual-MTA": vmta})
    assert sent["ok"], sent
    assert {row["vmta"] for row in first_attempt_rows(host, rcpt)} == {vmta}


# ---------------------------------------------------------------- serving gate (issue 20)
# Another program on the host holds the web monitor's port (§3.3.1.36.1: "other software running on the same
# host may already be using that port"): a config PowerMTA accepts, and nothing in the inventory can show it.
# (`powermta_http_mgmt_port: 25`, the SMTP listener's own port, fails the same way in the test double; the
# preflight may refuse that one before any host changes.)
PORT_HOLDER = ("python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
               "socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 8181)); s.listen(); time.sleep(600)'")


@pytest.mark.skipif(REAL_PACKAGE, reason="takes a port on the host on purpose")
@pytest.mark.parametrize("port, holder", [(8181, PORT_HOLDER)])
def test_a_web_monitor_that_cannot_start_is_rolled_back(host, port, holder):
    before_files = config_checksums(host)
    before_pids = main_pids(host)
    with host.sudo():
        if holder:
            host.run_expect([0], "systemd-run --unit=td-port-holder %s" % holder)
            host.run_expect([0], "for i in $(seq 50); do ss -ltn | grep -q ':%d ' && exit 0; sleep 0.1; done; exit 1"
                            % port)
    try:
        started = time.monotonic()
        result = playbook(*FAST, "-e", json.dumps({"powermta_http_mgmt_port": port}))
        seconds = time.monotonic() - started
    finally:
        with host.sudo():
            if holder:
                host.run("systemctl stop td-port-holder")
    output = flat(result)
    assert result.returncode != 0, output[-3000:]
    assert "PowerMTA did not serve with the new configuration of pmta-n1" in output, output[-3000:]
    assert "http-mgmt-port %d" % port in output, output[-3000:]
    # PowerMTA's own words (pmtahttp.log / the unit's journal), not only ours.
    assert "Address already in use" in output, output[-3000:]
    assert "previous files were restored and are active" in output, output[-3000:]
    # The run stopped on this host: the play's later task never ran.
    assert "Keep the exported facts for the tests" not in output, output[-3000:]
    assert config_checksums(host) == before_files
    after_pids = main_pids(host)
    assert after_pids["pmta"] != before_pids["pmta"], "PowerMTA was not restarted with the previous files"
    assert_serving(host)
    delivered_to_accounting(host)
    assert seconds < 120, seconds


# ---------------------------------------------------------------- controller killed (issue 24)
def run_until_task(task, *args, timeout=600):
    """Run converge.yml and SIGKILL ansible-playbook (and its workers) when ``task`` starts: the controller
    dies as if the operator's laptop went away. Returns the output up to then."""
    command = [ANSIBLE_PLAYBOOK, "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(SCENARIO, "converge.yml"),
               *args]
    _returncode, output = run_watching(command, kill_at_task(task), timeout=timeout)
    assert task in output, output[-3000:]
    return output


def test_controller_killed_between_install_and_reload_reloads_on_the_next_run(host):
    before_files = config_checksums(host)
    change = ("-e", json.dumps({"powermta_postmaster": "ops@example.com"}))
    reloads_before = reloads(host)
    output = run_until_task("Decide between nothing, reload and restart", *FAST, *change)
    assert "Install the configuration files" in output
    with host.sudo():
        # The new file is in place, the daemon still runs the old one, and the host says so.
        assert "postmaster ops@example.com" in host.file("/etc/pmta/config").content_string
        assert host.file(MARKER).exists and host.file(MARKER).mode == 0o600
        pending = json.loads(host.file(MARKER).content_string)
        assert [entry["dest"] for entry in pending] == ["/etc/pmta/config"]
    assert reloads(host) == reloads_before
    # The same inventory again: the files are already in place, the marker makes the run reload anyway.
    result = playbook(*FAST, *change)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "changed: [pmta-n1]" in task_output(result.stdout, "Reload PowerMTA"), result.stdout[-3000:]
    assert "ok: [pmta-n1]" in task_output(result.stdout, "Wait until PowerMTA serves"), result.stdout[-3000:]
    assert reloads(host) == reloads_before + 1
    assert_serving(host)
    # Back to the scenario's inventory: the same files as at the start, active.
    result = playbook(*FAST)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "changed: [pmta-n1]" in task_output(result.stdout, "Reload PowerMTA"), result.stdout[-3000:]
    assert config_checksums(host) == before_files
    assert_serving(host)
    delivered_to_accounting(host)


@pytest.mark.skipif(REAL_PACKAGE, reason="needs the test double's refusal hook (/etc/pmta/TEST-DOUBLE-refuse)")
def test_controller_killed_then_refused_restores_the_files_from_before_the_killed_run(host):
    before_files = config_checksums(host)
    change = ("-e", json.dumps({"powermta_postmaster": "ops@refuse.example.com"}))
    run_until_task("Decide between nothing, reload and restart", *FAST, *change)
    with host.sudo():
        assert host.file(MARKER).exists
        host.run_expect([0], "echo refuse.example.com > /etc/pmta/TEST-DOUBLE-refuse")
    try:
        # The next run tests what waits for activation; PowerMTA refuses it: the files from before the
        # killed run come back (their backups were kept), the marker goes.
        result = playbook(*FAST, *change)
    finally:
        with host.sudo():
            host.run("rm -f /etc/pmta/TEST-DOUBLE-refuse")
    output = flat(result)
    assert result.returncode != 0, output[-3000:]
    assert "refused the new configuration" in output, output[-3000:]
    # The files from before the killed run, active (nothing pending): converged on the inventory, and a
    # no-op run neither reloads nor gates.
    assert config_checksums(host) == before_files
    assert_converged(host)


# ---------------------------------------------------------------- full spool (issue 24)
@pytest.fixture
def full_spool(host):
    """/var/spool/pmta on a small tmpfs filled to ~97 %, as a full spool disk; removed afterwards. The mail
    spooled on it meanwhile moves to the disk's spool and PowerMTA restarts, so it reads what is on disk."""
    with host.sudo():
        mounted = host.run(MOUNT_FULL_SPOOL)
        if mounted.rc != 0:
            pytest.fail("cannot mount a small file system on the spool: %s" % mounted.stderr)
    try:
        yield SPOOL
    finally:
        with host.sudo():
            host.run(UNMOUNT_FULL_SPOOL)


def health(spool):
    """pmta_health on the host, as an operator runs it (ad-hoc), as JSON."""
    return pmta_health(os.environ["MOLECULE_INVENTORY_FILE"], "pmta-n1", [spool])


def queued(host):
    status = json.loads(host.check_output("curl -fsS 'http://127.0.0.1:8080/status?format=json'"))
    return status["data"]["status"]["queue"]


def test_full_spool_refuses_the_activation_and_keeps_the_queue(host, full_spool):
    # Mail waits in the queue (this host reaches no MX): it must still be there after the refused run.
    for _index in range(3):
        sent = inject(host, starttls=True, user=INJECTOR_USER, password=INJECTOR_PASSWORD,
                      rcpt=["spool-%d@yahoo.com" % time.time_ns()], headers={"X-Virtual-MTA": "tx-01"})
        assert sent["ok"], sent
    report = health(full_spool)
    spool_check = [c for c in report["checks"] if c["name"] == "spool_free_pct"][0]
    assert spool_check["state"] == "CRITICAL" and report["state"] == "CRITICAL", report["summary"]
    queue_before = queued(host)
    before_files = config_checksums(host)
    before_pids = main_pids(host)
    reloads_before = reloads(host)
    result = playbook(*FAST, "-e", json.dumps({"powermta_postmaster": "ops@example.com"}))
    output = flat(result)
    assert result.returncode != 0, output[-3000:]
    assert "The spool is too full to activate the new configuration of pmta-n1" in output, output[-3000:]
    assert "/var/spool/pmta" in output and "% free" in output, output[-3000:]
    assert config_checksums(host) == before_files
    assert main_pids(host) == before_pids and reloads(host) == reloads_before
    assert queued(host)["smtp"]["rcp"] >= queue_before["smtp"]["rcp"] >= 3, (queue_before, queued(host))
    with host.sudo():
        assert not host.file(MARKER).exists
    # The host runs the inventory's files (converged); with room again the next run may change it.
    assert_serving(host)

    # No space left at all: PowerMTA cannot spool new mail and refuses it (transient: the injector keeps it),
    # the health check says the spool is full.
    with host.sudo():
        host.run(FILL_SPOOL_REST)
    refused = inject(host, starttls=True, user=INJECTOR_USER, password=INJECTOR_PASSWORD,
                     rcpt=["spool-refused-%d@yahoo.com" % time.time_ns()], headers={"X-Virtual-MTA": "tx-01"})
    assert not refused["ok"] and "452" in refused["error"] and "4.3.1" in refused["error"], refused
    report = health(full_spool)
    spool_check = [c for c in report["checks"] if c["name"] == "spool_free_pct"][0]
    assert spool_check["state"] == "CRITICAL" and "full" in spool_check["message"], spool_check
    # Nothing queued is lost, even across a restart: PowerMTA reads its spool files back (§7 Spool Initialization).
    # (Mail queued by earlier tests is spooled on the disk below the tmpfs: the restarted daemon sees only the
    # files on the small file system, one per message injected here; the fixture moves them back to the disk.)
    with host.sudo():
        on_small_fs = int(host.check_output("find %s -maxdepth 1 -name 'td-*.msg' | wc -l" % full_spool))
        host.run_expect([0], "systemctl restart pmta")
    assert on_small_fs == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and host.run("curl -fsS -o /dev/null 'http://127.0.0.1:8080/status'").rc:
        time.sleep(0.5)
    assert queued(host)["smtp"]["rcp"] == on_small_fs
    # Room again: mail is accepted again.
    with host.sudo():
        host.run_expect([0], "rm -f %s/filler-rest" % full_spool)
    sent = inject(host, starttls=True, user=INJECTOR_USER, password=INJECTOR_PASSWORD,
                  rcpt=["spool-after-%d@yahoo.com" % time.time_ns()], headers={"X-Virtual-MTA": "tx-01"})
    assert sent["ok"], sent
