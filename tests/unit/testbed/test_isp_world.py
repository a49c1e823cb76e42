"""The lab's ISP side as data: each sink's throttling reply is one its ISP group's patterns recognise,
the zones publish MX hosts that match the lab's rollup patterns, and ARF/DSN reports are well formed."""

import email
import email.policy
import fnmatch
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "testbed"))
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))

import isp_sinks  # noqa: E402
import isp_world  # noqa: E402
from _fleet import isp_groups as _isp_groups  # noqa: E402 - the collection's ISP groups, imported by path

LAB_OVERRIDES = [{"name": g["name"], "domains": g["domains"], "mx_patterns": g["mx_patterns"]}
                 for g in isp_world.LAB_ISPS if g["name"] != "other"]


@pytest.mark.parametrize("isp", isp_world.LAB_ISPS, ids=lambda g: g["name"])
def test_throttle_reply_is_recognised_as_throttling_by_its_group(isp):
    classifier = _isp_groups.IspClassifier(_isp_groups.merge_isp_groups(LAB_OVERRIDES))
    reply = isp["throttle_reply"].format(ip="203.0.113.10")
    assert reply[:1] == "4", "a throttling reply is transient"
    assert classifier.is_throttle(isp["name"], reply)
    assert classifier.classify(isp["domains"][0]) == isp["name"]
    assert classifier.by_mx(isp["mx_host"]) == (isp["name"] if isp["mx_patterns"] else "other")


def test_lab_groups_map_onto_the_collection_groups():
    shipped = {g["name"] for g in _isp_groups.DEFAULT_ISP_GROUPS}
    assert {g["name"] for g in isp_world.LAB_ISPS} == shipped


@pytest.mark.parametrize("isp", isp_world.LAB_ISPS, ids=lambda g: g["name"])
def test_mx_hosts_match_the_rollup_patterns(isp):
    assert all(fnmatch.fnmatchcase(isp["mx_host"], p) for p in isp["mx_patterns"][:1])


def test_zone_texts_publish_mx_and_a():
    world = isp_world.world_plan("t", "198.19.250.0/24", "fbl@fbl.example.com")
    texts = isp_world.zone_texts(world["groups"], {g["name"]: g["address"] for g in world["groups"]})
    assert "gmail.test. MX 10 gmail-smtp-in.l.google.test." in texts["gmail.test"]
    assert "gmail-smtp-in.l.google.test. A 198.19.250.11" in texts["google.test"]
    assert "outlook.test. MX 10 hotmail-test.olc.protection.outlook.test." in texts["outlook.test"]
    assert all(zone.endswith(".test") for zone in texts)


def _state(tmp_path):
    world = isp_world.world_plan("t", "198.19.250.0/24", "fbl@fbl.example.com")
    return isp_sinks.SinkState(world, "yahoo", tmp_path / "yahoo")


def test_arf_report_is_rfc5965(tmp_path):
    raw = b"From: news@example.com\r\nMessage-ID: <1@example.com>\r\nSubject: hi\r\n\r\nbody\r\n"
    report = isp_sinks.build_arf(_state(tmp_path), "203.0.113.10", "b@bounces.example.com", "c@yahoo.test", raw)
    parsed = email.message_from_bytes(report.as_bytes(), policy=email.policy.compat32)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "feedback-report"
    parts = parsed.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/feedback-report",
                                                     "text/rfc822-headers"]
    fields = parts[1].as_string()
    assert "Feedback-Type: abuse" in fields and "Source-IP: 203.0.113.10" in fields
    assert "Original-Rcpt-To: <c@yahoo.test>" in fields


def test_dsn_is_rfc3464(tmp_path):
    raw = b"From: news@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
    report = isp_sinks.build_dsn(_state(tmp_path), "203.0.113.10", "b@bounces.example.com", "c@yahoo.test", raw)
    parsed = email.message_from_bytes(report.as_bytes(), policy=email.policy.compat32)
    assert parsed.get_param("report-type") == "delivery-status"
    status = parsed.get_payload()[1]
    assert status.get_content_type() == "message/delivery-status"
    text = status.as_string()
    assert "Action: failed" in text and "Status: 5.1.1" in text and "Final-Recipient: rfc822; c@yahoo.test" in text


def test_sink_rate_limit_per_source_ip(tmp_path):
    state = _state(tmp_path)
    isp_sinks._write_json(state.dir / "policy.json", {"throttle": 2, "window": 3600})
    assert not state.over_rate("203.0.113.10")
    state.note_accepted("203.0.113.10")
    state.note_accepted("203.0.113.10")
    assert state.over_rate("203.0.113.10")
    assert not state.over_rate("203.0.113.11")
