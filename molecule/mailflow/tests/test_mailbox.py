"""Bounces and complaints reach the injector's mailbox (issue 21), read over IMAP as Mumara polls it.

The fleet (powermta_bounce_mailbox in inventory/group_vars) delivers processed bounces and ARF reports, and
PowerMTA's own DSNs for hard bounces, to the lab mailbox: Debian's Postfix + Dovecot in their own netns
(tests/testbed/lab_mailbox.py, started by prepare.yml). The mailbox must hold exactly the recipients the ISP
sinks rejected (mail whose MAIL FROM is the bounce address), sent a late DSN about, or complained about:
each once, also after a second campaign."""

import importlib
import json
import uuid

import pytest
from helpers import HOSTS, VMTAS, acct_rows, ephemeral, inject, wait_for, world_dir

lab_mailbox = importlib.import_module("lab_mailbox")  # tests/testbed: helpers puts it on sys.path

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BOUNCE_ADDRESS = "bounce@bounces.example.com"  # inventory/group_vars/pmta_fleet.yml powermta_bounce_mailbox


def login():
    return json.loads((ephemeral() / "mailbox.json").read_text())


def campaign(tag):
    """From both hosts, Mumara-like with the bounce address as MAIL FROM: unknown users (hard bounces), complaints
    and a late DSN at several ISP groups; returns {kind: {recipient: vMTA IP}}."""
    wanted = {"dsn": {}, "arf": {}}
    plan = [("mf-n1", "transactional", "unknown", "gmail.test", "dsn"),
            ("mf-n2", "marketing", "unknown", "yahoo.test", "dsn"),
            ("mf-n1", "marketing", "complain", "outlook.test", "arf"),
            ("mf-n2", "transactional", "complain", "gmail.test", "arf"),
            ("mf-n2", "transactional", "latebounce", "icloud.test", "dsn")]
    for host, pool, local, domain, kind in plan:
        rcpt = "%s-%s-%s@%s" % (local, tag, uuid.uuid4().hex[:8], domain)
        result = inject(host, [rcpt], pool=pool, return_path=BOUNCE_ADDRESS, campaign="mailbox-" + tag)[0]
        assert result["refused"] == {} and not result["error"], result
        wanted[kind][rcpt] = VMTAS[host][pool][1]
    return wanted


def settled(wanted):
    """The mailbox's reports once every wanted recipient is in it and it agrees with the sinks, else None."""
    found = lab_mailbox.reports(login())
    got = lab_mailbox.tally(found)
    if any(rcpt not in got[kind] for kind in wanted for rcpt in wanted[kind]):
        return None
    result = lab_mailbox.compare(world_dir(), login(), ["bounces.example.com"])
    return (found, got, result) if result["agree"] else None


@pytest.fixture(scope="module")
def first_run():
    wanted = campaign("r1")
    found, got, result = wait_for(lambda: settled(wanted), timeout=120, what="the mailbox to hold the campaign's "
                                  "DSNs and ARF reports and agree with the sinks")
    return wanted, found, got, result


def test_the_mailbox_is_imap_behind_postfix_and_refuses_to_relay():
    import smtplib

    info = login()
    assert info["port"] == 143 and info["user"] == "mailops" and info["password"]
    with smtplib.SMTP(timeout=10) as client:
        code, greeting = client.connect(info["smtp_host"], info["smtp_port"])
        assert code == 220 and b"ESMTP lab mailbox" in greeting  # lab_mailbox.py's smtpd_banner
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("", ["someone@gmail.test"], b"Subject: relay?\r\n\r\nno\r\n")


def test_every_hard_bounce_and_complaint_is_in_the_mailbox_as_dsn_or_arf(first_run):
    wanted, found, got, _result = first_run
    dsns = {r["recipients"][0]: r for r in found if r["kind"] == "dsn" and r["recipients"]}
    for rcpt in wanted["dsn"]:
        failure = next(f for f in dsns[rcpt]["failures"] if f["rcpt"] == rcpt)
        assert failure["status"].startswith("5.1.1"), dsns[rcpt]
    # PowerMTA's own DSN (RFC 3464) for the synchronous 550 names the sending host as Reporting-MTA.
    sync = [rcpt for rcpt in wanted["dsn"] if rcpt.startswith("unknown-")]
    assert {dsns[r]["reporting_mta"] for r in sync} <= {"mf-n1.example.com", "mf-n2.example.com"}
    arfs = {r["recipients"][0]: r for r in found if r["kind"] == "arf" and r["recipients"]}
    for rcpt, vmta_ip in wanted["arf"].items():
        assert arfs[rcpt]["feedback_type"] == "abuse" and arfs[rcpt]["source_ip"] == vmta_ip, arfs[rcpt]
    for kind in wanted:
        assert all(got[kind][rcpt] == 1 for rcpt in wanted[kind]), got


def test_the_records_are_written_before_the_mail_goes_on(first_run):
    wanted, _found, _got, _result = first_run
    rows = {name: acct_rows(name, "*.csv*") for name in HOSTS}
    every = [row for name in HOSTS for row in rows[name]]
    for rcpt in wanted["dsn"]:
        kinds = {row.get("type") for row in every if row.get("rcpt") == rcpt}
        assert ("b" if rcpt.startswith("unknown-") else "rb") in kinds, (rcpt, kinds)
    for rcpt in wanted["arf"]:
        assert [row for row in every if row.get("type") == "f" and row.get("rcpt") == rcpt], rcpt


def test_the_mailbox_holds_exactly_what_the_sinks_rejected_or_complained_about(first_run):
    _wanted, _found, _got, result = first_run
    assert result["missing"] == {"dsn": [], "arf": []} and result["unexpected"] == {"dsn": [], "arf": []}, result
    assert all(row["agree"] and row["duplicates"] == 0 for row in result["groups"].values()), result["groups"]


def test_a_second_campaign_adds_only_its_own_reports(first_run):
    wanted, found, _got, _result = first_run
    before = len(lab_mailbox.fetch(login()))
    again = campaign("r2")
    found2, got2, result = wait_for(lambda: settled(again), timeout=120, what="the second campaign's reports")
    new_reports = [r for r in found2 if any(rcpt.split("-")[1] == "r2" for rcpt in r["recipients"])]
    assert len(new_reports) == sum(len(v) for v in again.values())
    for kind in wanted:
        assert all(got2[kind][rcpt] == 1 for rcpt in list(wanted[kind]) + list(again[kind])), got2
    assert len(lab_mailbox.fetch(login())) >= before + len(new_reports)
    assert all(row["duplicates"] == 0 for row in result["groups"].values()), result["groups"]
