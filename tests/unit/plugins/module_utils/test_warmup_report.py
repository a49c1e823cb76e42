"""The warm-up report's rows (plugins/module_utils/_warmup/report.py)."""

from ansible_collections.mailops.powermta.plugins.module_utils._warmup.report import (
    plan_lines,
    report_rows,
    report_steps,
    warming_vmtas,
)


def decision(ip, isp, stage):
    return {"ip": ip, "isp": isp, "stage": stage, "stages": 10, "daily_limit": 50 * stage, "action": "advance",
            "reason": "clean", "extra": "not reported"}


def test_rows_per_host_warming_vmta_and_isp_group_hosts_sorted():
    host_vars = {
        "pmta2": {"__warmup_warm_vmtas": [{"name": "b", "ip": "203.0.113.20"}],
                  "__warmup_plan": {"state": {"updated_at": "t2"},
                                    "decisions_by_ip": {"203.0.113.20": [decision("203.0.113.20", "gmail", 2)]}}},
        "pmta1": {"__warmup_warm_vmtas": [{"name": "a", "ip": "203.0.113.10"}, {"name": "idle", "ip": "203.0.113.11"}],
                  "__warmup_plan": {"state": {"updated_at": "t1"},
                                    "decisions_by_ip": {"203.0.113.10": [decision("203.0.113.10", "gmail", 1),
                                                                         decision("203.0.113.10", "other", 3)]}}},
        "pmta3": {"__warmup_warm_vmtas": [{"name": "c", "ip": "203.0.113.30"}]},  # no plan: skipped this step
    }
    rows = report_rows(["pmta3", "pmta2", "pmta1"], host_vars)
    assert [(row["host"], row["vmta"], row["isp"], row["stage"], row["step"]) for row in rows] == [
        ("pmta1", "a", "gmail", 1, "t1"), ("pmta1", "a", "other", 3, "t1"), ("pmta2", "b", "gmail", 2, "t2")]
    assert rows[0] == {"host": "pmta1", "vmta": "a", "ip": "203.0.113.10", "isp": "gmail", "stage": 1, "stages": 10,
                       "daily_limit": 50, "action": "advance", "reason": "clean", "step": "t1"}


def test_no_plans_no_rows():
    assert report_rows(["pmta1"], {"pmta1": {}}) == []


def test_warming_vmtas_read_the_flag_once_for_all():
    vmtas = [{"name": "a", "warmup": True}, {"name": "b", "warmup": "no"}, {"name": "c"},
             {"name": "d", "warmup": "yes"}]
    assert [vmta["name"] for vmta in warming_vmtas(vmtas)] == ["a", "d"]


def test_plan_lines_one_per_warming_vmta_and_isp_group_in_vmta_order():
    decisions_by_ip = {"203.0.113.10": [decision("203.0.113.10", "gmail", 1), decision("203.0.113.10", "other", 3)],
                       "2001:db8::20": [dict(decision("2001:db8::20", "yahoo", 2), action="hold",
                                             reason="too little sent (12 of 100)")]}
    warm = [{"name": "v6", "ip": "2001:db8::20"}, {"name": "a", "ip": "203.0.113.10"},
            {"name": "idle", "ip": "203.0.113.11"}]
    assert plan_lines(warm, decisions_by_ip) == [
        "v6 2001:db8::20 yahoo: stage 2/10, 100/d, hold: too little sent (12 of 100)",
        "a 203.0.113.10 gmail: stage 1/10, 50/d, advance: clean",
        "a 203.0.113.10 other: stage 3/10, 150/d, advance: clean",
    ]
    assert plan_lines([], decisions_by_ip) == []


def test_report_steps_each_plan_time_once_in_row_order():
    rows = [{"step": "2026-05-02T06:00:00Z"}, {"step": "2026-05-01T06:00:00Z"}, {"step": "2026-05-02T06:00:00Z"}]
    assert report_steps(rows) == ["2026-05-02T06:00:00Z", "2026-05-01T06:00:00Z"]
    assert report_steps([]) == []
