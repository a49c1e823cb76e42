"""After the four warm-up steps (converge + side_effect): files, state, previous state, report.

Runs with testinfra on the bench host; the controller's report is read directly.
"""

import json
import os
import re

STATE = "/etc/ansible/facts.d/pmta_warmup.fact"
PREV = "/etc/ansible/facts.d/pmta_warmup.fact.prev"


def read_json(host, path):
    return json.loads(host.file(path).content_string)


def test_state_is_the_last_step_and_prev_the_one_before(host):
    state = read_json(host, STATE)
    prev = read_json(host, PREV)
    assert state["updated_at"] == "2026-05-04T06:00:00Z"
    assert prev["updated_at"] == "2026-05-03T06:00:00Z"
    assert prev["ips"]["203.0.113.11"]["yahoo"]["last_action"] == "rollback"
    assert state["ips"]["203.0.113.11"]["gmail"]["status"] == "paused"
    assert state["ips"]["203.0.113.12"]["gmail"]["stage"] == 4
    assert "203.0.113.10" not in state["ips"]  # tx-01 is not warming up
    for path in (STATE, PREV):
        fact = host.file(path)
        assert fact.user == "root" and fact.mode == 0o644  # not executable: setup would run it


def test_rendered_rates_use_only_real_directives_and_the_macros(host):
    mk01 = host.file("/etc/pmta/conf.d/warmup.d/mk-01.conf")
    mk02 = host.file("/etc/pmta/conf.d/warmup.d/mk-02.conf")
    for conf in (mk01, mk02):
        assert (conf.user, conf.group, conf.mode) == ("root", "pmta", 0o640)
    text = mk02.content_string
    blocks = re.findall(r"^<domain (\S+)>\n(?:    #.*\n)?    max-msg-rate (\d+)/d\n</domain>$", text, re.M)
    assert blocks == [("$gmail", "2000"), ("$yahoo", "2000"), ("$microsoft", "2000"), ("$apple", "200"),
                      ("$comcast", "200"), ("*", "200")]
    directives = {line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    assert directives == {"<domain", "max-msg-rate", "</domain>"}
    assert "max-msg-rate 1/d" in mk01.content_string and "pause: listed on bl.example.test" in mk01.content_string


def test_powermta_accepts_the_config_and_no_backup_is_left(host):
    assert host.run("/usr/sbin/pmta test config").rc == 0
    assert sorted(host.file("/etc/pmta/conf.d/warmup.d").listdir()) == ["mk-01.conf", "mk-02.conf"]


def test_report_on_the_controller():
    directory = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "warmup-report")
    with open(os.path.join(directory, "warmup-report.json")) as handle:
        report = json.load(handle)
    rows = {(r["vmta"], r["isp"]): r for r in report["rows"]}
    assert len(rows) == 12
    assert (rows[("mk-01", "yahoo")]["action"], rows[("mk-01", "yahoo")]["daily_limit"]) == ("pause", 0)
    assert rows[("mk-02", "gmail")]["stage"] == 4
    assert report["dnsbl"]["summary"]["listed"] == 1
    assert report["dnsbl"]["zones"][0]["usable"] is True
    with open(os.path.join(directory, "warmup-report.md")) as handle:
        markdown = handle.read()
    assert "| warmup-n1 | mk-02 | 203.0.113.12 | gmail | 4/5 | 2000 | advance |" in markdown
