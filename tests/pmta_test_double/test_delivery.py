"""The PowerMTA TEST DOUBLE delivers: real BIND 9, aiosmtpd sinks and the daemon, all on loopback.

Run: .venv/bin/pytest tests/pmta_test_double/test_delivery.py   (as root: the sinks bind port 25 on 127.x
addresses, as MX delivery goes to port 25). `name-server` takes an IP only (§3.3.1.26), so BIND runs on a free
high port of 127.0.0.1 and the TEST-DOUBLE-name-server-port hook tells the double which port.
The test clock (TEST-DOUBLE-clock) runs 60x, so retry-after 5m is 5 s of wall clock.
"""

import asyncio
import contextlib
import csv
import json
import os
import random
import smtplib
import subprocess
import sys
import threading
import time

import dns.query
import dns.tsigkeyring
import dns.update
import pytest
from aiosmtpd.controller import Controller

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "testbed"))
from bind9 import Bind9Server  # noqa: E402

PYTHONPATH = os.pathsep.join([HERE, os.path.join(REPO, "plugins", "module_utils")])
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binds port 25 on loopback: needs root")

NET = "127.%d.%d" % (random.randint(64, 250), random.randint(1, 250))


def ip(last):
    return "%s.%d" % (NET, last)


class Sink:
    """An ISP-side MTA: records every session; ``script`` decides replies to RCPT/DATA."""

    def __init__(self, address, rcpt_reply=None, data_replies=None, tls_context=None, data_delay=0.0):
        self.address = address
        self.rcpt_reply = rcpt_reply or (lambda rcpt: None)
        self.data_replies = list(data_replies or [])
        self.messages = []  # dicts: peer, helo, tls, session, rcpts, data
        self.lock = threading.Lock()
        self.data_delay = data_delay
        self.current = 0
        self.most_concurrent = 0
        self.sessions = set()
        extra = {"tls_context": tls_context} if tls_context else {}
        self.controller = Controller(self, hostname=address, port=25, **extra)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sessions.add(id(session))
        reply = self.rcpt_reply(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            self.current += 1
            self.most_concurrent = max(self.most_concurrent, self.current)
            await asyncio.sleep(self.data_delay)
            self.current -= 1
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.messages.append({"peer": session.peer[0], "helo": session.host_name, "tls": session.ssl is not None,
                                  "session": id(session), "rcpts": list(envelope.rcpt_tos),
                                  "data": envelope.original_content})
        return "250 2.0.0 accepted"


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def rows(log, name):
    path = log / name
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def publish(bind, records):
    """Add records to example.test through a TSIG-signed UPDATE, as the dns role does."""
    keyring = dns.tsigkeyring.from_text({bind.key_name: bind.key_secret})
    update = dns.update.Update("example.test", keyring=keyring, keyalgorithm=bind.key_algorithm)
    for name, rdtype, value in records:
        update.add(name, 60, rdtype, value)
    response = dns.query.tcp(update, bind.address, port=bind.port, timeout=10)
    assert response.rcode() == 0


CONFIG = """\
postmaster ops@example.com
host-name pmta.example.test
log-file {log}/log
run-as-root yes
name-server {dns}
smtp-listener {listen}:2525
http-mgmt-port 0
<source 0/0>
    smtp-service yes
    always-allow-relaying no
</source>
<source 127.0.0.0/8>
    always-allow-relaying no
</source>
<source {injector}>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
domain-macro googleish gmail.example.test,googlemail.example.test
<virtual-mta tx-01>
    smtp-source-host {tx1} mta10.example.test
</virtual-mta>
<virtual-mta tx-02>
    smtp-source-host {tx2} mta11.example.test
</virtual-mta>
<virtual-mta slowv>
    smtp-source-host {slowv} slowv.example.test
    max-smtp-msg-rate 2/h
</virtual-mta>
<virtual-mta-pool transactional>
    virtual-mta tx-01
    virtual-mta tx-02
</virtual-mta-pool>
<virtual-mta warm-01>
    smtp-source-host {warm} warm.example.test
    cold-virtual-mta cold-01
    <domain *>
        max-cold-virtual-mta-msg 2/d
    </domain>
</virtual-mta>
<virtual-mta cold-01>
    smtp-source-host {cold} cold.example.test
</virtual-mta>
<smtp-pattern-list throttle>
    reply /(?-i)TS01/ mode=backoff
    reply /not today/ bounce-rcpt
</smtp-pattern-list>
<smtp-pattern-list blocks>
    reply /TS03/ disable-source-ip,reenable-after=1h
    reply /too many connections/ skip-mx
</smtp-pattern-list>
<mx-rollup-list>
    mx mx1.hotmail-in.example.test hotmail.rollup
    mx *.gmail-smtp-in.example.test google.rollup rollup-by-ip
    mx *.wild-in.example.test wild.rollup
    mx mx1.two-in.example.test two.rollup
    mx mx2.two-in.example.test two.rollup
</mx-rollup-list>
<domain *>
    retry-after 5m
    use-starttls yes
</domain>
<domain $googleish>
    max-msg-per-connection 2
</domain>
<domain yahoo.example.test>
    smtp-pattern-list throttle
    backoff-retry-after 5m
</domain>
<domain one.example.test>
    max-smtp-out 1
    max-msg-per-connection 1
</domain>
<domain three.example.test>
    max-smtp-out 3
    max-msg-per-connection 1
</domain>
<domain blocky.example.test>
    smtp-pattern-list blocks
</domain>
<domain skippy.example.test>
    smtp-pattern-list blocks
</domain>
<domain hotmail.rollup>
    max-msg-per-connection 1
</domain>
<domain routed.example.test>
    smtp-hosts [{gmail_mx}]:25
</domain>
<bounce-processor>
    deliver-unmatched-email no
    <address-list>
        domain bounces.example.test
    </address-list>
</bounce-processor>
<feedback-loop-processor>
    deliver-unmatched-email no
    <address-list>
        address /^fbl@fbl\\.example\\.test$/
    </address-list>
</feedback-loop-processor>
<acct-file {log}/acct.csv>
    records d,b
</acct-file>
<acct-file {log}/diag.csv>
    records t,tq
</acct-file>
<acct-file {log}/received.csv>
    records r
</acct-file>
<acct-file {log}/remote.csv>
    records rb
</acct-file>
<acct-file {log}/fbl.csv>
    records f
</acct-file>
"""


def tls_server_context(path):
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx1.hotmail-in.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(path))
    return context


@contextlib.contextmanager
def running_double(base, config, bind, clock):
    """pmtad from the source tree with ``config`` ({log} filled in) and the test hooks."""
    etc, run, log = base / "etc", base / "run", base / "log"
    for directory in (etc, run, log):
        directory.mkdir(parents=True)
    (etc / "config").write_text(config.replace("{log}", str(log)))
    (etc / "license").write_text("# TEST DOUBLE license\n")
    (etc / "TEST-DOUBLE-clock").write_text(json.dumps(clock))
    (etc / "TEST-DOUBLE-name-server-port").write_text("%d\n" % bind.port)
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, PMTA_TD_ETC=str(etc), PMTA_TD_RUN=str(run),
               PMTA_TD_CONTROL=str(run / "pmtad.sock"), PMTA_TD_STARTUPERR=str(log / "startuperr"))
    daemon = subprocess.Popen([sys.executable, "-c", "from pmta_test_double.daemon import main; main()"],
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (run / "pmtad.sock").exists() or daemon.poll() is not None, what="pmtad")
        assert daemon.poll() is None, daemon.stderr.read()
        yield {"log": log, "env": env, "etc": etc}
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    bind = Bind9Server(base / "bind")
    bind.start()
    sinks = {
        "gmail": Sink(ip(21), rcpt_reply=lambda r: "550 5.1.1 user unknown" if r.startswith("nosuchuser@") else None),
        "yahoo": Sink(ip(22), data_replies=["421 4.7.0 [TS01] Messages from you temporarily deferred"],
                      rcpt_reply=lambda r: "452 4.2.2 not today" if r.startswith("full@") else None),
        "hotmail": Sink(ip(23), tls_context=tls_server_context(base / "sink.pem")),
        "wild": Sink(ip(24)),
        "slow": Sink(ip(26), data_delay=0.4),
        "blocky": Sink(ip(27), rcpt_reply=lambda r: "421 4.7.0 [TS03] all messages from you are blocked"),
        "skip1": Sink(ip(28), rcpt_reply=lambda r: "451 4.3.2 too many connections from your host"),
    }
    try:
        for sink in sinks.values():
            sink.controller.start()
        publish(bind, [
            ("mx.gmail", "A", ip(21)),
            ("gmail", "MX", "10 mx.gmail.example.test."),
            ("alt1.gmail-smtp-in", "A", ip(21)),
            ("googlemail", "MX", "10 alt1.gmail-smtp-in.example.test."),
            ("yahoo", "MX", "10 mta5.yahoo-in.example.test."),
            ("mta5.yahoo-in", "A", ip(22)),
            ("mx1.hotmail-in", "A", ip(23)),
            ("hotmail", "MX", "10 mx1.hotmail-in.example.test."),
            ("outlook", "MX", "10 mx1.hotmail-in.example.test."),
            ("outlook", "MX", "10 mx2.hotmail-in.example.test."),
            ("mx2.hotmail-in", "A", ip(23)),
            ("nohost", "MX", "10 mx.wild-in.example.test."),
            ("mx.wild-in", "A", ip(24)),
            ("single", "MX", "10 mx1.two-in.example.test."),
            ("single", "MX", "20 mx2.two-in.example.test."),
            ("mx1.two-in", "A", ip(23)),
            ("mx2.two-in", "A", ip(23)),
            ("rate", "MX", "10 mx.gmail.example.test."),
            ("coldd", "MX", "10 mx.gmail.example.test."),
            ("dead", "MX", "10 mx.dead-in.example.test."),
            ("mx.dead-in", "A", ip(25)),
            ("one", "MX", "10 mx.slow-in.example.test."),
            ("three", "MX", "10 mx.slow-in.example.test."),
            ("mx.slow-in", "A", ip(26)),
            ("blocky", "MX", "10 mx.blocky-in.example.test."),
            ("mx.blocky-in", "A", ip(27)),
            ("skippy", "MX", "10 mx1.skip-in.example.test."),
            ("skippy", "MX", "20 mx.gmail.example.test."),
            ("mx1.skip-in", "A", ip(28)),
        ])
        config = CONFIG.format(log="{log}", dns=bind.address, listen=ip(1), injector=ip(2), tx1=ip(10), tx2=ip(11),
                               warm=ip(12), cold=ip(13), gmail_mx=ip(21), slowv=ip(16))
        with running_double(base / "main", config, bind, {"speed": 60}) as double:
            yield dict(double, sinks=sinks, bind=bind, base=base)
    finally:
        for sink in sinks.values():
            try:
                sink.controller.stop()
            except (AssertionError, RuntimeError):
                pass
        bind.stop()


def send(recipients, headers="", body="hello\r\n", sender="app@example.com", source=None, each=False):
    """One message for ``recipients``, or (``each``) one message per recipient in one SMTP session."""
    with smtplib.SMTP(ip(1), 2525, source_address=(source or ip(2), 0), timeout=10) as smtp:
        for group in ([[r] for r in recipients] if each else [recipients]):
            smtp.sendmail(sender, group, headers + "Subject: t\r\n\r\n" + body)


def pmta(world, *args):
    return subprocess.run([sys.executable, "-c", "import sys; from pmta_test_double.cli import main; sys.exit(main())",
                           *args], env=world["env"], capture_output=True, text=True, timeout=60, check=False)


def delivered(world, rcpt):
    return [r for r in rows(world["log"], "acct.csv") if r["rcpt"] == rcpt and r["type"] == "d"]


def test_pool_round_robin_binds_each_vmta_source_ip_and_strips_x_virtual_mta(world):
    recipients = ["pool%d@gmail.example.test" % n for n in range(4)]
    for rcpt in recipients:
        send([rcpt], headers="X-Virtual-MTA: transactional\r\n")
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="4 deliveries")
    sink = world["sinks"]["gmail"]
    seen = {m["rcpts"][0]: m for m in sink.messages if m["rcpts"][0] in recipients}
    assert sorted(m["peer"] for m in seen.values()) == sorted([ip(10), ip(10), ip(11), ip(11)])
    for rcpt, message in seen.items():
        row = delivered(world, rcpt)[0]
        assert row["dlvSourceIp"] == message["peer"]
        assert row["vmta"] == {ip(10): "tx-01", ip(11): "tx-02"}[message["peer"]]
        assert message["helo"] == {ip(10): "mta10.example.test", ip(11): "mta11.example.test"}[message["peer"]]
        assert row["queue"] == "gmail.example.test/" + row["vmta"]
        assert row["vmtaPool"] == "transactional"
        assert row["dlvDestinationIp"] == ip(21)
        assert b"X-Virtual-MTA" not in message["data"]  # §3.3.7.48: removed
        assert message["tls"] is False  # the sink offers no STARTTLS


def test_max_msg_per_connection_from_a_macro_domain(world):
    recipients = ["batch%d@gmail.example.test" % n for n in range(6)]
    send(recipients, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="batch deliveries")
    sessions = {}
    for message in world["sinks"]["gmail"].messages:
        if message["rcpts"][0].startswith("batch"):
            sessions[message["session"]] = sessions.get(message["session"], 0) + 1
    assert sum(sessions.values()) == 6
    assert max(sessions.values()) <= 2  # <domain $googleish> max-msg-per-connection 2
    assert len(sessions) >= 3


def test_unknown_user_bounces_and_no_such_domain_bounces(world):
    wanted = {"nosuchuser@gmail.example.test", "nobody@no-such-domain.example.test"}
    send(sorted(wanted), headers="X-Virtual-MTA: tx-01\r\n")

    def bounces():
        found = {r["rcpt"]: r for r in rows(world["log"], "acct.csv") if r["type"] == "b" and r["rcpt"] in wanted}
        return found if len(found) == 2 else None

    by_rcpt = wait_for(bounces, what="2 bounces")
    assert by_rcpt["nosuchuser@gmail.example.test"]["bounceCat"] == "bad-mailbox"
    assert by_rcpt["nosuchuser@gmail.example.test"]["dsnStatus"].startswith("5.1.1")
    assert "550 5.1.1 user unknown" in by_rcpt["nosuchuser@gmail.example.test"]["dsnDiag"]
    assert by_rcpt["nobody@no-such-domain.example.test"]["bounceCat"] == "bad-domain"


def test_explicit_rollup_queues_two_domains_together(world):
    recipients = ["a@hotmail.example.test", "b@outlook.example.test", "c@hotmail.example.test"]
    send(recipients, headers="X-Virtual-MTA: tx-02\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="rollup deliveries")
    for rcpt in recipients:
        assert delivered(world, rcpt)[0]["queue"] == "hotmail.rollup/tx-02"
        assert delivered(world, rcpt)[0]["dlvDestinationIp"] == ip(23)
    # <domain hotmail.rollup> max-msg-per-connection 1 applies to the rolled-up domains: one session each.
    messages = [m for m in world["sinks"]["hotmail"].messages if m["rcpts"][0] in recipients]
    assert len({m["session"] for m in messages}) == 3
    # This sink offers STARTTLS and use-starttls defaults to yes: every session is encrypted.
    assert all(m["tls"] for m in messages)


def test_wildcard_rollup_by_ip_delivers_to_the_domains_own_hosts(world):
    send(["c@googlemail.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: delivered(world, "c@googlemail.example.test"), what="google.rollup delivery")[0]
    assert row["queue"] == "google.rollup/tx-02"
    assert row["dlvDestinationIp"] == ip(21)


def test_wildcard_rollup_without_smtp_hosts_has_no_route(world):
    send(["d@nohost.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: [r for r in rows(world["log"], "diag.csv") if r["type"] == "t"
                            and r["rcpt"] == "d@nohost.example.test"], what="t record")[0]
    assert row["queue"] == "wild.rollup/tx-02"
    assert "10.17" in row["dsnDiag"]
    assert [r for r in rows(world["log"], "diag.csv") if r["type"] == "tq" and r["queue"] == "wild.rollup/tx-02"]
    assert not world["sinks"]["wild"].messages  # never delivered


def test_smtp_hosts_routes_a_domain_without_dns(world):
    send(["e@routed.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    row = wait_for(lambda: delivered(world, "e@routed.example.test"), what="smtp-hosts delivery")[0]
    assert row["dlvDestinationIp"] == ip(21)


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


def test_cold_vmta_takes_the_first_messages_per_domain_per_day(world):
    recipients = ["cold%d@gmail.example.test" % n for n in range(4)]
    for rcpt in recipients:
        send([rcpt], headers="X-Virtual-MTA: warm-01\r\n")
    wait_for(lambda: all(delivered(world, r) for r in recipients), what="warm/cold deliveries")
    vmtas = [delivered(world, r)[0]["vmta"] for r in recipients]
    assert vmtas == ["cold-01", "cold-01", "warm-01", "warm-01"]
    peers = {m["rcpts"][0]: m["peer"] for m in world["sinks"]["gmail"].messages}
    assert [peers[r] for r in recipients] == [ip(13), ip(13), ip(12), ip(12)]


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
    # deliver-matched-email defaults to no: neither report is relayed anywhere.
    time.sleep(0.5)
    received = [r["rcpt"] for r in rows(world["log"], "received.csv")]
    assert "bounce+1@bounces.example.test" not in received and "fbl@fbl.example.test" not in received


def test_rollup_needs_every_configured_mx_in_dns(world):
    # §10.17 example 2: two.rollup lists mx1 and mx2, DNS's lowest preference has only mx1: no rollup.
    send(["g@single.example.test"], headers="X-Virtual-MTA: tx-01\r\n")
    row = wait_for(lambda: delivered(world, "g@single.example.test"), what="delivery")[0]
    assert row["queue"] == "single.example.test/tx-01"


NIGHT = """\
postmaster ops@example.com
host-name night.example.test
log-file {log}/log
name-server %(dns)s
smtp-listener %(listen)s:2525
http-mgmt-port 0
<source %(injector)s>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
<virtual-mta warm-01>
    smtp-source-host %(warm)s warm.example.test
    cold-virtual-mta cold-01
    <domain coldd.example.test>
        max-cold-virtual-mta-msg 1/d,2/day
    </domain>
</virtual-mta>
<virtual-mta cold-01>
    smtp-source-host %(cold)s cold.example.test
</virtual-mta>
<domain rate.example.test>
    max-msg-rate 2/d
</domain>
<domain dead.example.test>
    retry-after 1m
    bounce-after 3m
</domain>
<acct-file {log}/acct.csv>
    records d,b,t
</acct-file>
"""


@pytest.fixture(scope="module")
def night(world):
    """A second double whose test clock starts one minute before midnight and runs 30x (midnight in 2 s)."""
    config = NIGHT % {"dns": world["bind"].address, "listen": ip(3), "injector": ip(2), "warm": ip(14),
                      "cold": ip(15)}
    with running_double(world["base"] / "night", config, world["bind"],
                        {"start": "2026-11-29T23:59:00+00:00", "speed": 30}) as double:
        yield dict(double, started=time.monotonic())


def send_night(recipients, headers=""):
    with smtplib.SMTP(ip(3), 2525, source_address=(ip(2), 0), timeout=10) as smtp:
        for rcpt in recipients:
            smtp.sendmail("app@example.com", [rcpt], headers + "Subject: t\r\n\r\nbody\r\n")


def test_per_day_rate_cold_ramp_and_bounce_after_follow_the_test_clock(night):
    log = night["log"]
    rate = ["r%d@rate.example.test" % n for n in range(5)]
    cold_before = ["c%d@coldd.example.test" % n for n in range(3)]
    send_night(rate)
    send_night(cold_before, headers="X-Virtual-MTA: warm-01\r\n")
    send_night(["x@dead.example.test"])
    assert time.monotonic() - night["started"] < 1.5, "too slow to test before the test clock's midnight"

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


def test_max_smtp_out_caps_parallel_connections_per_queue(world):
    slow = world["sinks"]["slow"]
    three = ["t%d@three.example.test" % n for n in range(4)]
    send(three, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in three), what="three.example.test deliveries")
    assert slow.most_concurrent >= 2  # max-smtp-out 3: the sink saw parallel sessions
    slow.most_concurrent = 0
    one = ["o%d@one.example.test" % n for n in range(4)]
    send(one, headers="X-Virtual-MTA: tx-01\r\n", each=True)
    wait_for(lambda: all(delivered(world, r) for r in one), what="one.example.test deliveries")
    assert slow.most_concurrent == 1  # max-smtp-out 1


def test_vmta_max_smtp_msg_rate_spans_its_queues(world):
    recipients = ["v1@gmail.example.test", "v2@rate.example.test", "v3@gmail.example.test", "v4@rate.example.test"]
    send(recipients, headers="X-Virtual-MTA: slowv\r\n", each=True)
    wait_for(lambda: sum(bool(delivered(world, r)) for r in recipients) == 2, what="2 deliveries")
    time.sleep(1.0)  # 1 minute of test time: max-smtp-msg-rate 2/h holds the other two
    assert sum(bool(delivered(world, r)) for r in recipients) == 2
    assert {delivered(world, r)[0]["dlvSourceIp"] for r in recipients if delivered(world, r)} == {ip(16)}


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


def test_skip_mx_moves_to_the_next_mx(world):
    send(["s@skippy.example.test"], headers="X-Virtual-MTA: tx-02\r\n")
    row = wait_for(lambda: delivered(world, "s@skippy.example.test"), what="delivery via the second MX")[0]
    assert row["dlvDestinationIp"] == ip(21)
    assert world["sinks"]["skip1"].sessions  # the first MX was tried
    assert not [r for r in rows(world["log"], "diag.csv") if r["rcpt"] == "s@skippy.example.test"]
