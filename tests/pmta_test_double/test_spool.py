"""The TEST DOUBLE's spool (spool.py): queued mail survives a restart; below min-free-space new mail is refused.

§3.3.1.4 (message files in the spool), §7 "Spool Initialization" (read back at startup), §3.3.2.4 min-free-space
("stop accepting email into the spool ... When available disk space increases above that level, messages are
accepted again"). The threshold is checked against the real file system of the test's spool directory (statvfs):
a min-free-space above what that file system has free is a full spool, 0 is an empty one.
Run: .venv/bin/pytest tests/pmta_test_double/test_spool.py (as root).
"""

import json
import smtplib
import sys
import time
from pathlib import Path

import loopback_lab
import pytest
from loopback_lab import arrived, ip, pmta, running_double, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "module_utils"))
from _operations import queue as _pmta_queue  # noqa: E402 - the collection's reader of `pmta show queues`

SPOOL_CONFIG = """\
postmaster ops@example.com
host-name spool.example.test
log-file {log}/log
run-as-root yes
name-server %(dns)s
smtp-listener %(listen)s:2525
http-mgmt-port 0
<source %(injector)s>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
<virtual-mta s-01>
    smtp-source-host %(s1)s s1.example.test
</virtual-mta>
<spool %(spool)s>
    min-free-space %(min_free)s
</spool>
<acct-file {log}/acct.csv>
    records d,b
</acct-file>
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from loopback_lab.world_fixture(tmp_path_factory)


def config(world, spool, min_free="0"):
    return SPOOL_CONFIG % {"dns": world["bind"].address, "listen": ip(6), "injector": ip(2), "s1": ip(32),
                           "spool": spool, "min_free": min_free}


def send(recipients):
    loopback_lab.send(recipients, headers="X-Virtual-MTA: s-01\r\n", each=True, listener=6)


def reconfigure(double, world, spool, min_free):
    """The config with another min-free-space, reloaded (§6.3.4 pmta reload)."""
    (double["etc"] / "config").write_text(config(world, spool, min_free).replace("{log}", str(double["log"])))
    assert pmta(double, "reload").returncode == 0


def spool_files(spool):
    return sorted(p.name for p in spool.iterdir() if p.name.endswith(".msg"))


def test_queued_mail_survives_a_restart_and_is_delivered_once(world):
    base, spool = world["base"] / "restart", world["base"] / "restart-spool"
    sink = world["sinks"]["gmail"]
    recipients = ["kept%d@gmail.example.test" % n for n in range(3)]
    with running_double(base, config(world, spool), world["bind"], {"speed": 60}) as double:
        assert pmta(double, "pause", "queue", "gmail.example.test/s-01").returncode == 0
        send(recipients)
        assert len(spool_files(spool)) == 3  # on disk before the 250 reply
        status = json.loads(pmta(double, "--json", "show", "status").stdout)["data"]["status"]
        assert status["spool"]["files"]["inUse"] == 3
        time.sleep(1)
        assert arrived(sink, recipients) == dict.fromkeys(recipients, 0)
    # Stopped with 3 queued; a pause is not kept across a restart (§6.3.23 acts on the running queues).
    with running_double(base, config(world, spool), world["bind"], {"speed": 60}) as double:
        wait_for(lambda: all(arrived(sink, recipients).values()), what="the spooled mail after the restart")
        time.sleep(1)
        assert arrived(sink, recipients) == dict.fromkeys(recipients, 1)  # nothing lost, nothing twice
        assert {m["peer"] for m in sink.messages if m["rcpts"][0] in recipients} == {ip(32)}
        wait_for(lambda: not spool_files(spool), what="the delivered mail's spool files to go")
        assert "spool: 3 message(s), 3 recipient(s) loaded" in (double["log"] / "log").read_text()


def test_below_min_free_space_new_mail_is_refused_and_queued_mail_is_kept(world):
    base, spool = world["base"] / "full", world["base"] / "full-spool"
    sink = world["sinks"]["gmail"]
    queued = ["before%d@gmail.example.test" % n for n in range(2)]
    with running_double(base, config(world, spool), world["bind"], {"speed": 60}) as double:
        assert pmta(double, "pause", "queue", "gmail.example.test/s-01").returncode == 0
        send(queued)
        # More free space required than the file system has: the spool is full for PowerMTA.
        reconfigure(double, world, spool, "1000t")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            send(["refused@gmail.example.test"])
        assert refused.value.smtp_code == 452 and b"4.3.1" in refused.value.smtp_error
        assert len(spool_files(spool)) == 2  # what was queued stays queued
        shown = pmta(double, "show", "queues", "--no-rcpt-events", "gmail.example.test/s-01").stdout
        assert [(q["queue"], q["rcpt"]) for q in _pmta_queue.parse_show_queues(shown)[0]] == [
            ("gmail.example.test/s-01", 2)], shown
        # Space back (threshold 0): accepted again, and everything delivered once.
        reconfigure(double, world, spool, "0")
        send(["after@gmail.example.test"])
        assert pmta(double, "resume", "queue", "gmail.example.test/s-01").returncode == 0
        everything = queued + ["after@gmail.example.test"]
        wait_for(lambda: all(arrived(sink, everything).values()), what="the kept and the new mail")
        time.sleep(1)
        assert arrived(sink, everything) == dict.fromkeys(everything, 1)
        assert arrived(sink, ["refused@gmail.example.test"]) == {"refused@gmail.example.test": 0}
        wait_for(lambda: not spool_files(spool), what="the spool to empty")
