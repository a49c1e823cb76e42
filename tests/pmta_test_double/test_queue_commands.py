"""The TEST DOUBLE's queue commands (§6.3): pause/resume, schedule, delete, disable/enable source, show queues.

A double of its own (QUEUE_CONFIG) next to the loopback lab's sinks and BIND 9; its clock runs 60x, so the
retry-after 1h of later.example.test is a minute of wall clock: a delivery within seconds after `schedule`
is the command's doing. Run: .venv/bin/pytest tests/pmta_test_double/test_queue_commands.py (as root).
"""

import smtplib
import sys
import time
from pathlib import Path

import loopback_lab
import pytest
from loopback_lab import Sink, arrived, ip, pmta, publish, rows, running_double, wait_for

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
from _operations import queue as _pmta_queue  # noqa: E402 - the collection's reader, checked against the double's own output

QUEUE_CONFIG = """\
postmaster ops@example.com
host-name queues.example.test
log-file {log}/log
run-as-root yes
name-server {dns}
smtp-listener {listen}:2525
http-mgmt-port 0
<source {injector}>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
<virtual-mta q-01>
    smtp-source-host {q1} q1.example.test
</virtual-mta>
<virtual-mta q-02>
    smtp-source-host {q2} q2.example.test
</virtual-mta>
<virtual-mta-pool qpool>
    virtual-mta q-01
    virtual-mta q-02
</virtual-mta-pool>
<domain *>
    retry-after 1h
</domain>
<acct-file {log}/acct.csv>
    records d,b
</acct-file>
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from loopback_lab.world_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def double(world):
    publish(world["bind"], [("later", "MX", "10 mx.later-in.example.test."), ("mx.later-in", "A", ip(29))])
    config = QUEUE_CONFIG.format(log="{log}", dns=world["bind"].address, listen=ip(5), injector=ip(2),
                                 q1=ip(30), q2=ip(31))
    with running_double(world["base"] / "queues", config, world["bind"], {"speed": 60}) as running:
        yield dict(running, sinks=world["sinks"], base=world["base"])


def send(recipients, vmta):
    with smtplib.SMTP(ip(5), 2525, source_address=(ip(2), 0), timeout=10) as smtp:
        for rcpt in recipients:
            smtp.sendmail("app@example.com", [rcpt], "X-Virtual-MTA: %s\r\nSubject: q\r\n\r\nhi\r\n" % vmta)


def queues(double, *options):
    result = pmta(double, "show", "queues", "--no-rcpt-events", "--maxitems=1000", *options)
    assert result.returncode == 0, result.stderr
    parsed, shown, total = _pmta_queue.parse_show_queues(result.stdout)
    assert shown == total == len(parsed), result.stdout
    return {row["queue"]: row for row in parsed}


def test_a_paused_queue_keeps_its_mail_and_delivers_it_once_on_resume(double):
    sink = double["sinks"]["gmail"]
    recipients = ["held%d@gmail.example.test" % n for n in range(3)]
    result = pmta(double, "pause", "queue", "gmail.example.test/q-01")
    assert (result.returncode, result.stdout.strip()) == (0, "Queue(s) paused."), result.stderr
    send(recipients, "q-01")
    time.sleep(3)  # 3 min of the double's clock: a running queue delivers in well under a second
    assert arrived(sink, recipients) == dict.fromkeys(recipients, 0)
    paused = queues(double, "--paused=yes")
    assert paused["gmail.example.test/q-01"]["rcpt"] == 3
    assert "gmail.example.test/q-01" not in queues(double, "--paused=no")
    text = pmta(double, "show", "queues", "gmail.example.test/q-01").stdout
    assert text.splitlines()[0].split()[:4] == ["queue", "#rcpt", "kbytes", "conn"]  # §6.3.13 layout
    assert text.rstrip().endswith("1 of 1 matching queues.")

    result = pmta(double, "resume", "queue", "gmail.example.test/q-01")
    assert (result.returncode, result.stdout.strip()) == (0, "Queue(s) resumed."), result.stderr
    wait_for(lambda: all(arrived(sink, recipients).values()), what="the held mail after resume")
    time.sleep(1)
    assert arrived(sink, recipients) == dict.fromkeys(recipients, 1)  # nothing lost, nothing twice
    assert queues(double, "gmail.example.test/q-01")["gmail.example.test/q-01"]["rcpt"] == 0


def test_pause_of_an_unknown_vmta_is_refused(double):
    result = pmta(double, "pause", "queue", "gmail.example.test/no-such-vmta")
    assert result.returncode == 1 and "unknown virtual MTA" in result.stderr


def test_schedule_retries_now_instead_of_after_retry_after(double):
    recipients = ["later%d@later.example.test" % n for n in range(2)]
    send(recipients, "q-02")
    # Nothing listens on the MX yet: a transient failure, next attempt in retry-after 1h (a minute of wall clock).
    wait_for(lambda: queues(double).get("later.example.test/q-02", {}).get("rcpt") == 2
             and not queues(double)["later.example.test/q-02"]["conn"], what="a deferred queue")
    time.sleep(1)
    sink = Sink(ip(29))
    sink.controller.start()
    try:
        time.sleep(2)
        assert arrived(sink, recipients) == dict.fromkeys(recipients, 0)  # still waiting for its retry time
        result = pmta(double, "schedule", "later.example.test/*")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "1 of 1 matching queues scheduled."
        wait_for(lambda: all(arrived(sink, recipients).values()), timeout=10, what="delivery after schedule")
    finally:
        sink.controller.stop()


def test_delete_removes_the_recipients_and_reports_them(double):
    recipients = ["gone%d@gmail.example.test" % n for n in range(2)]
    assert pmta(double, "pause", "queue", "gmail.example.test/q-02").returncode == 0
    send(recipients, "q-02")
    wait_for(lambda: queues(double).get("gmail.example.test/q-02", {}).get("rcpt") == 2, what="2 queued")
    refused = pmta(double, "delete")
    assert refused.returncode == 1 and "--queue or --jobId" in refused.stderr  # §6.3.22: never all by accident
    result = pmta(double, "delete", "--queue=gmail.example.test/q-02")
    assert (result.returncode, result.stdout.strip()) == (0, "2 recipient(s) deleted."), result.stderr
    assert queues(double)["gmail.example.test/q-02"]["rcpt"] == 0
    deleted = [r for r in rows(double["log"], "acct.csv") if r["rcpt"] in recipients]
    assert sorted(r["rcpt"] for r in deleted) == recipients
    assert all(r["type"] == "b" and "deleted by administrator" in r["dsnDiag"] for r in deleted)
    assert pmta(double, "resume", "queue", "gmail.example.test/q-02").returncode == 0
    time.sleep(1)
    assert arrived(double["sinks"]["gmail"], recipients) == dict.fromkeys(recipients, 0)


def test_disable_source_holds_that_ip_toward_that_domain_until_enabled(double):
    sink = double["sinks"]["gmail"]
    held = ["off%d@gmail.example.test" % n for n in range(2)]
    other = ["on%d@googlemail.example.test" % n for n in range(2)]
    result = pmta(double, "disable", "source", ip(31), "gmail.example.test/q-02")
    assert result.returncode == 0, result.stderr
    listed = pmta(double, "show", "disabled", "sources").stdout
    assert (ip(31), "gmail.example.test/q-02") in _pmta_queue.parse_disabled_sources(listed)
    send(held + other, "q-02")
    wait_for(lambda: all(arrived(sink, other).values()), what="the other domain from the same IP")
    time.sleep(2)
    assert arrived(sink, held) == dict.fromkeys(held, 0)
    assert pmta(double, "enable", "source", ip(31), "gmail.example.test/q-02").returncode == 0
    wait_for(lambda: all(arrived(sink, held).values()), what="delivery after enable source")
    assert {m["peer"] for m in sink.messages if m["rcpts"][0] in held} == {ip(31)}


def test_disable_source_reenables_after_the_interval(double):
    sink = double["sinks"]["gmail"]
    held = ["timed%d@gmail.example.test" % n for n in range(2)]
    # 10m of the double's clock is 10 s of wall clock.
    assert pmta(double, "disable", "source", "--reenable-after=10m", ip(30), "gmail.example.test/q-01").returncode == 0
    started = time.monotonic()
    send(held, "q-01")
    time.sleep(3)
    assert arrived(sink, held) == dict.fromkeys(held, 0)
    wait_for(lambda: all(arrived(sink, held).values()), timeout=25, what="delivery after reenable-after")
    assert time.monotonic() - started >= 8
    assert (ip(30), "gmail.example.test/q-01") not in _pmta_queue.parse_disabled_sources(
        pmta(double, "show", "disabled", "sources").stdout)


def test_the_collections_queue_logic_against_the_double_is_idempotent(double):
    """_pmta_queue.apply (what the module runs) against the double's CLI: pause, again (no change), resume."""
    def run(argv):
        result = pmta(double, *argv[1:])
        return result.returncode, result.stdout, result.stderr

    patterns = ["gmail.example.test/q-01", "gmail.example.test/q-02"]
    first = _pmta_queue.apply(run, "paused", patterns)
    assert first["changed"] and len(first["commands"]) == 2
    assert all(q["paused"] for q in first["queues_after"])
    assert not _pmta_queue.apply(run, "paused", patterns)["changed"]
    checked = _pmta_queue.apply(run, "resumed", patterns, check_mode=True)
    assert checked["changed"] and "queues_after" not in checked
    assert all(q["paused"] for q in _pmta_queue.apply(run, "paused", patterns)["queues"])  # check mode changed nothing
    assert _pmta_queue.apply(run, "resumed", patterns)["changed"]
    assert not _pmta_queue.apply(run, "resumed", patterns)["changed"]
    disabled = _pmta_queue.apply(run, "source_disabled", ["gmail.example.test/q-01"], source_ip=ip(30),
                                 reenable_after="1h")
    assert disabled["commands"] == ["pmta disable source --reenable-after=1h %s gmail.example.test/q-01" % ip(30)]
    assert not _pmta_queue.apply(run, "source_disabled", ["gmail.example.test/q-01"], source_ip=ip(30))["changed"]
    assert _pmta_queue.apply(run, "source_enabled", ["gmail.example.test/q-01"], source_ip=ip(30))["changed"]
    assert not _pmta_queue.apply(run, "source_enabled", ["gmail.example.test/q-01"], source_ip=ip(30))["changed"]


def test_show_vmtas_prints_the_guides_layout(double):
    """§6.3.20: name, domains, #rcpt, % total, kbytes, conn per vMTA, then `N of M virtual MTAs.`"""
    result = pmta(double, "show", "vmtas")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["name", "domains", "#rcpt", "%", "total", "kbytes", "conn"]
    assert sorted(line.split()[0] for line in lines[2:-1]) == ["q-01", "q-02"]
    assert all(len(line.split()) == 6 and line.split()[1].isdigit() for line in lines[2:-1])
    assert lines[-1] == "2 of 2 virtual MTAs."
