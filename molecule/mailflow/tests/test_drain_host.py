"""Draining a host in the mail-flow lab (issue 24): playbooks/drain_host.yml, then -e drain=false.

Mail is held on mf-n2 (its gmail queue paused) when the drain starts, so there is something queued to deliver.
The drain marks the host (local fact), writes the injector export (mf-n2's transports get weight 0), closes the
injectors' sources (a new injection is refused) and waits for the queues; the test releases the held mail while
it waits. At the end: every held message arrived exactly once, mf-n2's queues are empty, and undraining gives the
weight back and accepts mail again. The host ends in service, as the other tests expect.
"""

import json
import os
import smtplib
import subprocess
import sys
import time

import pytest
from helpers import GROUPS, ROOT, arrivals, ephemeral, inject, playbook, ssh, unique, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOST, VMTA = "mf-n2", "mk-63"
HELD = 5
JSON_ONLY = ("-e", '{"injector_transports_formats": ["json"]}')  # the export as the test reads it, and faster


def export():
    """{(node, x_virtual_mta): transport} of the export drain_host.yml wrote."""
    data = json.loads((ephemeral() / "injector-transports" / "mumara.json").read_text())
    return {(t["node"], t["x_virtual_mta"]): t for t in data["transports"]}


def refused(recipient):
    """Does mf-n2 refuse a new injection? (connection refused, or an SMTP error)."""
    try:
        items = inject(HOST, [recipient], pool=VMTA, timeout=5)
    except (OSError, smtplib.SMTPException) as exc:
        return str(exc) or type(exc).__name__
    return items[0]["refused"] or items[0]["error"]


def queued_rcpt(host):
    result = ssh(host, "pmta --json show status")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["data"]["status"]["queue"]["smtp"]["rcp"]


def test_drain_delivers_what_is_queued_refuses_new_mail_and_undrain_restores():
    gmail = GROUPS["gmail"]["domains"][0]
    queue = "gmail.rollup/%s" % VMTA
    assert ssh(HOST, "pmta pause queue %s" % queue).returncode == 0
    held = [unique("drain", gmail) for _index in range(HELD)]
    for item in inject(HOST, held, pool=VMTA):
        assert not item["refused"] and not item["error"], item
    wait_for(lambda: queued_rcpt(HOST) >= HELD, timeout=30, what="the held mail in mf-n2's queue")

    started = time.monotonic()
    # In the background: the test releases the held mail while the playbook waits for the queues.
    drain = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         str(ROOT / "playbooks" / "drain_host.yml"), "-e", "drain_host=%s" % HOST, "-e", "drain_timeout=180",
         "-e", "drain_poll=2", *JSON_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    try:
        wait_for(lambda: drain.poll() is not None or refused(unique("late", gmail)), timeout=240, interval=2,
                 what="mf-n2 refusing new mail")
        assert drain.poll() is None, drain.stdout.read()[-4000:]  # still waiting for the held mail
        assert all(count == 0 for count in arrivals(held).values())
        assert ssh(HOST, "pmta resume queue %s" % queue).returncode == 0  # the held mail may go now
        output, _stderr = drain.communicate(timeout=240)
    finally:
        if drain.poll() is None:
            drain.kill()
    assert drain.returncode == 0, output[-5000:]
    assert "drained, queues empty" in output
    print("drain took %.0f s" % (time.monotonic() - started))

    assert arrivals(held) == dict.fromkeys(held, 1)  # zero lost, nothing twice
    assert queued_rcpt(HOST) == 0
    transports = export()
    assert {t["weight"] for (node, _x), t in transports.items() if node == HOST} == {0}
    assert all(t["weight"] == 100 for (node, _x), t in transports.items() if node != HOST)
    fact = json.loads(ssh(HOST, "cat /etc/ansible/facts.d/pmta_drain.fact").stdout)
    assert fact["drained"] is True and fact["since"]

    # Back in service. (A re-run in either direction reports changed=0 on the host; not repeated here to keep
    # the scenario short: each run costs about 35 s.)
    back = playbook(ROOT / "playbooks" / "drain_host.yml", "-e", "drain_host=%s" % HOST, "-e", "drain=false",
                    *JSON_ONLY)
    assert back.returncode == 0, back.stdout[-4000:]
    assert "back in service" in back.stdout
    assert all(t["weight"] > 0 for (node, _x), t in export().items() if node == HOST)
    welcome = unique("back", gmail)
    for item in inject(HOST, [welcome], pool=VMTA):
        assert not item["refused"] and not item["error"], item
    wait_for(lambda: arrivals([welcome])[welcome] == 1, timeout=60, what="mail through the undrained host")
