"""The three faults of a rollout (issue 24), with mail flowing: every message reaches the ISP sinks exactly once,
from the right IP, and the fleet ends converged on the scenario's inventory.

Mail is injected as Mumara does (STARTTLS, AUTH, X-Virtual-MTA) before and during the faults; part of it waits in
paused gmail queues (tx-60 on mf-n1, tx-62 on mf-n2) through all of them. playbooks/powermta.yml rolls out one
host per batch (mf-n1, then mf-n2).
1. A host lost mid-rollout: a one-line change (powermta_extra_config); mf-n2 loses its link right after its files
   were installed, before the reload. The run stops (mf-n2 unreachable); mf-n1 has the change, reloaded; mf-n2
   comes back with the new files, the pending-activation marker, its daemon never reloaded.
2. The controller killed between install and reload: the scenario's inventory again, killed when mf-n1's batch
   reaches the decision: mf-n1 has the inventory's files and the marker, its daemon runs the change.
3. A full spool disk on mf-n1 (a tmpfs filled to the last byte): Mumara's injection is refused with a transient
   452 4.3.1 (it keeps the message and retries), pmta_health says the spool is full, the queued mail stays.
Then space comes back and the next run (the inventory) finishes both hosts: each reloads, nothing pending, the
files those of the start. The held queues resume and the sinks count every injected message once.
(The same faults without mail, in more detail: molecule/site/tests/test_host_lost.py,
molecule/powermta/tests/test_activation_faults.py.)
"""

import json
import os
import sys
import time

import pytest
from helpers import GROUPS, ROOT, TESTBED, VMTAS, arrivals, inject, playbook, sink_messages, ssh, unique, wait_for

sys.path.insert(0, str(TESTBED))
from bench_run import (  # noqa: E402 - the bench's shared helpers
    FILL_SPOOL_REST,
    MOUNT_FULL_SPOOL,
    PENDING_MARKER,
    SPOOL,
    checksums,
    kill_at_task,
    lossy_ssh_env,
    marker,
    on,
    pmta_health,
    recap,
    reloads,
    run_losing_host,
    run_watching,
    task_output,
    wait_back,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOSTS = ["mf-n1", "mf-n2"]
LOST, KILLED = "mf-n2", "mf-n1"
HELD = {host: VMTAS[host]["transactional"] for host in HOSTS}  # host -> (vmta, ip) of its held gmail queue
LOCAL_CONF = "/etc/pmta/conf.d/local.conf"
LINE = "total-max-smtp-in 110"  # a global directive PowerMTA takes on reload (guide §3.3.1.2, its example value)
CHANGE = ("-e", json.dumps({"powermta_extra_config": LINE}))
DECIDE = "Decide between nothing, reload and restart"
POWERMTA = ROOT / "playbooks" / "powermta.yml"


def queue(host):
    return "gmail.rollup/%s" % HELD[host][0]


def submit(host, recipients):
    """Mumara's injection into HOST for its held vMTA; every message accepted."""
    for item in inject(host, recipients, pool=HELD[host][0]):
        assert not item["refused"] and not item["error"], item
    return recipients


def test_faults_mid_rollout_lose_no_mail_and_the_next_run_converges(tmp_path):
    started = time.monotonic()
    env = lossy_ssh_env(tmp_path)
    gmail = GROUPS["gmail"]["domains"][0]
    before = {host: checksums(host) for host in HOSTS}
    reloads_before = {host: reloads(host) for host in HOSTS}
    injected = {host: [] for host in HOSTS}
    for host in HOSTS:
        assert ssh(host, "pmta pause queue %s" % queue(host)).returncode == 0
        injected[host] += submit(host, [unique("fault-before", gmail) for _index in range(3)])
    try:
        # 1. mf-n2 lost in its batch, after its files were installed.
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
                   os.environ["MOLECULE_INVENTORY_FILE"], str(POWERMTA), *CHANGE]
        returncode, output, cut = run_losing_host(command, LOST, DECIDE, env, ROOT)
        assert cut, "the rollout never reached %s's activation:\n%s" % (LOST, output[-4000:])
        assert returncode != 0 and recap(output)[LOST]["unreachable"] == 1, output[-4000:]
        assert LINE in on(KILLED, "cat %s" % LOCAL_CONF) and reloads(KILLED) == reloads_before[KILLED] + 1
        wait_back(LOST)
        assert LINE in on(LOST, "cat %s" % LOCAL_CONF)
        assert LOCAL_CONF in [entry["dest"] for entry in marker(LOST) or []], marker(LOST)
        assert reloads(LOST) == reloads_before[LOST]
        injected[LOST] += submit(LOST, [unique("fault-lost", gmail) for _index in range(2)])

        # 2. The inventory again, the controller killed when mf-n1's batch reaches the decision.
        command = command[:4]
        killed_at, output = run_watching(command, kill_at_task(DECIDE), env=dict(os.environ, **env), cwd=ROOT,
                                         timeout=600)
        assert killed_at is None and DECIDE in output, output[-4000:]
        assert LINE not in on(KILLED, "cat %s" % LOCAL_CONF)
        assert LOCAL_CONF in [entry["dest"] for entry in marker(KILLED) or []], marker(KILLED)
        assert on(KILLED, "stat -c %%a %s" % PENDING_MARKER).strip() == "600"
        assert reloads(KILLED) == reloads_before[KILLED] + 1  # the daemon still runs the change
        injected[KILLED] += submit(KILLED, [unique("fault-killed", gmail) for _index in range(2)])

        # 3. mf-n1's spool disk full: new mail is refused (transient), the queued mail stays.
        queued_before = json.loads(on(KILLED, "pmta --json show status"))["data"]["status"]["queue"]["smtp"]["rcp"]
        mounted = ssh(KILLED, MOUNT_FULL_SPOOL + " && " + FILL_SPOOL_REST)
        assert mounted.returncode == 0, mounted.stderr
        try:
            retry_later = unique("fault-full", gmail)
            item = inject(KILLED, [retry_later], pool=HELD[KILLED][0])[0]
            assert item["error"].startswith("452 4.3.1"), item
            report = pmta_health(os.environ["MOLECULE_INVENTORY_FILE"], KILLED)
            spool = [c for c in report["checks"] if c["name"] == "spool_free_pct"][0]
            assert spool["state"] == "CRITICAL" and "full" in spool["message"], spool
            status = json.loads(on(KILLED, "pmta --json show status"))["data"]["status"]
            assert status["queue"]["smtp"]["rcp"] >= queued_before, (queued_before, status)
        finally:
            # Nothing was spooled on the small file system (all refused): unmounting loses nothing.
            assert ssh(KILLED, "umount %s" % SPOOL).returncode == 0
        injected[KILLED] += submit(KILLED, [retry_later])  # Mumara's retry, with room again

        # The next run finishes the fleet: both reload (mf-n1: files in place, the marker says so).
        result = playbook(POWERMTA, env=env)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        reloaded = task_output(result.stdout, "Reload PowerMTA")
        assert all("changed: [%s]" % host in reloaded for host in HOSTS), result.stdout[-4000:]
        serving = task_output(result.stdout, "Wait until PowerMTA serves")
        assert all("ok: [%s]" % host in serving for host in HOSTS), result.stdout[-4000:]
        for host in HOSTS:
            assert checksums(host) == before[host], host
            assert marker(host) is None, host
            assert reloads(host) == reloads_before[host] + (2 if host == KILLED else 1), host
            assert on(host, "find /etc/pmta -name '*~'") == "", host
    finally:
        for host in HOSTS:
            ssh(host, "pmta resume queue %s" % queue(host))

    everything = [rcpt for host in HOSTS for rcpt in injected[host]]
    wait_for(lambda: all(arrivals(everything).values()), timeout=180, what="every injected message at the sinks")
    time.sleep(2)
    assert arrivals(everything) == dict.fromkeys(everything, 1)  # nothing lost, nothing twice
    peers = {}
    for message in sink_messages("gmail"):
        for rcpt in message["rcpts"]:
            peers.setdefault(rcpt, set()).add(message["peer"])
    for host in HOSTS:
        assert all(peers[rcpt] == {HELD[host][1]} for rcpt in injected[host]), host
    print("faults with mail: %.0f s" % (time.monotonic() - started))
