"""Mail flows end to end: injector -> PowerMTA (test double) on two hosts -> ISP sinks, and back.

Each message is proven by the sink that received it (its peer address = the vMTA's IP) and by the
sending host's accounting; throttling, unknown users, complaints and late DSNs end up as t, b, f and rb
records; an outside source cannot relay."""

import fnmatch
import json
import shlex
import smtplib

import pytest
from helpers import (
    GROUPS,
    HOSTS,
    POOLS,
    ROOT,
    TESTBED,
    VMTAS,
    acct_rows,
    address,
    in_sink_netns,
    inject,
    playbook,
    set_policy,
    sink_counts,
    sink_messages,
    ssh,
    unique,
    wait_for,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---------------------------------------------------------------- DNS and routes to the ISPs
@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_hosts_resolve_the_isp_mx_and_reach_the_sink(name, group):
    isp = GROUPS[group]
    script = (
        "import dns.resolver, socket; d=%r; "
        "mx=sorted(dns.resolver.resolve(d, 'MX'), key=lambda r: r.preference)[0]; "
        "host=str(mx.exchange).rstrip('.'); ip=str(dns.resolver.resolve(host, 'A')[0]); "
        "s=socket.create_connection((ip, 25), timeout=5); print(host, ip, s.recv(200).decode().strip())"
    ) % isp["domains"][0]
    result = ssh(name, "python3 -c %s" % shlex.quote(script))
    assert result.returncode == 0, result.stderr
    mx_host, ip, banner = result.stdout.split(" ", 2)
    assert mx_host == isp["mx_host"]
    assert not isp["mx_patterns"] or any(fnmatch.fnmatch(mx_host, p) for p in isp["mx_patterns"])
    assert banner.startswith("220 " + isp["mx_host"])


# ---------------------------------------------------------------- routes: every rollup queue delivers
def test_every_isp_group_is_routed_from_a_local_application():
    """Mail from the host itself (the 127.0.0.1 source, no AUTH) to every ISP group arrives: a rollup
    queue without a route (wildcard mx line with neither rollup-by-ip nor smtp-hosts, §10.17) would not."""
    recipients = [unique("local", GROUPS[group]["domains"][0]) for group in sorted(GROUPS)]
    script = (
        "import smtplib, sys\n"
        "s = smtplib.SMTP('127.0.0.1', 25, timeout=30)\n"
        "for rcpt in sys.argv[1:]:\n"
        "    s.sendmail('app@example.com', [rcpt], ('From: app@example.com\\r\\nTo: %s\\r\\n'\n"
        "        'X-Virtual-MTA: marketing\\r\\nSubject: local\\r\\n\\r\\nhi\\r\\n' % rcpt).encode())\n"
        "s.quit()\n"
    )
    result = ssh("mf-n2", "python3 -c %s %s" % (shlex.quote(script), " ".join(recipients)))
    assert result.returncode == 0, result.stderr

    def arrived():
        got = {}
        for group in GROUPS:
            for message in sink_messages(group):
                for rcpt in message["rcpts"]:
                    if rcpt in recipients:
                        got[rcpt] = message["peer"]
        return got if len(got) == len(recipients) else None

    try:
        got = wait_for(arrived, timeout=120, what="local mail at every ISP sink")
    except AssertionError:
        queues = ssh("mf-n2", "pmta --json show queues").stdout
        missing = [r for r in recipients if r not in (arrived() or {})]
        raise AssertionError("not delivered: %s; queues on mf-n2: %s" % (missing, queues[:3000])) from None
    assert set(got.values()) == {VMTAS["mf-n2"]["marketing"][1]}


# ---------------------------------------------------------------- a campaign to every ISP through every pool
@pytest.fixture(scope="module")
def campaign():
    """One message per host x pool x ISP group, with unique recipients; waits until every sink has them."""
    sent = []
    for name in HOSTS:
        for pool in POOLS:
            recipients = [unique("user", GROUPS[group]["domains"][-1]) for group in sorted(GROUPS)]
            for item in inject(name, recipients, pool=pool, campaign="mf-campaign"):
                assert not item["refused"] and not item["error"], item
                group = next(g for g in GROUPS if item["rcpt"].endswith("@" + GROUPS[g]["domains"][-1]))
                sent.append(dict(item, host=name, group=group))

    def arrived():
        seen = {}
        for group in GROUPS:
            for message in sink_messages(group):
                for rcpt in message["rcpts"]:
                    seen[rcpt] = dict(message, group=group)
        missing = [item["rcpt"] for item in sent if item["rcpt"] not in seen]
        return seen if not missing else None

    seen = wait_for(arrived, timeout=180, what="every injected message at its ISP sink")
    return sent, seen


def test_every_message_left_from_the_pools_vmta_and_arrived(campaign):
    sent, seen = campaign
    assert len(sent) == len(HOSTS) * len(POOLS) * len(GROUPS)
    for item in sent:
        got = seen[item["rcpt"]]
        vmta, ip = VMTAS[item["host"]][item["pool"]]
        assert got["group"] == item["group"], item
        assert got["peer"] == ip, "%s via %s/%s arrived from %s, not %s (%s)" % (
            item["rcpt"], item["host"], item["pool"], got["peer"], ip, vmta)
        assert got["message_id"] == item["message_id"]


def test_sink_counts_per_source_ip_match_the_accounting(campaign):
    sent, _seen = campaign
    for name in HOSTS:
        rows = [r for r in acct_rows(name, "acct.csv*") if r.get("type") == "d"]
        delivered = {r["rcpt"]: r for r in rows}
        for item in (i for i in sent if i["host"] == name):
            vmta, ip = VMTAS[name][item["pool"]]
            row = delivered.get(item["rcpt"])
            assert row is not None, "no d record for %s on %s" % (item["rcpt"], name)
            assert row["vmta"] == vmta and row["dlvSourceIp"] == ip, row
    counts = sink_counts()
    for item in sent:
        ip = VMTAS[item["host"]][item["pool"]][1]
        assert counts[item["group"]][ip]["accepted"] >= 1


def test_lab_summary_mail_table_agrees_with_the_sinks(campaign):
    sent, _seen = campaign

    def all_accounted():
        rcpts = set()
        for name in HOSTS:
            rcpts |= {r["rcpt"] for r in acct_rows(name, "acct.csv*") if r.get("type") == "d"}
        return all(item["rcpt"] in rcpts for item in sent)

    wait_for(all_accounted, timeout=60, what="d records for the whole campaign")
    result = playbook(ROOT / "playbooks" / "lab_summary.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    table = result.stdout[result.stdout.index("MAIL (accounting files"):]
    for item in sent:
        ip = VMTAS[item["host"]][item["pool"]][1]
        row = next((line.split() for line in table.splitlines()
                    if line.split()[:2] == [item["group"], ip]), None)
        assert row is not None, "no %s x %s row in:\n%s" % (item["group"], ip, table[:3000])
        assert int(row[3]) >= 1, row
        if row[-1] != "yes":
            got = [(m["message_id"], m["rcpts"]) for m in sink_messages(item["group"]) if m["peer"] == ip]
            raise AssertionError("accounting and sink disagree for %s x %s: %s; the sink got %s"
                                 % (item["group"], ip, row, got))


def test_mail_without_x_virtual_mta_uses_the_default_pool():
    """other.test has no rollup queue, so only the {auth} default-virtual-mta decides the source IP."""
    rcpt = unique("nopool", "other.test")
    assert inject("mf-n1", [rcpt])[0]["refused"] == {}
    message = wait_for(lambda: next((m for m in sink_messages("other") if rcpt in m["rcpts"]), None),
                       what="the message without X-Virtual-MTA at other.test")
    assert message["peer"] == VMTAS["mf-n1"]["transactional"][1], (
        "mail without X-Virtual-MTA left from %s, not from the default pool's vMTA" % message["peer"])


def test_auth_needs_starttls():
    client = smtplib.SMTP(address("mf-n1"), 587, timeout=20)
    try:
        client.ehlo("injector.example.com")
        assert client.has_extn("starttls"), "no STARTTLS offered to the injector network"
        with pytest.raises(smtplib.SMTPException):
            client.login("mumara", "mf-injector-secret")
    finally:
        client.close()


# ---------------------------------------------------------------- what comes back: b, t, f, rb
def test_unknown_user_gives_a_b_record():
    rcpt = unique("unknown", "yahoo.test")
    assert inject("mf-n2", [rcpt], pool="marketing")[0]["refused"] == {}
    row = wait_for(lambda: next((r for r in acct_rows("mf-n2", "acct.csv*")
                                 if r.get("type") == "b" and r.get("rcpt") == rcpt), None),
                   what="a b record for %s" % rcpt)
    assert row["dsnStatus"].startswith("5.1.1"), row
    assert "550" in row["dsnDiag"], row
    assert row["vmta"] == "mk-63"


def test_throttling_sink_drives_backoff_and_t_records():
    set_policy("comcast", throttle=1, window=3600)
    try:
        recipients = [unique("throttle", "comcast.test") for _attempt in range(3)]
        for item in inject("mf-n1", recipients, pool="marketing"):
            assert item["refused"] == {}, item
        row = wait_for(lambda: next((r for r in acct_rows("mf-n1", "diag.csv*")
                                     if r.get("type") == "t" and r.get("rcpt") in recipients), None),
                       what="a t record for a throttled comcast message")
        assert "Throttled" in row["dsnDiag"] and "421" in row["dsnDiag"], row
        assert row["vmta"] == "mk-61"

        def backoff():
            result = ssh("mf-n1", "pmta --json show queues")
            if result.returncode != 0:
                return None
            queues = json.loads(result.stdout).get("data", {}).get("queues", [])
            return [q for q in queues if q.get("name") == "comcast.rollup/mk-61" and q.get("mode") == "backoff"]

        queue = wait_for(backoff, timeout=60, what="queue comcast.rollup/mk-61 in backoff mode")[0]
        assert "Throttled" in queue.get("lastError", ""), queue
    finally:
        set_policy("comcast", throttle=0)


def test_complaint_report_gives_an_f_record():
    rcpt = unique("complain", "hotmail.test")
    assert inject("mf-n1", [rcpt], pool="transactional")[0]["refused"] == {}

    def f_record():
        for name in HOSTS:
            for row in acct_rows(name, "fbl.csv*"):
                if row.get("type") == "f" and rcpt in json.dumps(row):
                    return row
        return None

    row = wait_for(f_record, timeout=150, what="an f record for the ARF about %s" % rcpt)
    assert row.get("format", "arf").lower() == "arf"
    assert "203.0.113.60" in json.dumps(row)


def test_late_dsn_gives_an_rb_record():
    rcpt = unique("latebounce", "icloud.test")
    return_path = unique("b", "bounces.example.com")
    assert inject("mf-n2", [rcpt], pool="transactional", return_path=return_path)[0]["refused"] == {}

    def rb_record():
        for name in HOSTS:
            for row in acct_rows(name, "remote-bounces.csv*"):
                if row.get("type") == "rb" and rcpt in json.dumps(row):
                    return row
        return None

    row = wait_for(rb_record, timeout=150, what="an rb record for the late DSN about %s" % rcpt)
    assert row["dsnStatus"].startswith("5.1.1"), row


# ---------------------------------------------------------------- never an open relay
@pytest.mark.parametrize("vmta_ip", ["203.0.113.60", "203.0.113.63"])
def test_outside_source_cannot_relay(vmta_ip):
    result = in_sink_netns("gmail", str(TESTBED / "injector.py"), "--host", vmta_ip, "--port", "25",
                           "--no-auth", "--no-starttls", "--to", unique("relay", "yahoo.test"))
    item = json.loads(result.stdout.splitlines()[0])
    refused = item.get("refused") or {}
    assert refused or item.get("error"), "relayed for an outside source: %s" % item
    codes = [v[0] for v in refused.values()]
    assert all(code >= 500 for code in codes), item


def test_outside_source_may_send_to_the_bounce_domain():
    result = in_sink_netns("gmail", str(TESTBED / "injector.py"), "--host", "203.0.113.60", "--port", "25",
                           "--no-auth", "--no-starttls", "--to", unique("b", "bounces.example.com"))
    item = json.loads(result.stdout.splitlines()[0])
    assert not item.get("error") and item.get("refused") == {}, "bounce domain refused to an outside host: %s" % item
