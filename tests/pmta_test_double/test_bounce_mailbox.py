"""The TEST DOUBLE passes processed bounces and complaints on to the injector's mailbox (loopback).

§3.3.3/§3.3.4: with ``deliver-matched-email yes`` a report the processor recognised is delivered after its
record is written, ``deliver-unmatched-email`` decides for anything else; §12.6: "delivered normally (by
whatever method assigned to the domain)", here ``smtp-hosts`` (§3.3.10.89) to the mailbox. PowerMTA's own
DSNs for recipients it bounces go to the MAIL FROM (§3.3.10.11) unless the source has ``suppress-local-dsn``
(§3.3.7.27); a message with a null MAIL FROM gets none (no bounce of a bounce).

Run: .venv/bin/pytest tests/pmta_test_double/test_bounce_mailbox.py   (as root: the sinks listen on port 25)
"""

import email
import email.policy
import json
import smtplib
import time
import types

import loopback_lab
import pytest
from loopback_lab import Sink, ip, rows, wait_for

CONFIG = """\
postmaster ops@example.com
host-name pmta.example.test
log-file {log}/log
run-as-root yes
smtp-listener %(listen)s:2525
http-mgmt-port 0
<source 0/0>
    smtp-service yes
    always-allow-relaying no
</source>
<source %(injector)s>
    always-allow-relaying yes
</source>
<source %(quiet)s>
    always-allow-relaying yes
    suppress-local-dsn yes
</source>
relay-domain bounces.example.test
relay-address fbl@fbl.example.test
<domain *>
    retry-after 5m
    use-starttls no
</domain>
<domain gmail.example.test>
    smtp-hosts [%(isp)s]:25
</domain>
<domain bounces.example.test>
    smtp-hosts [%(mailbox)s]:25
</domain>
<domain fbl.example.test>
    smtp-hosts [%(mailbox)s]:25
</domain>
<bounce-processor>
    deliver-unmatched-email yes
    deliver-matched-email yes
    <address-list>
        domain bounces.example.test
    </address-list>
</bounce-processor>
<feedback-loop-processor>
    deliver-unmatched-email yes
    deliver-matched-email yes
    <address-list>
        address /^fbl@fbl\\.example\\.test$/
    </address-list>
</feedback-loop-processor>
<acct-file {log}/acct.csv>
    records d,b
</acct-file>
<acct-file {log}/remote.csv>
    records rb
</acct-file>
<acct-file {log}/fbl.csv>
    records f
</acct-file>
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("mailbox")
    isp = Sink(ip(41), rcpt_reply=lambda r: "550 5.1.1 user unknown" if r.startswith("nosuchuser") else None)
    mailbox = Sink(ip(42), rcpt_reply=lambda r: "550 5.1.1 no such mailbox" if r.startswith("closed") else None)
    for sink in (isp, mailbox):
        sink.controller.start()
    config = CONFIG % {"listen": ip(40), "injector": ip(43), "quiet": ip(44), "isp": ip(41), "mailbox": ip(42)}
    no_dns = types.SimpleNamespace(port=53)  # every route here is an smtp-hosts IP literal: no DNS lookups
    try:
        with loopback_lab.running_double(base / "double", config, no_dns, {"speed": 60}) as double:
            yield dict(double, isp=isp, mailbox=mailbox)
    finally:
        for sink in (isp, mailbox):
            sink.controller.stop()


def _send(source, mail_from, rcpt, data):
    with smtplib.SMTP(ip(40), 2525, source_address=(source, 0), timeout=10) as smtp:
        smtp.sendmail(mail_from, [rcpt], data)


def _reports_to_nobody(world):
    """Queues or records of a report addressed to a null MAIL FROM (a bounce of a bounce has nowhere to go)."""
    queues = json.loads(loopback_lab.pmta(world, "--json", "show", "queues").stdout)["data"]["queues"]
    return [q["name"] for q in queues if not q["domain"]] + [r for r in rows(world["log"], "acct.csv") if not r["rcpt"]]


def _in_mailbox(world, rcpt):
    return [m for m in world["mailbox"].messages if rcpt in m["rcpts"]]


def _dsn(bounce_address, failed_rcpt):
    return ("From: MAILER-DAEMON@mx.gmail.example.test\r\nTo: %s\r\nSubject: Undelivered Mail\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain\r\n\r\ngone\r\n"
            "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.gmail.example.test\r\n\r\n"
            "Final-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: %s\r\n\r\n--b1--\r\n"
            % (bounce_address, failed_rcpt, failed_rcpt))


def _arf(complainer):
    return ("From: fbl@gmail.example.test\r\nTo: fbl@fbl.example.test\r\nSubject: Abuse report\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n'
            "--b2\r\nContent-Type: text/plain\r\n\r\nabuse report\r\n"
            "--b2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: t/1\r\n"
            "Version: 1\r\nOriginal-Rcpt-To: <%s>\r\nSource-IP: %s\r\n\r\n"
            "--b2\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: %s\r\n\r\n--b2--\r\n"
            % (complainer, ip(10), complainer))


def test_matched_dsn_writes_rb_then_goes_to_the_mailbox(world):
    _send(ip(41), "", "bounce+m1@bounces.example.test",
          _dsn("bounce+m1@bounces.example.test", "gone1@gmail.example.test"))
    got = wait_for(lambda: _in_mailbox(world, "bounce+m1@bounces.example.test"), what="the DSN in the mailbox")
    assert len(got) == 1 and got[0]["peer"] != ip(41)
    assert b"gone1@gmail.example.test" in got[0]["data"]
    remote = [r for r in rows(world["log"], "remote.csv") if r["rcpt"] == "gone1@gmail.example.test"]
    assert len(remote) == 1 and remote[0]["type"] == "rb" and remote[0]["bounceCat"] == "bad-mailbox"


def test_matched_arf_writes_f_then_goes_to_the_mailbox(world):
    _send(ip(41), "", "fbl@fbl.example.test", _arf("angry1@gmail.example.test"))
    got = wait_for(lambda: [m for m in _in_mailbox(world, "fbl@fbl.example.test")
                            if b"angry1@gmail.example.test" in m["data"]], what="the ARF report in the mailbox")
    assert len(got) == 1
    fbl = [r for r in rows(world["log"], "fbl.csv") if r["rcpt"] == "angry1@gmail.example.test"]
    assert len(fbl) == 1 and fbl[0]["feedbackType"] == "abuse"


def test_unmatched_reply_to_a_bounce_address_goes_to_the_mailbox_without_a_record(world):
    _send(ip(41), "someone@gmail.example.test", "bounce+u1@bounces.example.test",
          "Subject: Out of office\r\n\r\nI am away.\r\n")
    got = wait_for(lambda: _in_mailbox(world, "bounce+u1@bounces.example.test"),
                   what="the auto-reply in the mailbox")
    assert len(got) == 1 and b"Out of office" in got[0]["data"]
    assert not [r for r in rows(world["log"], "remote.csv") if r["orig"] == "bounce+u1@bounces.example.test"]


def test_only_the_bounce_domain_and_the_fbl_address_are_taken_in(world):
    with smtplib.SMTP(ip(40), 2525, source_address=(ip(41), 0), timeout=10) as smtp:
        for rcpt in ("other@fbl.example.test", "someone@gmail.example.test", "x@example.test"):
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("a@gmail.example.test", [rcpt], "Subject: relay?\r\n\r\nno\r\n")


def test_a_synchronous_bounce_sends_powermta_s_dsn_to_the_return_path(world):
    _send(ip(43), "bounce+s1@bounces.example.test", "nosuchuser-s1@gmail.example.test",
          "From: news@example.com\r\nTo: nosuchuser-s1@gmail.example.test\r\nX-Job: c1\r\nSubject: hi\r\n\r\nbody\r\n")
    got = wait_for(lambda: _in_mailbox(world, "bounce+s1@bounces.example.test"), what="PowerMTA's DSN in the mailbox")
    assert len(got) == 1
    report = email.message_from_bytes(got[0]["data"], policy=email.policy.compat32)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    status = next(p for p in report.get_payload() if p.get_content_type() == "message/delivery-status")
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; pmta.example.test"
    assert per_recipient["Final-Recipient"] == "rfc822; nosuchuser-s1@gmail.example.test"
    assert per_recipient["Action"] == "failed" and per_recipient["Status"] == "5.1.1"
    assert "550" in per_recipient["Diagnostic-Code"]
    returned = next(p for p in report.get_payload() if p.get_content_type() == "text/rfc822-headers")
    assert "X-Job: c1" in returned.get_payload() and "body" not in returned.get_payload()  # headers only
    bounced = [r for r in rows(world["log"], "acct.csv") if r["rcpt"] == "nosuchuser-s1@gmail.example.test"]
    assert [r["type"] for r in bounced] == ["b"]
    # The DSN went out to the mailbox host, never back through this host's processors: no rb record for it.
    delivered = wait_for(lambda: [r for r in rows(world["log"], "acct.csv")
                                  if r["rcpt"] == "bounce+s1@bounces.example.test" and r["type"] == "d"],
                         what="the d record of the DSN")
    assert delivered[0]["orig"] == "" and delivered[0]["dlvDestinationIp"] == ip(42)
    assert not [r for r in rows(world["log"], "remote.csv") if "nosuchuser-s1" in r["rcpt"]]


def test_no_dsn_for_a_null_sender_nor_from_a_suppress_local_dsn_source(world):
    _send(ip(43), "", "nosuchuser-n1@gmail.example.test", "Subject: a report\r\n\r\nx\r\n")
    _send(ip(44), "bounce+q1@bounces.example.test", "nosuchuser-q1@gmail.example.test", "Subject: q\r\n\r\nx\r\n")
    wait_for(lambda: {r["rcpt"] for r in rows(world["log"], "acct.csv") if r["type"] == "b"}
             >= {"nosuchuser-n1@gmail.example.test", "nosuchuser-q1@gmail.example.test"}, what="two b records")
    time.sleep(1.5)  # a DSN would be queued at once and delivered within a scheduler pass or two
    assert not _in_mailbox(world, "bounce+q1@bounces.example.test")
    assert not [m for m in world["mailbox"].messages if b"nosuchuser-n1" in m["data"]]
    assert _reports_to_nobody(world) == []


def test_a_dsn_the_mailbox_refuses_is_not_bounced_again(world):
    # The DSN (null MAIL FROM) to a mailbox that refuses it: b record for the DSN, and no report about the report.
    _send(ip(43), "closed-c1@bounces.example.test", "nosuchuser-c1@gmail.example.test", "Subject: c\r\n\r\nx\r\n")
    wait_for(lambda: [r for r in rows(world["log"], "acct.csv")
                      if r["rcpt"] == "closed-c1@bounces.example.test" and r["type"] == "b"],
             what="the b record of the refused DSN")
    time.sleep(1.5)
    dsn_bounces = [r for r in rows(world["log"], "acct.csv") if r["orig"] == "" and r["type"] == "b"]
    assert [r["rcpt"] for r in dsn_bounces if r["rcpt"].startswith("closed-")] == ["closed-c1@bounces.example.test"]
    assert len([m for m in world["mailbox"].messages if b"closed-c1" in m["data"]]) == 0
    assert _reports_to_nobody(world) == []
