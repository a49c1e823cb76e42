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
    mk00 = host.file("/etc/pmta/conf.d/warmup.d/mk-00.conf")
    mk01 = host.file("/etc/pmta/conf.d/warmup.d/mk-01.conf")
    mk02 = host.file("/etc/pmta/conf.d/warmup.d/mk-02.conf")
    for conf in (mk00, mk01, mk02):
        assert (conf.user, conf.group, conf.mode) == ("root", "pmta", 0o640)
    # mk-02, pool fresh (no warm IP): per-queue limits and a total for the whole IP, long tail included
    text = mk02.content_string
    blocks = re.findall(r"^<domain (\S+)>\n    max-msg-rate (\d+)/d\n</domain>$", text, re.M)
    assert blocks == [("$gmail", "2000"), ("$yahoo", "2000"), ("$microsoft", "2000"), ("$apple", "200"),
                      ("$comcast", "200"), ("*", "200")]
    assert re.findall(r"^max-smtp-msg-rate (\d+)/d$", text, re.M) == [str(3 * 2000 + 3 * 200)]
    directives = {line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    assert directives == {"max-smtp-msg-rate", "<domain", "max-msg-rate", "</domain>"}
    # mk-01, cold vMTA of mk-00, listed: everything goes out through mk-00, which no longer re-selects it
    assert "listed on bl.example.test" in mk01.content_string
    assert re.search(r"^<domain \*>\n    reroute-to-virtual-mta mk-00\n</domain>$", mk01.content_string, re.M)
    assert "max-msg-rate" not in mk01.content_string
    assert not re.search(r"^cold-virtual-mta", mk00.content_string, re.M)
    assert "Paused (not re-selected while listed): mk-01" in mk00.content_string


def test_the_warming_vmta_beside_a_warm_one_is_its_cold_vmta_not_a_pool_member(host):
    vmtas = host.file("/etc/pmta/conf.d/vmtas.conf").content_string
    pools = dict(re.findall(r"^<virtual-mta-pool (\S+)>\n((?:    virtual-mta \S+\n)+)", vmtas, re.M))
    assert pools["marketing"] == "    virtual-mta mk-00\n"  # mk-01 gets mail only through cold-virtual-mta
    assert pools["fresh"] == "    virtual-mta mk-02\n"
    for name in ("mk-00", "mk-01", "mk-02"):
        assert re.search(r"<virtual-mta %s>\n(?:.*\n)*?    include /etc/pmta/conf.d/warmup.d/%s.conf\n</virtual-mta>"
                         % (name, name), vmtas)
    assert "include /etc/pmta/conf.d/warmup.d/tx-01.conf" not in vmtas


def test_powermta_accepts_the_config_and_no_backup_is_left(host):
    assert host.run("/usr/sbin/pmta test config").rc == 0
    assert sorted(host.file("/etc/pmta/conf.d/warmup.d").listdir()) == ["mk-00.conf", "mk-01.conf", "mk-02.conf"]


def test_the_dnsbl_fact_gives_the_collector_its_blocklist_metrics(host):
    """The step keeps its DNSBL result where the monitoring collector reads it (pmta_dnsbl.fact)."""
    import sys

    fact = host.file("/etc/ansible/facts.d/pmta_dnsbl.fact")
    assert (fact.user, fact.mode) == ("root", 0o644)
    document = json.loads(fact.content_string)
    assert document["checked_at"] == "2026-05-04T06:00:00Z"
    assert {r["ip"] for r in document["results"]} == {"203.0.113.11", "203.0.113.12"}
    module_utils = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir, "plugins", "module_utils")
    sys.path.insert(0, os.path.abspath(module_utils))
    from _monitoring import metrics as _metrics  # the collector's own code, as the monitoring role ships it

    registry = _metrics.Registry()
    _metrics.add_blocklist_metrics(registry, document)
    text = registry.render()
    assert 'pmta_blocklisted{ip="203.0.113.11"} 1' in text
    assert 'pmta_blocklisted{ip="203.0.113.12"} 0' in text
    assert 'pmta_blocklist_listed{ip="203.0.113.11",zone="bl.example.test"} 1' in text
    assert "pmta_blocklist_data_present 1" in text


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
