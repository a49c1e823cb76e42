"""The lab mailbox's reader: DSNs (RFC 3464) and ARF reports (RFC 5965) as the sinks and the test double write
them, counted per recipient; and the sinks' logs give the recipients that must be in the mailbox."""

import json
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "testbed"))
sys.path.insert(0, str(ROOT / "tests" / "pmta_test_double"))

import isp_sinks  # noqa: E402
import isp_world  # noqa: E402
import lab_mailbox  # noqa: E402
from pmta_test_double import dsn  # noqa: E402 - the double's own DSN writer

RAW = b"From: news@example.com\r\nTo: unknown-1@gmail.test\r\nX-Job: c1\r\nSubject: hi\r\n\r\nbody\r\n"


def _state(tmp_path):
    world = isp_world.world_plan("t", "198.19.250.0/24", "fbl@fbl.example.com")
    return isp_sinks.SinkState(world, "gmail", tmp_path / "gmail")


def test_the_doubles_dsn_is_read_as_one_failed_recipient():
    message = types.SimpleNamespace(id=1, orig="bounce@bounces.example.com", envid="E1", data=RAW, received=0)
    raw = dsn.build("pmta1.example.com", message, "unknown-1@gmail.test", "", "5.1.1 (bad destination mailbox)",
                    "smtp;550 5.1.1 user unknown", "mx.gmail.test (198.19.250.11)")
    report = lab_mailbox.parse_report(raw)
    assert report["kind"] == "dsn" and report["recipients"] == ["unknown-1@gmail.test"]
    assert report["reporting_mta"] == "pmta1.example.com"
    assert report["failures"][0]["status"] == "5.1.1" and "550" in report["failures"][0]["diag"]


def test_the_sinks_late_dsn_and_arf_are_read(tmp_path):
    state = _state(tmp_path)
    late = isp_sinks.build_dsn(state, "203.0.113.10", "bounce@bounces.example.com", "latebounce-1@gmail.test", RAW)
    arf = isp_sinks.build_arf(state, "203.0.113.10", "bounce@bounces.example.com", "Complain-1@Gmail.test", RAW)
    assert lab_mailbox.parse_report(late.as_bytes())["recipients"] == ["latebounce-1@gmail.test"]
    report = lab_mailbox.parse_report(arf.as_bytes())
    assert report["kind"] == "arf" and report["recipients"] == ["complain-1@gmail.test"]
    assert report["feedback_type"] == "abuse" and report["source_ip"] == "203.0.113.10"


def test_other_mail_is_no_report_and_a_second_copy_is_a_duplicate():
    assert lab_mailbox.parse_report(b"Subject: Out of office\r\n\r\naway\r\n") is None
    found = [{"kind": "dsn", "recipients": ["a@gmail.test"]}, {"kind": "dsn", "recipients": ["a@gmail.test"]},
             {"kind": "arf", "recipients": ["b@gmail.test"]}]
    assert lab_mailbox.tally(found) == {"dsn": {"a@gmail.test": 2}, "arf": {"b@gmail.test": 1}}


def test_expected_reports_come_from_the_sinks_logs(tmp_path):
    world = isp_world.world_plan("t", "198.19.250.0/24", "fbl@fbl.example.com")
    isp_world.save(tmp_path, world)
    sink = tmp_path / "sinks" / "gmail"
    sink.mkdir(parents=True)
    lines = [{"rcpt": "unknown-1@gmail.test", "mail_from": "bounce@bounces.example.com", "hard": True},
             {"rcpt": "unknown-2@gmail.test", "mail_from": "news@example.com", "hard": True}]  # DSN goes elsewhere
    (sink / "rejected.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    sent = [{"kind": "arf", "status": "sent", "about": "complain-1@gmail.test"},
            {"kind": "dsn", "status": "sent", "about": "latebounce-1@gmail.test"},
            {"kind": "arf", "status": "failed", "about": "complain-2@gmail.test"}]
    (sink / "outbound.jsonl").write_text("".join(json.dumps(x) + "\n" for x in sent))
    assert lab_mailbox.expected(tmp_path, ["bounces.example.com"]) == {
        "dsn": {"unknown-1@gmail.test", "latebounce-1@gmail.test"}, "arf": {"complain-1@gmail.test"}}


def test_postfix_is_a_final_destination_that_relays_and_sends_nothing(tmp_path):
    text = lab_mailbox.postfix_main_cf(tmp_path, "198.19.250.30", ["bounces.example.com", "fbl.example.com"],
                                       "mailbox.bounces.example.com")
    settings = dict((line + " ").split(" = ", 1) for line in text.splitlines() if " =" in line)
    settings = {key: value.strip() for key, value in settings.items()}
    assert settings["inet_interfaces"] == "198.19.250.30" and settings["mydestination"] == ""
    assert settings["smtpd_relay_restrictions"] == "reject_unauth_destination"
    assert settings["virtual_alias_domains"] == ""  # else the static alias map would make every domain local
    assert settings["default_transport"].startswith("error:") and settings["relay_transport"].startswith("error:")
