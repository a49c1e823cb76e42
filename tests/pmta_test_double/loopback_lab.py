"""Loopback lab for the TEST DOUBLE's delivery tests: real BIND 9, aiosmtpd sinks, pmtad from the source tree.

Everything binds 127.x addresses (a random /16 per run). The sinks listen on port 25, as MX delivery goes to
port 25, so the tests need root. `name-server` takes an IP only (§3.3.1.26): BIND runs on a free high port of
127.0.0.1 and the TEST-DOUBLE-name-server-port hook tells the double which port.
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
        self.session_start = {}  # session id -> time of its first RCPT
        self.rcpt_sessions = {}  # recipient -> session id
        extra = {"tls_context": tls_context} if tls_context else {}
        self.controller = Controller(self, hostname=address, port=25, **extra)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.sessions.add(id(session))
        self.session_start.setdefault(id(session), time.monotonic())
        self.rcpt_sessions[address] = id(session)
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
    <domain rerouted.example.test>
        reroute-to-virtual-mta tx-01
    </domain>
</virtual-mta>
<virtual-mta slowv>
    smtp-source-host {slowv} slowv.example.test
    max-smtp-msg-rate 2/h
</virtual-mta>
<virtual-mta cap-1>
    smtp-source-host {cap1} cap1.example.test
</virtual-mta>
<virtual-mta cap-2>
    smtp-source-host {cap2} cap2.example.test
</virtual-mta>
<virtual-mta-pool capped>
    virtual-mta cap-1
    virtual-mta cap-2
    max-smtp-msg-rate 1/h
</virtual-mta-pool>
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
<domain errs.example.test>
    max-connect-rate 1/m
    max-errors-per-connection 2
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
<domain [*.]grouped.example.test>
    queue-to route.queue
</domain>
<domain route.queue>
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
        directory.mkdir(parents=True, exist_ok=True)  # a restart reuses them (test_spool.py)
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


@contextlib.contextmanager
def build_world(base):
    """BIND 9 with the test MX records, the sinks and the main double; yields the dict the tests use."""
    bind = Bind9Server(base / "bind")
    bind.start()
    sinks = {
        "gmail": Sink(ip(21), rcpt_reply=lambda r: "550 5.1.1 user unknown" if r.startswith("nosuchuser") else None),
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
            ("rerouted", "MX", "10 mx.gmail.example.test."),
            ("dead", "MX", "10 mx.dead-in.example.test."),
            ("mx.dead-in", "A", ip(25)),
            ("errs", "MX", "10 mx.gmail.example.test."),
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
                               warm=ip(12), cold=ip(13), gmail_mx=ip(21), slowv=ip(16), cap1=ip(17),
                               cap2=ip(18))
        with running_double(base / "main", config, bind, {"speed": 60}) as double:
            yield dict(double, sinks=sinks, bind=bind, base=base)
    finally:
        for sink in sinks.values():
            try:
                sink.controller.stop()
            except (AssertionError, RuntimeError):
                pass
        bind.stop()


def send(recipients, headers="", body="hello\r\n", sender="app@example.com", source=None, each=False, listener=1):
    """One message for ``recipients``, or (``each``) one message per recipient in one SMTP session, to the double
    listening on ip(LISTENER)."""
    with smtplib.SMTP(ip(listener), 2525, source_address=(source or ip(2), 0), timeout=10) as smtp:
        for group in ([[r] for r in recipients] if each else [recipients]):
            smtp.sendmail(sender, group, headers + "Subject: t\r\n\r\n" + body)


def arrived(sink, recipients):
    """Recipient -> times it reached the sink."""
    counts = dict.fromkeys(recipients, 0)
    for message in sink.messages:
        for rcpt in message["rcpts"]:
            if rcpt in counts:
                counts[rcpt] += 1
    return counts


def pmta(world, *args):
    return subprocess.run([sys.executable, "-c", "import sys; from pmta_test_double.cli import main; sys.exit(main())",
                           *args], env=world["env"], capture_output=True, text=True, timeout=60, check=False)


def delivered(world, rcpt):
    return [r for r in rows(world["log"], "acct.csv") if r["rcpt"] == rcpt and r["type"] == "d"]


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


def send_night(recipients, headers=""):
    with smtplib.SMTP(ip(3), 2525, source_address=(ip(2), 0), timeout=10) as smtp:
        for rcpt in recipients:
            smtp.sendmail("app@example.com", [rcpt], headers + "Subject: t\r\n\r\nbody\r\n")


def world_fixture(tmp_path_factory):
    """For a module-scoped ``world`` fixture: the lab with the main double (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("binds port 25 on loopback: needs root")
    with build_world(tmp_path_factory.mktemp("world")) as lab:
        yield lab


def night_fixture(world):
    """A second double whose test clock starts 90 s before midnight and runs 30x (midnight in 3 s)."""
    config = NIGHT % {"dns": world["bind"].address, "listen": ip(3), "injector": ip(2), "warm": ip(14),
                      "cold": ip(15)}
    with running_double(world["base"] / "night", config, world["bind"],
                        {"start": "2026-11-29T23:58:30+00:00", "speed": 30}) as double:
        yield dict(double, started=time.monotonic())
