"""The lab summary's tables, decided in _fleet_summary (playbooks/lab_summary.yml prints them)."""

import json

from ansible_collections.mailops.powermta.plugins.module_utils._fleet import summary
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.summary import (
    as_count,
    dns_rows,
    fleet_overview,
    host_rows,
    mail_table,
    warmup_rows,
)

VMTAS = [
    {"name": "tx-01", "ip": "203.0.113.10", "hostname": "mta10.example.com", "pool": "tx", "inventory_host": "h1"},
    {"name": "mk-01", "ip": "203.0.113.11", "hostname": "mta11.example.com", "pool": "mk", "warmup": True,
     "inventory_host": "h1"},
    {"name": "tx-02", "ip": "203.0.113.20", "hostname": "mta20.example.com", "pool": "tx", "warmup": "yes",
     "inventory_host": "h2"},
    {"name": "old", "ip": "203.0.113.30", "inventory_host": "h2"},
]
MODEL = {"hosts": {"h1": {"pools": [{"name": "tx", "traffic": "transactional"}, {"name": "mk", "region": "eu"}]},
                   "h2": {"pools": [{"name": "tx", "traffic": "other"}, {"name": "idle"}]}}}


def test_overview_counts_warming_ips_with_the_one_warming_rule():
    overview = fleet_overview(MODEL, VMTAS)
    assert overview["warming"] == 2
    assert [row["warmup"] for row in overview["ips"]] == ["-", "yes", "yes", "-"]
    assert overview["ips"][3] == {"ip": "203.0.113.30", "name": "old", "host": "h2", "pool": "-", "hostname": "-",
                                  "warmup": "-"}


def test_overview_lists_each_pool_once_with_its_fleet_members():
    pools = fleet_overview(MODEL, VMTAS)["pools"]
    assert pools == [
        {"name": "tx", "traffic": "transactional", "region": "-", "vmtas": "tx-01, tx-02"},
        {"name": "mk", "traffic": "-", "region": "eu", "vmtas": "mk-01"},
        {"name": "idle", "traffic": "-", "region": "-", "vmtas": "(none)"},
    ]


def test_host_rows_fill_unknown_units_and_age_the_metrics_file():
    host_vars = {"h1": {"ansible_host": "198.18.0.2", "__summary_units_state": {"stdout_lines": ["active"]},
                        "__summary_metrics": {"stat": {"exists": True, "mtime": 100.0}}},
                 "h2": {"__summary_metrics": {"stat": {"exists": False}}}}
    rows = host_rows(["h1", "h2"], host_vars, now=142.9)
    assert rows[0] == {"host": "h1", "address": "198.18.0.2", "units": ["active", "?", "?"], "metrics": "42 s old"}
    assert rows[1] == {"host": "h2", "address": "h2", "units": ["?", "?", "?"], "metrics": "missing"}


def test_dns_rows_mark_what_the_server_has_differently():
    records = [{"name": "example.com.", "type": "TXT", "values": ["v=spf1 -all"]},
               {"name": "mta10.example.com", "type": "A", "values": ["203.0.113.10"]}]
    found = dns_rows(records, [{"name": "mta10.example.com.", "type": "A"}])
    states = [(row["name"], row["state"]) for row in found["rows"]]
    assert states == [("example.com", "published"), ("mta10.example.com", "DIFFERS")]
    assert (found["as_wanted"], found["wanted"]) == (1, 2)


def test_counts_read_as_jinja_int_reads_them():
    assert [as_count(value) for value in (3, "4", "2.5", None, "x")] == [3, 4, 2, 0, 0]


def test_mail_table_sums_hosts_and_compares_with_the_sinks():
    stats = [{"isp": "gmail", "ip": "203.0.113.10", "delivered": 5, "deferred": 1, "bounced": 2, "complaints": 0},
             {"isp": "gmail", "ip": "203.0.113.10", "delivered": "3", "deferred": 0, "bounced": 1, "complaints": 1},
             {"isp": "yahoo", "ip": "203.0.113.11", "delivered": 4, "deferred": 0, "bounced": 0, "complaints": 0},
             {"isp": "microsoft", "ip": "203.0.113.21", "delivered": 7, "deferred": 2, "bounced": 0,
              "complaints": 0}]
    sinks = {"gmail": {"203.0.113.10": {"accepted": 8, "deferred": 1, "rejected": 3},
                       "203.0.113.99": {"accepted": 1, "deferred": 0, "rejected": 0},
                       "203.0.113.98": {"accepted": 1, "deferred": 0, "rejected": 0}},
             "yahoo": {"203.0.113.11": {"accepted": 3, "deferred": 0, "rejected": 0}}}
    table = mail_table(stats, sinks, {"203.0.113.10": {"gmail": 10}, "203.0.113.99": {"gmail": 1}})
    assert [(row["isp"], row["ip"], row["agree"]) for row in table["rows"]] == [
        ("gmail", "203.0.113.10", "yes"), ("gmail", "203.0.113.99", "NO"), ("microsoft", "203.0.113.21", "-"),
        ("yahoo", "203.0.113.11", "NO")]  # 203.0.113.98: seen by a sink, never injected through: left out
    first = table["rows"][0]
    assert (first["delivered"], first["bounced"], first["complaints"], first["injected"]) == (8, 3, 1, 10)
    assert table["rows"][2]["accepted"] == "-"
    assert table["rows"][1]["delivered"] == 0
    assert (table["agree"], table["differ"], table["sinks"]) == (1, 2, True)


def test_mail_table_without_sinks_or_records():
    assert mail_table([], {}, {}) == {"rows": [], "agree": 0, "differ": 0, "sinks": False}


def test_warmup_rows_show_stage_and_daily_limit_per_isp_group():
    host_vars = {
        "h1": {"warmup_schedule": {"default": [50, 100], "gmail": [20, 40]},
               "ansible_local": {"pmta_warmup": {"ips": {"203.0.113.11": {
                   "gmail": {"stage": 2, "status": "warming"}, "yahoo": {"stage": 1, "status": "paused"},
                   "other": {"stage": 2, "status": "done"}, "apple": {"stage": 3, "status": "warming"}}}}}},
        "h2": {"ansible_local": {"pmta_warmup": {"ips": {"198.51.100.9": {"gmail": {"stage": 1,
                                                                                    "status": "warming"}}}}}},
        "h3": {},
    }
    rows = warmup_rows(["h1", "h2", "h3"], host_vars, VMTAS, ["gmail", "yahoo", "apple", "other", "comcast"])
    assert rows == [
        {"ip": "203.0.113.11", "vmta": "mk-01", "cells": ["2 40/d", "1 paused", "3 ", "done", "-"]},
        {"ip": "198.51.100.9", "vmta": "?", "cells": ["1 ", "-", "-", "-", "-"]},
    ]


def test_mailbox_table_from_the_compare_output_and_the_login_file():
    compare = json.dumps({"groups": {"yahoo": {"mailbox_dsns": 1, "mailbox_arf": 0, "duplicates": 0, "sink_bounces": 1,
                                               "sink_complaints": 0, "agree": True},
                                     "Gmail": {"mailbox_dsns": 2, "mailbox_arf": 1, "suppressed": 3, "duplicates": 0,
                                               "sink_bounces": 2, "sink_complaints": 1, "agree": False}},
                          "agree": False, "missing": {"gmail": ["a@gmail.test"]}})
    table = summary.mailbox_table(compare, json.dumps({"host": "127.0.0.1", "port": 1143, "user": "injector",
                                                       "password": "not shown"}))
    assert table["login"] == {"host": "127.0.0.1", "port": 1143, "user": "injector"}
    assert [(row["isp"], row["suppressed"]) for row in table["rows"]] == [("Gmail", 3), ("yahoo", "-")]
    assert (table["agree"], table["missing"], table["unexpected"]) == (False, {"gmail": ["a@gmail.test"]}, {})
    assert "error" not in table


def test_mailbox_table_error_and_nothing_known():
    assert summary.mailbox_table('{"error": "IMAP login refused"}', None) == {
        "login": {"host": "?", "port": "?", "user": "?"}, "error": "IMAP login refused"}
    assert summary.mailbox_table("", "") == {"login": {"host": "?", "port": "?", "user": "?"}, "rows": [],
                                             "agree": False, "missing": {}, "unexpected": {}}
