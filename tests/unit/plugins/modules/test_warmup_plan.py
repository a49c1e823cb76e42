"""The warmup_plan module: arguments in, plan out, bad input fails with the engine's message."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import warmup_plan


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        warmup_plan.main()
    return json.loads(capsys.readouterr().out)


def test_module_returns_state_decisions_and_summary(capsys):
    out = run_module({"now": "2026-05-01T06:00:00Z", "ips": ["203.0.113.11"], "isps": ["gmail", "yahoo"],
                      "schedule": {"default": [100, 200]}}, capsys)
    assert out["changed"] is False
    assert out["summary"] == {"advance": 0, "hold": 2, "rollback": 0, "pause": 0, "done": 0}
    assert out["state"]["updated_at"] == "2026-05-01T06:00:00Z"
    second = run_module({"state": out["state"], "now": "2026-05-02T06:00:00Z",
                         "observations": {"203.0.113.11": {"gmail": {"delivered": 100}}},
                         "schedule": {"default": [100, 200]}, "isps": ["gmail", "yahoo"]}, capsys)
    assert [(d["isp"], d["action"], d["daily_limit"]) for d in second["decisions"]] == [
        ("gmail", "advance", 200), ("yahoo", "hold", 100)]


def test_module_fails_with_a_clear_message(capsys):
    out = run_module({"now": "2026-05-01T06:00:00Z", "thresholds": {"bounce_rate_hold": 7}}, capsys)
    assert out["failed"] is True
    assert "thresholds.bounce_rate_hold is a share" in out["msg"]


def test_module_groups_by_given_ip_and_replays_within_min_interval(capsys):
    args = {"now": "2026-05-01T06:00:00Z", "ips": ["2001:DB8::11", "203.0.113.11"], "isps": ["gmail"],
            "min_interval_hours": 1}
    first = run_module(args, capsys)
    assert [d["ip"] for d in first["decisions_by_ip"]["2001:DB8::11"]] == ["2001:db8::11"]
    again = run_module(dict(args, state=first["state"], now="2026-05-01T06:20:00Z"), capsys)
    assert again["replayed"] is True and again["state"] == first["state"]


def test_module_returns_the_queues_to_pause_and_resume_and_the_plan_lines(capsys):
    vmtas = [{"name": "solo", "ip": "198.51.100.9", "warmup": True}, {"name": "warm", "ip": "198.51.100.1"}]
    args = {"ips": ["198.51.100.9"], "isps": ["gmail"], "schedule": {"default": [100, 200]}, "vmtas": vmtas}
    listed = run_module(dict(args, now="2026-05-01T06:00:00Z", blocklisted={"198.51.100.9": ["zen.dnsbl.test"]}),
                        capsys)
    assert listed["queues_to_pause"] == ["*/solo"] and listed["queues_to_resume"] == []
    assert listed["plan_lines"] == ["solo 198.51.100.9 gmail: stage 1/2, 0/d, pause: %s"
                                    % listed["decisions"][0]["reason"]]
    delisted = run_module(dict(args, now="2026-05-02T06:00:00Z", state=listed["state"]), capsys)
    assert delisted["queues_to_pause"] == [] and delisted["queues_to_resume"] == ["*/solo"]
    assert "plan_lines" not in run_module({"now": "2026-05-01T06:00:00Z", "vmtas": vmtas}, capsys)
