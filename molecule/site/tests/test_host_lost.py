"""A host that falls off the network in the middle of a rollout (issue 24, "Faults, tested").

playbooks/powermta.yml rolls a one-line change (powermta_extra_config) out one host per batch
(mailops_serial: 1). site-n2, the second batch, loses its link (its end of the veth goes down inside its netns:
the container keeps running with its disk, PowerMTA keeps serving the previous config) right after its files were
installed, before the reload. Then:
- the run stops: site-n2 is unreachable, its batch failed, so no later batch starts (max_fail_percentage: 0),
  and site-n3 is untouched (same files, no reload);
- site-n2 comes back with the new files and the pending-activation marker, its daemon still on the old
  config (never reloaded): nothing half-applied goes unnoticed;
- the next run (the same change) reloads site-n2 because of the marker (pmta reload, guide §6.3.4: the files
  are already in place) and rolls site-n3 out, each through the serving gate; a further run changes nothing;
- mail submitted to site-n2 is routed through its vMTA (its accounting records; the site scenario has no
  sink: its hosts reach no MX);
- finally the scenario's own inventory is rolled out again: every host has the files it had at the start, for
  the tests after this one (test_runbooks.py).
"""

import json
import os
import sys
import time

from helpers import ANSIBLE_PLAYBOOK, HOSTS, ROOT, playbook

sys.path.insert(0, str(ROOT / "tests" / "testbed"))
from bench_run import (  # noqa: E402
    checksums,
    lossy_ssh_env,
    marker,
    on,
    recap,
    reloads,
    run_losing_host,
    task_output,
    wait_back,
)

LOST = "site-n2"
LOST_VMTA = "tx-42"
LOCAL_CONF = "/etc/pmta/conf.d/local.conf"
# A global directive PowerMTA takes on reload (guide §3.3.1.2 total-max-smtp-in, its own example value).
LINE = "total-max-smtp-in 110"
CHANGE = {"powermta_extra_config": LINE}
DECIDE = "Decide between nothing, reload and restart"
ROLE_PLAY = "PLAY [Install and configure PowerMTA]"


def submit(host, vmta):
    """One message submitted on HOST (127.0.0.1 may relay, sources.conf) for VMTA; returns its recipient."""
    rcpt = "lost-%d@example.net" % time.time_ns()
    message = "X-Virtual-MTA: %s\\r\\nSubject: host lost\\r\\n\\r\\nbody\\r\\n" % vmta
    script = ("import smtplib; s = smtplib.SMTP('127.0.0.1', 25, timeout=30); "
              "s.sendmail('ops@example.com', ['%s'], '%s'); s.quit()" % (rcpt, message))
    on(host, "python3 -c \"%s\"" % script)
    return rcpt


def accounting_rows(host, rcpt, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = on(host, "grep -h -F '%s' /var/log/pmta/acct.csv /var/log/pmta/diag.csv 2>/dev/null || true" % rcpt)
        if rows.strip():
            return rows.splitlines()
        time.sleep(2)
    return []


def test_a_host_lost_mid_rollout_is_finished_by_the_next_run(tmp_path):
    started = time.monotonic()
    env = lossy_ssh_env(tmp_path)
    before = {host: checksums(host) for host in HOSTS}
    reloads_before = {host: reloads(host) for host in HOSTS}
    command = [ANSIBLE_PLAYBOOK, "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(ROOT / "playbooks" / "powermta.yml"),
               "-e", json.dumps({**CHANGE, "mailops_serial": 1})]
    try:
        # "Decide" follows "Install the configuration files": the files and the marker are on the host.
        returncode, output, cut = run_losing_host(command, LOST, DECIDE, env, ROOT)
        assert cut, "the rollout never reached %s's activation:\n%s" % (LOST, output[-4000:])
        # The batch stops per the rollout's rules: site-n2 unreachable, the run fails, no later batch.
        assert returncode != 0, output[-4000:]
        counts = recap(output)
        assert counts[LOST]["unreachable"] == 1, output[-4000:]
        assert counts["site-n1"]["failed"] == counts["site-n1"]["unreachable"] == 0, output[-4000:]
        rollout = output.split(ROLE_PLAY, 1)[1]
        assert "[site-n3]" not in rollout, "site-n3 was in the rollout after the lost host:\n" + output[-4000:]
        assert checksums("site-n3") == before["site-n3"]
        assert reloads("site-n3") == reloads_before["site-n3"]
        # The first batch finished: new config, reloaded.
        assert LINE in on("site-n1", "cat %s" % LOCAL_CONF)
        assert reloads("site-n1") == reloads_before["site-n1"] + 1
        # The lost host returns: the new files wait, the marker says so, the daemon never got them.
        wait_back(LOST)
        assert LINE in on(LOST, "cat %s" % LOCAL_CONF)
        pending = marker(LOST)
        assert pending and LOCAL_CONF in [entry["dest"] for entry in pending], pending
        assert reloads(LOST) == reloads_before[LOST]
        assert on(LOST, "systemctl is-active pmta").strip() == "active"

        # The next run finishes the fleet: site-n2 reloads because of the marker, site-n3 gets the change.
        result = playbook(ROOT / "playbooks" / "powermta.yml", "-e", json.dumps(CHANGE), env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        reloaded = task_output(result.stdout, "Reload PowerMTA")
        assert "changed: [%s]" % LOST in reloaded and "changed: [site-n3]" in reloaded, output[-4000:]
        assert "changed: [site-n1]" not in reloaded, output[-4000:]
        serving = task_output(result.stdout, "Wait until PowerMTA serves")
        assert "ok: [%s]" % LOST in serving and "ok: [site-n3]" in serving, output[-4000:]
        for host in HOSTS:
            assert LINE in on(host, "cat %s" % LOCAL_CONF), host
            assert marker(host) is None, host
            assert reloads(host) == reloads_before[host] + 1, host
            assert on(host, "find /etc/pmta -name '*~'") == "", host
        # A further run changes nothing.
        result = playbook(ROOT / "playbooks" / "powermta.yml", "-e", json.dumps(CHANGE), env=env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        assert {host: counts["changed"] for host, counts in recap(result.stdout).items()} == dict.fromkeys(HOSTS, 0), \
            result.stdout[-4000:]
        # Mail submitted to the returned host is accepted and routed through its vMTA.
        rcpt = submit(LOST, LOST_VMTA)
        rows = accounting_rows(LOST, rcpt)
        assert rows and all(LOST_VMTA in row for row in rows), rows
    finally:
        # Back to the scenario's inventory for the tests after this one.
        restored = playbook(ROOT / "playbooks" / "powermta.yml", env=env)
    assert restored.returncode == 0, (restored.stdout + restored.stderr)[-4000:]
    assert {host: checksums(host) for host in HOSTS} == before
    print("host-lost scenario: %.0f s" % (time.monotonic() - started))
