"""The suppression export on real accounting: mail to the ISP sinks comes back as b, f and rb records on the
test double's hosts, and playbooks/suppression.yml turns them into one CSV holding exactly the recipients the
sinks rejected (550 5.1.1, local part unknown*), complained about (ARF, complain*) or bounced late (DSN,
latebounce*), once each; a second run adds nothing (docs/suppression.md)."""

import csv
import json
import os
import re
from pathlib import Path

import pytest
from helpers import GROUPS, HOSTS, ROOT, acct_rows, inject, playbook, sink_messages, ssh, unique, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# What the sinks refuse or report (tests/testbed/isp_sinks.py): unknown* at RCPT, complain* by ARF, latebounce* by
# a late DSN; nothing else in this scenario is a hard bounce or a complaint.
SINK_BAD = re.compile(r"^(unknown|complain|latebounce)")


def export_rows(path):
    with open(path, newline="") as handle:
        return {row["email"]: row for row in csv.DictReader(handle)}


def record_on_any_host(kind, pattern, rcpt):
    for name in HOSTS:
        for row in acct_rows(name, pattern):
            if row.get("type") == kind and row.get("rcpt", "").lower() == rcpt.lower():
                return row
    return None


def test_export_holds_exactly_what_the_sinks_rejected_and_complained_about():
    unknown = [unique("unknown", "yahoo.test"), unique("unknown", "gmail.test")]
    complain = unique("complain", "hotmail.test")
    late = unique("latebounce", "icloud.test")
    fine = unique("fine", "gmail.test")
    for item in inject("mf-n1", [unknown[0], complain, fine], pool="marketing"):
        assert item["refused"] == {}, item
    assert inject("mf-n2", [unknown[1]], pool="transactional")[0]["refused"] == {}
    assert inject("mf-n2", [late], pool="transactional",
                  return_path=unique("b", "bounces.example.com"))[0]["refused"] == {}
    for rcpt in unknown:
        wait_for(lambda rcpt=rcpt: record_on_any_host("b", "acct.csv*", rcpt), what="a b record for %s" % rcpt)
    wait_for(lambda: record_on_any_host("f", "fbl.csv*", complain), timeout=150, what="an f record for " + complain)
    wait_for(lambda: record_on_any_host("rb", "remote-bounces.csv*", late), timeout=150,
             what="an rb record for " + late)

    # the sinks' side: the unknown users never reached a mailbox, the complainer did
    accepted = {rcpt.lower() for group in GROUPS for message in sink_messages(group) for rcpt in message["rcpts"]}
    assert complain.lower() in accepted and fine.lower() in accepted
    assert not {rcpt.lower() for rcpt in unknown} & accepted

    dest = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "suppression.csv"
    result = playbook(ROOT / "playbooks" / "suppression.yml", "-e", "suppression_export_file=%s" % dest)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = export_rows(dest)
    for rcpt in unknown:
        assert (rows[rcpt.lower()]["reason"], rows[rcpt.lower()]["category"]) == ("hard-bounce", "bad-mailbox")
    assert (rows[complain.lower()]["reason"], rows[complain.lower()]["category"]) == ("complaint", "abuse")
    assert rows[late.lower()]["reason"] == "hard-bounce"
    assert fine.lower() not in rows
    # exactly: in this scenario only the sinks answer 5.1.1 (bad-mailbox) and send ARF reports, so every such row
    # of the export (also those of earlier tests) is an address the sinks rejected, bounced late or complained about
    from_sinks = {email: row for email, row in rows.items() if row["reason"] == "complaint"
                  or row["category"] == "bad-mailbox"}
    assert from_sinks and [email for email in from_sinks if not SINK_BAD.match(email)] == []
    assert all(row["count"] == "1" for email, row in rows.items() if email in {*unknown, complain, late})

    # a second run adds nothing twice (new d/t records may still arrive; none of them suppresses anyone)
    before = dest.read_text()
    again = playbook(ROOT / "playbooks" / "suppression.yml", "-e", "suppression_export_file=%s" % dest)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert dest.read_text() == before
    # each host keeps its own cursor, so another controller continues from the same place
    for name in HOSTS:
        saved = ssh(name, "cat /var/lib/mailops-powermta/suppression-state.json")
        assert saved.returncode == 0, saved.stderr
        cursor = json.loads(saved.stdout)
        assert any(entry["path"].startswith("/var/log/pmta/acct") for entry in cursor["files"].values()), cursor
