"""The PowerMTA TEST DOUBLE's policies: reply patterns, backoff, cold vMTAs, processors, the test clock.

Run: .venv/bin/pytest tests/pmta_test_double/test_delivery_policies.py   (as root; see loopback_lab.py)
"""

import datetime
import json
import os
import smtplib
import time

import loopback_lab
import pytest
from loopback_lab import delivered, ip, pmta, rows, send, send_night, wait_for


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from loopback_lab.world_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def night(world):
    yield from loopback_lab.night_fixture(world)


def test_pattern_list_backoff_then_retry_after_delivers(world):
    send(["f@yahoo.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    transient = wait_for(lambda: [r for r in rows(world["log"], "diag.csv") if r["type"] == "t"
                                  and r["rcpt"] == "f@yahoo.example.test"], what="t record")[0]
    assert "421 4.7.0 [TS01]" in transient["dsnDiag"]
    queues = json.loads(pmta(world, "--json", "show", "queues").stdout)["data"]["queues"]
    assert {q["name"]: q["mode"] for q in queues}["yahoo.example.test/tx-01"] == "backoff"
    assert not delivered(world, "f@yahoo.example.test")
    # backoff-retry-after 5m at 60x: about 5 s later it goes through.
    wait_for(lambda: delivered(world, "f@yahoo.example.test"), timeout=20, what="retry delivery")


def test_bounce_rcpt_action_bounces_a_4xx_recipient(world):
    send(["full@yahoo.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: [r for r in rows(world["log"], "acct.csv") if r["rcpt"] == "full@yahoo.example.test"],
                   timeout=20, what="b record")[0]
    assert row["type"] == "b" and "452 4.2.2 not today" in row["dsnDiag"]


def test_disable_source_ip_stops_the_queue_until_reenabled(world):
    blocky = world["sinks"]["blocky"]
    send(["b1@blocky.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    wait_for(lambda: [r for r in rows(world["log"], "diag.csv") if r["rcpt"] == "b1@blocky.example.test"],
             what="t record")
    send(["b2@blocky.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    time.sleep(1.5)
    # reenable-after=1h: the second message is not even tried from the disabled source.
    assert len(blocky.sessions) == 1
    assert not [r for r in rows(world["log"], "diag.csv") if r["rcpt"] == "b2@blocky.example.test"]


def test_cold_vmta_takes_the_first_messages_per_domain_per_day(world):
    recipients = ["cold%d@gmail.example.test" % n for n in range(4)]
    for rcpt in recipients:
        send([rcpt], headers="X-Virtual-MTA: warm-01\r\n")
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="warm/cold deliveries")
    vmtas = [delivered(world, r)[0]["vmta"] for r in recipients]
    assert vmtas == ["cold-01", "cold-01", "warm-01", "warm-01"]
    peers = {m["rcpts"][0]: m["peer"] for m in world["sinks"]["gmail"].messages}
    assert [peers[r] for r in recipients] == [ip(13), ip(13), ip(12), ip(12)]


def test_reroute_to_virtual_mta_sends_from_the_other_vmta(world):
    """§3.3.10.49: tx-02's queue for rerouted.example.test reroutes to tx-01, so that mail leaves from tx-01's IP
    (the warm-up's pause); tx-02's other mail stays on tx-02."""
    send(["r1@rerouted.example.test", "r2@gmail.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    wait_for(lambda: delivered(world, "r1@rerouted.example.test") and delivered(world, "r2@gmail.example.test"),
             what="rerouted and direct deliveries")
    assert delivered(world, "r1@rerouted.example.test")[0]["vmta"] == "tx-01"
    assert delivered(world, "r2@gmail.example.test")[0]["vmta"] == "tx-02"
    peers = {m["rcpts"][0]: m["peer"] for m in world["sinks"]["gmail"].messages}
    assert peers["r1@rerouted.example.test"] == ip(10)
    assert peers["r2@gmail.example.test"] == ip(11)


def _dsn(original_rcpt):
    """An RFC 3464 DSN as a remote MTA sends it, late, to the original MAIL FROM."""
    return (
        "From: MAILER-DAEMON@gmail.example.test\r\nTo: bounce+1@bounces.example.test\r\n"
        "Subject: Delivery Status Notification (Failure)\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\ncould not deliver\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.gmail.example.test\r\n\r\n"
        "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; mx.gmail.example.test\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: app@example.com\r\nTo: %s\r\nSubject: hi\r\n\r\n--b1--\r\n" % (original_rcpt, original_rcpt))


def _arf():
    """An RFC 5965 ARF report as a mailbox provider's FBL sends it."""
    return (
        "From: fbl@gmail.example.test\r\nTo: fbl@fbl.example.test\r\nSubject: Abuse report\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report\r\n"
        "--b2\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: lab-sink/1.0\r\nVersion: 1\r\n"
        "Original-Mail-From: <app@example.com>\r\nOriginal-Rcpt-To: <user@gmail.example.test>\r\n"
        "Reporting-MTA: dns; mx.gmail.example.test\r\nSource-IP: %s\r\nReported-Domain: example.com\r\n\r\n"
        "--b2\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: app@example.com\r\nTo: user@gmail.example.test\r\nSubject: hi\r\n\r\nbody\r\n--b2--\r\n"
        % ip(10))


def test_bounce_and_feedback_loop_processors_write_rb_and_f(world):
    # From the sink's address: <source 127.0.0.0/8> may not relay, so only the processors' lists accept it.
    with smtplib.SMTP(ip(1), 2525, source_address=(ip(21), 0), timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("x@gmail.example.test", ["someone@gmail.example.test"], "Subject: relay\r\n\r\nno\r\n")
        smtp.sendmail("", ["bounce+1@bounces.example.test"], _dsn("gone@gmail.example.test"))
        smtp.sendmail("", ["fbl@fbl.example.test"], _arf())
    remote = wait_for(lambda: rows(world["log"], "remote.csv"), what="rb record")
    assert remote[0]["type"] == "rb"
    assert remote[0]["rcpt"] == "gone@gmail.example.test"
    assert remote[0]["orig"] == "bounce+1@bounces.example.test"
    assert remote[0]["dsnStatus"] == "5.1.1" and remote[0]["bounceCat"] == "bad-mailbox"
    assert remote[0]["dsnReportingMta"] == "mx.gmail.example.test"
    fbl = wait_for(lambda: rows(world["log"], "fbl.csv"), what="f record")
    assert fbl[0]["type"] == "f"
    assert fbl[0]["feedbackType"] == "abuse" and fbl[0]["format"] == "arf"
    assert fbl[0]["orig"] == "app@example.com" and fbl[0]["rcpt"] == "user@gmail.example.test"
    assert fbl[0]["dlvSourceIp"] == ip(10) and fbl[0]["reportedDomain"] == "example.com"
    # Both were received (r records), but deliver-matched-email defaults to no: neither is queued or relayed.
    received = [r["rcpt"] for r in rows(world["log"], "received.csv")]
    assert "bounce+1@bounces.example.test" in received and "fbl@fbl.example.test" in received
    time.sleep(0.5)
    queues = json.loads(pmta(world, "--json", "show", "queues").stdout)["data"]["queues"]
    assert not [q for q in queues if q["domain"] in ("bounces.example.test", "fbl.example.test")]
    assert not [r for r in rows(world["log"], "acct.csv") + rows(world["log"], "diag.csv")
                if r["rcpt"] in ("bounce+1@bounces.example.test", "fbl@fbl.example.test")]


def test_per_day_rate_cold_ramp_and_bounce_after_follow_the_test_clock(night):
    log = night["log"]
    rate = ["r%d@rate.example.test" % n for n in range(5)]
    cold_before = ["c%d@coldd.example.test" % n for n in range(3)]
    send_night(rate)
    send_night(cold_before, headers="X-Virtual-MTA: warm-01\r\n")
    send_night(["x@dead.example.test"])
    assert time.monotonic() - night["started"] < 2.5, "too slow to test before the test clock's midnight"

    def done(names):
        return {r["rcpt"]: r for r in rows(log, "acct.csv") if r["type"] == "d" and r["rcpt"] in names}

    # Before midnight: max-msg-rate 2/d lets 2 of 5 through; 1 of 3 goes cold (day 1 of the 1/d,2/day ramp).
    wait_for(lambda: len(done(cold_before)) == 3, timeout=5, what="cold/warm deliveries")
    assert len(done(rate)) == 2
    assert [done(cold_before)[r]["vmta"] for r in cold_before] == ["cold-01", "warm-01", "warm-01"]
    # Midnight (UTC, test clock): the per-day counters reset and the ramp steps to 2/day.
    wait_for(lambda: len(done(rate)) == 4, timeout=10, what="the rate's next day")
    cold_after = ["d%d@coldd.example.test" % n for n in range(3)]
    send_night(cold_after, headers="X-Virtual-MTA: warm-01\r\n")
    wait_for(lambda: len(done(cold_after)) == 3, timeout=5, what="next-day cold deliveries")
    assert [done(cold_after)[r]["vmta"] for r in cold_after] == ["cold-01", "cold-01", "warm-01"]
    assert [r["timeLogged"][:10] for r in done(cold_after).values()] == ["2026-11-30"] * 3
    # Nobody listens on the dead MX: t records every retry-after (1m), then b after bounce-after (3m).
    bounced = wait_for(lambda: [r for r in rows(log, "acct.csv") if r["rcpt"] == "x@dead.example.test"
                                and r["type"] == "b"], timeout=15, what="bounce-after")[0]
    assert bounced["bounceCat"] == "message-expired"
    retries = [r for r in rows(log, "acct.csv") if r["rcpt"] == "x@dead.example.test" and r["type"] == "t"]
    assert len(retries) >= 2 and "connect to %s:25" % ip(25) in retries[0]["dsnDiag"]
    assert len(done(rate)) == 4  # the fifth waits for the day after
    # the accounting file was last modified at the test clock's time, as its last record says
    last = max(r["timeLogged"] for r in rows(log, "acct.csv"))
    last_epoch = datetime.datetime.strptime(last, "%Y-%m-%d %H:%M:%S%z").timestamp()
    assert abs(os.path.getmtime(log / "acct.csv") - last_epoch) < 60, last
