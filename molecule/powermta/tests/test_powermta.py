"""The powermta role on a bench host (PowerMTA TEST DOUBLE, or the real package when POWERMTA_PACKAGE is set).

The last tests run ansible-playbook against Molecule's inventory to exercise the failure paths: a broken
inventory value, a config the linter passes but the daemon refuses, and --check --diff.
"""

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import time
import uuid

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
REAL_PACKAGE = bool(os.environ.get("POWERMTA_PACKAGE"))
INJECTOR_USER = "mumara"
INJECTOR_PASSWORD = "Test-Only-Mumara-2026"  # molecule/powermta/vars/fleet.yml
INJECTOR_SOURCE = "198.51.100.20"  # the injector's network, an extra address of the host
LISTENER = "203.0.113.10"
ACCT = "/var/log/pmta/acct.csv"
DIAG = "/var/log/pmta/diag.csv"
CONFIG_FILES = [
    "/etc/pmta/config",
    "/etc/pmta/conf.d/startup.conf",
    "/etc/pmta/conf.d/sources.conf",
    "/etc/pmta/conf.d/users.conf",
    "/etc/pmta/conf.d/isp-policies.conf",
    "/etc/pmta/conf.d/vmtas.conf",
    "/etc/pmta/conf.d/acct.conf",
    "/etc/pmta/conf.d/local.conf",
]

INJECT = r"""
import json, smtplib, ssl, sys
args = json.loads(sys.argv[1])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the role's self-signed certificate
result = {}
try:
    smtp = smtplib.SMTP(args["host"], args["port"], source_address=(args["source"], 0), timeout=20)
    smtp.ehlo("injector.example.com")
    if args.get("starttls"):
        smtp.starttls(context=context)
        smtp.ehlo("injector.example.com")
    result["auth_offered"] = smtp.has_extn("auth")
    if args.get("user"):
        smtp.login(args["user"], args["password"])
    headers = "".join("%s: %s\r\n" % item for item in args.get("headers", {}).items())
    message = headers + "From: news@example.com\r\nSubject: bench\r\n\r\nbody\r\n"
    refused = smtp.sendmail("news@example.com", args["rcpt"], message)
    result["refused"] = {k: list(v) for k, v in refused.items()}
    smtp.quit()
    result["ok"] = True
except smtplib.SMTPException as exc:
    result["ok"] = False
    result["error"] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(result))
"""


def inject(host, **args):
    args.setdefault("host", LISTENER)
    args.setdefault("port", 587)
    args.setdefault("source", INJECTOR_SOURCE)
    command = "python3 -c %s %s" % (shlex.quote(INJECT), shlex.quote(json.dumps(args)))
    result = host.run(command)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def acct_rows(host, path=ACCT):
    with host.sudo():
        if not host.file(path).exists:
            return []
        text = host.file(path).content_string
    return list(csv.DictReader(io.StringIO(text)))


def first_attempt_rows(host, rcpt, timeout=90):
    """The accounting rows of ``rcpt``: the test double delivers for real (MX lookup, SMTP from the vMTA's IP);
    this isolated host reaches no MX, so the first attempt is a t record in diag.csv (a d record where an MX
    answers)."""
    deadline = time.monotonic() + timeout
    rows = []
    while not rows and time.monotonic() < deadline:
        rows = [row for row in acct_rows(host) + acct_rows(host, DIAG) if row.get("rcpt") == rcpt]
        if not rows:
            time.sleep(2)
    return rows


def config_checksums(host):
    with host.sudo():
        out = host.check_output("find /etc/pmta -type f | sort | xargs sha256sum")
    return out


def playbook(*args, timeout=900):
    command = [
        ANSIBLE_PLAYBOOK,
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(SCENARIO, "converge.yml"),
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
                          check=False)


# ---------------------------------------------------------------- services, files, modes
@pytest.mark.parametrize("service", ["pmta", "pmtahttp"])
def test_services_running_and_enabled(host, service):
    unit = host.service(service)
    assert unit.is_running
    assert unit.is_enabled


def test_license_is_0640_root_pmta(host):
    with host.sudo():
        license_file = host.file("/etc/pmta/license")
        assert license_file.is_file
        assert license_file.mode == 0o640
        assert (license_file.user, license_file.group) == ("root", "pmta")


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_config_files_modes(host, path):
    with host.sudo():
        config_file = host.file(path)
        assert config_file.is_file
        assert config_file.mode == 0o640
        assert (config_file.user, config_file.group) == ("root", "pmta")


def test_secrets_modes(host):
    with host.sudo():
        key = host.file("/etc/pmta/dkim/example.com/s2026a.pem")
        assert key.mode == 0o600 and (key.user, key.group) == ("pmta", "pmta")
        assert "PRIVATE KEY" in key.content_string
        pem = host.file("/etc/pmta/tls/listener.pem")
        assert pem.mode == 0o640 and (pem.user, pem.group) == ("root", "pmta")
        for directory in ("/etc/pmta", "/etc/pmta/conf.d", "/etc/pmta/dkim"):
            assert host.file(directory).mode == 0o750
        for directory in ("/var/spool/pmta", "/var/log/pmta"):
            entry = host.file(directory)
            assert (entry.user, entry.group, entry.mode) == ("pmta", "pmta", 0o750)


def test_no_backup_files_left(host):
    with host.sudo():
        leftovers = host.check_output("find /etc/pmta -name '*~' -o -name '*.orig'")
    assert leftovers == ""


def test_config_carries_the_fleet_model(host):
    with host.sudo():
        vmtas = host.file("/etc/pmta/conf.d/vmtas.conf").content_string
        policies = host.file("/etc/pmta/conf.d/isp-policies.conf").content_string
        config = host.file("/etc/pmta/config").content_string
        startup = host.file("/etc/pmta/conf.d/startup.conf").content_string
    assert "smtp-source-host 203.0.113.11 mta11.example.com" in vmtas
    assert "include /etc/pmta/conf.d/warmup.d/mk-eu-01.conf" in vmtas
    # A warm member of a pool with a warming one sponsors it (cold-virtual-mta, §10.7), so it has a warm-up
    # include too, and the warming vMTA leaves the round-robin pool (§3.3.13: a pool ignores members' limits).
    assert "include /etc/pmta/conf.d/warmup.d/mk-eu-02.conf" in vmtas
    assert "<virtual-mta-pool marketing-eu>\n    virtual-mta mk-eu-02\n</virtual-mta-pool>" in vmtas
    for group in ("gmail", "yahoo", "microsoft", "apple", "comcast"):
        assert "domain-macro %s " % group in policies
        assert "<domain $%s>" % group in policies
        assert "<smtp-pattern-list %s-replies>" % group in policies
    assert "domain-key s2026a,example.com,/etc/pmta/dkim/example.com/s2026a.pem" in config
    assert "dkim-sign yes" in policies
    assert "run-as-root no" in startup
    assert "http-access 127.0.0.1 monitor" in config


def test_pmta_test_config_accepts_the_installed_config(host):
    with host.sudo():
        result = host.run("pmta test config")
    assert result.rc == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- SMTP and accounting
def test_auth_is_offered_only_after_starttls(host):
    plain = inject(host, rcpt=["x@example.net"], headers={})
    assert plain["ok"] is False
    assert plain["auth_offered"] is False


def test_relaying_needs_auth_from_the_injector_network(host):
    result = inject(host, starttls=True, rcpt=["nobody@gmail.com"])
    assert result["ok"] is False
    assert "530" in result["error"] or "550" in result["error"], result


def test_wrong_password_is_refused(host):
    result = inject(host, starttls=True, user=INJECTOR_USER, password="wrong-password-123", rcpt=["a@gmail.com"])
    assert result["ok"] is False
    assert "535" in result["error"], result


@pytest.mark.parametrize(
    "requested, expected_vmtas, expected_pool",
    [
        ("mk-eu-02", {"mk-eu-02"}, "marketing-eu"),
        ("transactional", {"tx-01"}, "transactional"),
    ],
)
def test_injected_message_reaches_accounting_with_its_vmta(host, requested, expected_vmtas, expected_pool):
    rcpt = "rcpt-%s@gmail.com" % uuid.uuid4().hex[:12]
    result = inject(
        host,
        starttls=True,
        user=INJECTOR_USER,
        password=INJECTOR_PASSWORD,
        rcpt=[rcpt],
        headers={"X-Virtual-MTA": requested},
    )
    assert result["ok"], result
    rows = first_attempt_rows(host, rcpt)
    assert rows, "no accounting record for %s" % rcpt
    row = rows[0]
    assert row["type"] in ("d", "t"), row
    assert all(r["vmta"] == row["vmta"] for r in rows), rows
    assert row["vmta"] in expected_vmtas
    assert row["vmtaPool"] == expected_pool
    assert row["orig"] == "news@example.com"
    with host.sudo():
        path = ACCT if row["type"] == "d" else DIAG
        header = host.file(path).content_string.splitlines()[0]
    assert header.startswith("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus")


def test_accounting_files_are_not_world_readable(host):
    with host.sudo():
        written = [host.file(path) for path in (ACCT, DIAG) if host.file(path).exists]
        assert written, "no accounting file written yet"
        for entry in written:
            assert entry.user == "pmta"
            assert entry.mode & 0o007 == 0


# ---------------------------------------------------------------- web monitor
def test_status_json_from_loopback(host):
    out = host.check_output("curl -fsS 'http://127.0.0.1:8080/status?format=json'")
    document = json.loads(out)
    assert "mta" in document["data"]
    assert "traffic" in document["data"]["status"]
    assert "queue" in document["data"]["status"]


def test_status_refused_from_other_addresses(host):
    code = host.check_output("curl -s -o /dev/null -w '%%{http_code}' 'http://%s:8080/status?format=json'" % LISTENER)
    assert code in ("403", "401"), code


# ---------------------------------------------------------------- facts
def test_exported_facts():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "facts-pmta-n1.json")) as handle:
        facts = json.load(handle)
    keys = facts["powermta_dkim_public_keys"]
    assert [(k["domain"], k["selector"], k["bits"]) for k in keys] == [("example.com", "s2026a", 2048)]
    assert keys[0]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    # The merged vMTA list is the fleet model's (mailops.powermta.fleet_model), no longer a fact of the role.
    assert "powermta_effective_vmtas" not in facts


def test_dkim_fact_matches_the_key_on_the_host(host):
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "facts-pmta-n1.json")) as handle:
        fact_pem = json.load(handle)["powermta_dkim_public_keys"][0]["public_key_pem"]
    with host.sudo():
        host_pem = host.check_output("openssl rsa -in /etc/pmta/dkim/example.com/s2026a.pem -pubout 2>/dev/null")
    assert host_pem.strip() == fact_pem.strip()


# ---------------------------------------------------------------- failure paths (ansible-playbook)
@pytest.mark.parametrize(
    "override, expected",
    [
        # Caught by the linter on the controller.
        (
            {"powermta_host_vmtas": [{"name": "mk-eu-02", "max_smtp_msg_rate": "500/fortnight"}]},
            ["max-smtp-msg-rate", "nothing was changed on the host"],
        ),
        # Caught by the preflight, all problems reported in one run.
        (
            {"powermta_host_vmtas": [
                {"name": "tx-02", "ip": "192.0.2.99", "hostname": "mta99.example.com", "pool": "transactional"},
                {"name": "tx-03", "ip": "203.0.113.10", "hostname": "mta98.example.com", "pool": "transactional"},
                {"name": "mk-eu-02", "pool": "marketing-us"},
            ]},
            ["tx-02: IP 192.0.2.99 is not configured on pmta-n1",
             "tx-03: several vMTAs use the same IP 203.0.113.10",
             "mk-eu-02: unknown pool marketing-us"],
        ),
        # No package and no license: the role never downloads PowerMTA.
        (
            {"powermta_package_src": "", "powermta_license": "", "powermta_license_src": ""},
            ["this role never downloads it", "Set exactly one of powermta_package_src"],
        ),
        # Injectors with SMTP AUTH but no STARTTLS listener: passwords would travel in clear.
        (
            {"powermta_listeners": [{"name": "0/0:25", "starttls": False}, {"name": "0/0:587", "starttls": False}]},
            ["passwords would cross the network in clear", "powermta_allow_unencrypted_auth"],
        ),
    ],
    ids=["invalid-rate", "ip-not-on-host+duplicate-ip+unknown-pool", "no-package-no-license", "auth-without-starttls"],
)
def test_broken_inventory_fails_before_the_host_changes(host, override, expected):
    before = config_checksums(host)
    result = playbook("-e", json.dumps(override))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    flat = " ".join(output.split())  # Ansible wraps long messages
    for text in expected:
        assert text in flat, output[-3000:]
    assert config_checksums(host) == before


@pytest.mark.skipif(REAL_PACKAGE, reason="needs the test double's refusal hook (/etc/pmta/TEST-DOUBLE-refuse)")
def test_config_refused_by_the_daemon_is_rolled_back(host):
    warmup_include = "/etc/pmta/conf.d/warmup.d/mk-eu-01.conf"
    with host.sudo():
        original_warmup = host.file(warmup_include).content_string
        # What the warmup role would write: the powermta role must never overwrite it.
        host.run_expect([0], "printf '# written by the warmup role\\n' >> %s" % warmup_include)
    before = config_checksums(host)
    with host.sudo():
        host.run_expect([0], "echo refuse.example.com > /etc/pmta/TEST-DOUBLE-refuse")
    try:
        result = playbook("-e", json.dumps({"powermta_postmaster": "ops@refuse.example.com"}))
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert "refused the new configuration" in output, output[-3000:]
        assert "refused by test hook" in output, output[-3000:]
    finally:
        with host.sudo():
            host.run("rm -f /etc/pmta/TEST-DOUBLE-refuse")
    # The previous files are back (the warm-up include untouched), no backup is left, and the old
    # config is still serving.
    assert config_checksums(host) == before
    with host.sudo():
        assert host.file(warmup_include).content_string.endswith("# written by the warmup role\n")
        host.run_expect([0], "printf %s > %s" % (shlex.quote(original_warmup), warmup_include))
    test_no_backup_files_left(host)
    with host.sudo():
        assert "postmaster postmaster@example.com" in host.file("/etc/pmta/config").content_string
        assert host.run("pmta test config").rc == 0
    assert host.service("pmta").is_running
    rcpt = "after-rollback-%s@yahoo.com" % uuid.uuid4().hex[:8]
    sent = inject(host, starttls=True, user=INJECTOR_USER, password=INJECTOR_PASSWORD, rcpt=[rcpt],
                  headers={"X-Virtual-MTA": "tx-01"})
    assert sent["ok"], sent
    assert {row["vmta"] for row in first_attempt_rows(host, rcpt)} == {"tx-01"}


def test_check_diff_shows_the_change_and_changes_nothing(host):
    before = config_checksums(host)
    result = playbook("--check", "--diff", "-e", json.dumps({"powermta_postmaster": "ops@example.org"}))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "-postmaster postmaster@example.com" in output, output[-3000:]
    assert "+postmaster ops@example.org" in output, output[-3000:]
    assert INJECTOR_PASSWORD not in output
    assert config_checksums(host) == before
