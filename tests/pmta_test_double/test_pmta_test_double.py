"""The PowerMTA TEST DOUBLE as plain processes on loopback (no bench host needed).

Run: .venv/bin/pytest tests/pmta_test_double/test_pmta_test_double.py
It starts pmtad and pmtahttpd from the source tree with a config in a temp dir, then talks SMTP and HTTP
to them over 127.0.0.x only. The bench scenario molecule/powermta runs the built package under systemd.
"""

import base64
import csv
import datetime
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHONPATH = os.pathsep.join([HERE, os.path.join(REPO, "plugins", "module_utils")])


def free_ports(count):
    """COUNT different free ports: the sockets stay bound until all are picked (one at a time, the OS may give the
    same port twice, and the double's listeners would then collide)."""
    sockets = [socket.socket() for _number in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port():
    return free_ports(1)[0]


def make_certificate(path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pmta.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
        handle.write(cert.public_bytes(serialization.Encoding.PEM))


CONFIG = """\
postmaster ops@example.com
host-name pmta.example.com
log-file {log}/log
run-as-root yes
smtp-listener 127.0.0.1:{smtp}
<smtp-listener 127.0.0.1:{submission}>
    tls-certificate {etc}/listener.pem
</smtp-listener>
http-mgmt-port {http}
http-access 127.0.0.1 monitor
http-redirect-to-https no
<source 0/0>
    smtp-service yes
    always-allow-relaying no
</source>
<source 127.0.0.1>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
<source 127.0.0.2>
    require-auth yes
    process-x-virtual-mta yes
    allow-starttls yes
</source>
<source {{auth}}>
    always-allow-relaying yes
    process-x-virtual-mta yes
</source>
<smtp-user mumara>
    password Test-Only-Password-1
    source {{auth}}
</smtp-user>
<virtual-mta tx-01>
    smtp-source-host 203.0.113.10 mta10.example.com
</virtual-mta>
<virtual-mta tx-02>
    smtp-source-host 203.0.113.11 mta11.example.com
</virtual-mta>
<virtual-mta-pool transactional>
    virtual-mta tx-01
    virtual-mta tx-02
</virtual-mta-pool>
<acct-file {log}/acct.csv>
    records d,b
</acct-file>
<acct-file {log}/received.csv>
    records r
</acct-file>
name-server 127.0.0.1
relay-domain relay.example.test
<domain *>
    retry-after 1d
</domain>
<spool {log}/spool>
</spool>
"""


@pytest.fixture(scope="module")
def double(tmp_path_factory):
    base = tmp_path_factory.mktemp("pmta")
    etc, run, log = base / "etc", base / "run", base / "log"
    for directory in (etc, run, log):
        directory.mkdir()
    ports = dict(zip(("smtp", "submission", "http"), free_ports(3), strict=True))
    (etc / "config").write_text(CONFIG.format(etc=etc, log=log, **ports))
    (etc / "license").write_text("# TEST DOUBLE license\n")
    make_certificate(etc / "listener.pem")
    env = dict(os.environ, PYTHONPATH=PYTHONPATH, PMTA_TD_ETC=str(etc), PMTA_TD_RUN=str(run),
               PMTA_TD_CONTROL=str(run / "pmtad.sock"), PMTA_TD_STARTUPERR=str(log / "startuperr"))
    daemon = subprocess.Popen([sys.executable, "-c", "from pmta_test_double.daemon import main; main()"], env=env)
    deadline = time.time() + 20
    while not (run / "pmtad.sock").exists():
        assert daemon.poll() is None, "pmtad exited with %s" % daemon.returncode
        assert time.time() < deadline, "pmtad did not start"
        time.sleep(0.1)
    httpd = subprocess.Popen([sys.executable, "-c", "from pmta_test_double.httpd import main; main()"], env=env)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", ports["http"]), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "pmtahttpd did not start"
            time.sleep(0.1)
    yield {"etc": etc, "log": log, "env": env, **ports}
    for process in (httpd, daemon):
        process.terminate()
        process.wait(timeout=10)


def pmta(double, *args):
    return subprocess.run([sys.executable, "-c", "import sys; from pmta_test_double.cli import main; sys.exit(main())",
                           *args], env=double["env"], capture_output=True, text=True, timeout=60, check=False)


def acct(double, name="received.csv"):
    with open(double["log"] / name, newline="") as handle:
        return list(csv.DictReader(handle))


def tls_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_test_config_accepts_the_config(double):
    result = pmta(double, "test", "config")
    assert result.returncode == 0, result.stdout + result.stderr


def test_loopback_relays_and_x_virtual_mta_picks_pool_members_round_robin(double):
    with smtplib.SMTP("127.0.0.1", double["smtp"], timeout=10) as smtp:
        for number in range(4):
            smtp.sendmail("app@example.com", ["rr%d@gmail.com" % number],
                          "X-Virtual-MTA: transactional\r\nSubject: t\r\n\r\nbody\r\n")
    rows = {row["rcpt"]: row for row in acct(double)}
    vmtas = [rows["rr%d@gmail.com" % n]["vmta"] for n in range(4)]
    assert sorted(vmtas) == ["tx-01", "tx-01", "tx-02", "tx-02"]
    assert all(rows["rr%d@gmail.com" % n]["vmtaPool"] == "transactional" for n in range(4))
    queues = json.loads(pmta(double, "--json", "show", "queues").stdout)["data"]["queues"]
    assert {"gmail.com/tx-01", "gmail.com/tx-02"} <= {q["name"] for q in queues}


def test_header_row_uses_powermta_field_names(double):
    # 127.0.0.1 answers no DNS here: the queue stays deferred, so write the d/b header through the writer.
    from pmta_test_double import acct as acct_writer

    path = double["log"] / "header-check.csv"
    acct_writer.write([(str(path), {"d", "b"})], "d", [{"rcpt": "x@example.com"}])
    with open(path) as handle:
        header = handle.readline().strip()
    assert header == ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,"
                      "srcType,srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,"
                      "envId,queue,vmtaPool")
    with open(double["log"] / "received.csv") as handle:
        assert handle.readline().strip() == ("type,timeLogged,orig,rcpt,orcpt,srcType,srcMta,rcvSourceIp,"
                                             "rcvDestinationIp,vmta,vmtaPool,jobId,envId")


def test_unknown_virtual_mta_is_rejected(double):
    with smtplib.SMTP("127.0.0.1", double["smtp"], timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as error:
            smtp.sendmail("app@example.com", ["x@gmail.com"], "X-Virtual-MTA: nope\r\n\r\nbody\r\n")
    assert error.value.smtp_code == 550


def test_other_sources_may_not_relay(double):
    with smtplib.SMTP("127.0.0.1", double["smtp"], source_address=("127.0.0.3", 0), timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("app@example.com", ["x@gmail.com"], "Subject: t\r\n\r\nbody\r\n")


def test_no_starttls_without_allow_starttls(double):
    # §3.3.7.12: allow-starttls defaults to false; the listener's certificate alone offers nothing.
    with smtplib.SMTP("127.0.0.1", double["submission"], timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        code, _reply = smtp.docmd("STARTTLS")
        assert code == 454


def test_relay_domain_is_accepted_from_any_source(double):
    # §3.3.1.32: relay-domain lets sources that may not relay hand in mail for that domain.
    with smtplib.SMTP("127.0.0.1", double["smtp"], source_address=("127.0.0.3", 0), timeout=10) as smtp:
        smtp.sendmail("remote@example.net", ["ops@relay.example.test"], "Subject: t\r\n\r\nbody\r\n")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("remote@example.net", ["x@example.net"], "Subject: t\r\n\r\nbody\r\n")
    assert [row["rcvSourceIp"] for row in acct(double) if row["rcpt"] == "ops@relay.example.test"] == ["127.0.0.3"]


def test_require_auth_and_auth_only_after_starttls(double):
    with smtplib.SMTP("127.0.0.1", double["submission"], source_address=("127.0.0.2", 0), timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")
        assert smtp.has_extn("starttls")
        with pytest.raises(smtplib.SMTPSenderRefused) as error:
            smtp.sendmail("app@example.com", ["x@gmail.com"], "Subject: t\r\n\r\nbody\r\n")
        assert error.value.smtp_code == 530


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_over_starttls_with_x_virtual_mta(double, mechanism):
    rcpt = "auth-%s@yahoo.com" % mechanism.lower()
    with smtplib.SMTP("127.0.0.1", double["submission"], source_address=("127.0.0.2", 0), timeout=10) as smtp:
        smtp.starttls(context=tls_context())
        smtp.ehlo()
        if mechanism == "PLAIN":
            token = base64.b64encode(b"\0mumara\0Test-Only-Password-1").decode()
            code, _reply = smtp.docmd("AUTH", "PLAIN " + token)
        else:
            smtp.docmd("AUTH", "LOGIN")
            smtp.docmd(base64.b64encode(b"mumara").decode())
            code, _reply = smtp.docmd(base64.b64encode(b"Test-Only-Password-1").decode())
        assert code == 235
        smtp.sendmail("app@example.com", [rcpt], "X-Virtual-MTA: tx-02\r\nSubject: t\r\n\r\nbody\r\n")
    assert [row["vmta"] for row in acct(double) if row["rcpt"] == rcpt] == ["tx-02"]


def test_wrong_password_is_refused(double):
    with smtplib.SMTP("127.0.0.1", double["submission"], source_address=("127.0.0.2", 0), timeout=10) as smtp:
        smtp.starttls(context=tls_context())
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("mumara", "wrong")


def test_status_json_and_http_access(double):
    url = "http://127.0.0.1:%d/status?format=json" % double["http"]
    with urllib.request.urlopen(url, timeout=10) as response:
        document = json.load(response)
    assert document["data"]["status"]["traffic"]["total"]["in"]["rcp"] >= 4
    assert document["data"]["mta"]["testDouble"] is True
    # From another address of the host: no http-access entry grants it.
    with socket.create_connection(("127.0.0.1", double["http"]), source_address=("127.0.0.2", 0)) as sock:
        sock.sendall(b"GET /status?format=json HTTP/1.0\r\n\r\n")
        reply = sock.recv(200).decode()
    assert reply.split()[1] == "403"


def test_queue_hook_fakes_a_deep_queue(double):
    hook = double["etc"] / "TEST-DOUBLE-queue.json"
    hook.write_text(json.dumps({"smtp": {"rcp": 250000, "dom": 12, "kb": 9000},
                                "queues": [{"name": "gmail.com/tx-01", "rcp": 200000, "mode": "backoff"},
                                           {"name": "yahoo.com/tx-02", "rcp": 50000, "mode": "normal"}]}))
    try:
        status = json.loads(pmta(double, "--json", "show", "status").stdout)
        assert status["data"]["status"]["queue"]["smtp"]["rcp"] == 250000
        backoff = json.loads(pmta(double, "--json", "show", "queues", "--mode=backoff").stdout)
        assert [q["name"] for q in backoff["data"]["queues"]] == ["gmail.com/tx-01"]
    finally:
        hook.unlink()


def test_reload_keeps_the_running_config_on_errors(double):
    config = double["etc"] / "config"
    good = config.read_text()
    try:
        config.write_text(good + "throttle 10/h\n")
        result = pmta(double, "reload")
        assert result.returncode == 1
        assert "rror in line" in result.stdout and "unknown directive throttle" in result.stdout
        assert pmta(double, "test", "config").returncode == 1
        # Still serving with the old config.
        with smtplib.SMTP("127.0.0.1", double["smtp"], timeout=10) as smtp:
            smtp.sendmail("app@example.com", ["still@gmail.com"], "X-Virtual-MTA: tx-01\r\n\r\nbody\r\n")
    finally:
        config.write_text(good)
    assert pmta(double, "reload").returncode == 0


def test_refuse_hook_simulates_a_daemon_only_refusal(double):
    hook = double["etc"] / "TEST-DOUBLE-refuse"
    hook.write_text("ops@example.com\n")
    try:
        for command in (("test", "config"), ("reload",)):
            result = pmta(double, *command)
            assert result.returncode == 1
            assert "Error in line 1 of" in result.stdout
            assert "refused by test hook" in result.stdout
    finally:
        hook.unlink()
    assert pmta(double, "test", "config").returncode == 0


def test_listener_changes_wait_for_a_restart(double):
    config = double["etc"] / "config"
    good = config.read_text()
    try:
        config.write_text(good.replace("127.0.0.1:%d\n" % double["smtp"], "127.0.0.1:%d\n" % free_port(), 1))
        result = pmta(double, "reload")
        assert result.returncode == 0
        assert "restart PowerMTA for changes to: smtp-listener" in result.stdout
        socket.create_connection(("127.0.0.1", double["smtp"]), timeout=5).close()
    finally:
        config.write_text(good)
        pmta(double, "reload")


def test_unimplemented_commands_fail_loudly(double):
    # (delete is implemented since issue 24; trace, §6.3.21, is not)
    result = pmta(double, "trace", "gmail.com/tx-01")
    assert result.returncode == 2
    assert "not implemented by the test double" in result.stderr


def test_startup_refused_without_license(double, tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config").write_text("postmaster ops@example.com\nlog-file %s/log\nrun-as-root no\n" % tmp_path)
    env = dict(double["env"], PMTA_TD_ETC=str(etc), PMTA_TD_RUN=str(tmp_path),
               PMTA_TD_STARTUPERR=str(tmp_path / "startuperr"))
    code = "import sys; from pmta_test_double.daemon import main; sys.exit(main(['--config', '%s/config']))" % etc
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 1
    assert "license file" in result.stderr
    assert "license file" in (tmp_path / "startuperr").read_text()


def test_web_monitor_on_a_port_taken_by_a_listener_does_not_start(double):
    # §3.3.1.36.1: another program may hold http-mgmt-port; here pmtad's own SMTP listener does. pmtahttpd
    # must fail (and say so in pmtahttp.log, §3.3.1.36.3), not serve HTTP on some other socket.
    http_log = double["log"] / "pmtahttp.log"
    env = dict(double["env"], PMTA_TD_HTTP_LOG=str(http_log))
    launcher = "import sys; from pmta_test_double.httpd import main; sys.exit(main())"
    httpd = subprocess.run([sys.executable, "-c", launcher, "--port", str(double["smtp"])], env=env,
                           capture_output=True, text=True, timeout=30, check=False)
    assert httpd.returncode == 1, httpd.stderr
    assert "cannot listen on http-mgmt-port %d: Address already in use" % double["smtp"] in httpd.stderr
    assert "Address already in use" in http_log.read_text()
    with socket.create_connection(("127.0.0.1", double["smtp"]), timeout=10) as sock:
        assert sock.recv(200).startswith(b"220")  # the listener still holds its port
