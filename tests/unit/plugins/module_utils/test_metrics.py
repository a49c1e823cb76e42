import http.server
import importlib.util
import json
import os
import pathlib
import re
import threading

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._monitoring import health, metrics
from ansible_collections.mailops.powermta.plugins.module_utils._operations import suppression as _suppression
from ansible_collections.mailops.powermta.plugins.module_utils._warmup import engine as warmup

# The standard-library fetcher the monitoring role installs next to _monitoring/health.py on hosts.
_FETCH_SPEC = importlib.util.spec_from_file_location(
    "stdlib_fetch", pathlib.Path(__file__).resolve().parents[4] / "roles" / "monitoring" / "files" / "stdlib_fetch.py")
stdlib_fetch = importlib.util.module_from_spec(_FETCH_SPEC)
_FETCH_SPEC.loader.exec_module(stdlib_fetch)

HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
          "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool\n")


def record(kind, rcpt, vmta="mk-01", ip="203.0.113.11", diag="smtp;250 ok", category=""):
    fields = [kind, "2026-11-22 05:00:00+0000", "2026-11-22 04:59:00+0000", "news@example.com", rcpt, "",
              "relayed", "2.0.0", diag, "mx.example.test (192.0.2.25)", category, "smtp", "injector.example.com",
              "smtp", ip, "192.0.2.25", "PIPELINING", "1024", vmta, "job1", "", "", "marketing"]
    return ",".join(fields) + "\n"


# Prometheus text format 0.0.4, one sample line
SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                       r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def parse_exposition(text):
    """Every line is a comment or a valid sample; returns {name{labels}: value}."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        assert SAMPLE_RE.match(line), line
        key, value = line.rsplit(" ", 1)
        samples[key] = float(value)
    return samples


def test_registry_renders_valid_exposition_with_escaping():
    registry = metrics.Registry()
    registry.add("pmta_test", "gauge", "A test.", 1.5, {"path": 'C:\\spool "a"\nb'})
    registry.add("pmta_test", "gauge", "A test.", 2, {"path": "/var/spool/pmta"})
    registry.add("pmta_count_total", "counter", "Counts.", 7)
    text = registry.render()
    assert '# TYPE pmta_test gauge' in text and '# TYPE pmta_count_total counter' in text
    assert 'pmta_test{path="C:\\\\spool \\"a\\"\\nb"} 1.5' in text
    samples = parse_exposition(text)
    assert samples['pmta_test{path="/var/spool/pmta"}'] == 2
    with pytest.raises(metrics.MetricsError):
        registry.add("pmta_test", "counter", "x", 1)


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "pmta.prom"
    target.write_text("old\n")
    metrics.write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pmta.prom"]


def counters(state):
    return {tuple(key.split("\t")): value for key, value in state["counters"].items()}


def test_accounting_is_read_incrementally(tmp_path):
    acct = tmp_path / "acct.csv"
    acct.write_text(HEADER + record("d", "a@gmail.com") + record("d", "b@gmail.com") + record("d", "c@example.org")
                    + record("b", "d@yahoo.com", diag="smtp;550 no such user", category="bad-mailbox")
                    + record("t", "e@gmail.com", diag="smtp;421 4.7.28 Our system has detected an unusual rate"))
    state = {"version": 1, "files": {}, "counters": {}}
    summary = metrics.read_new_accounting(state, [str(tmp_path / "acct*.csv")])
    assert summary["records"] == 5
    assert metrics.HARD_BOUNCE_CATEGORIES == _suppression.HARD_CATEGORIES  # one meaning of "hard" in both
    got = counters(state)
    assert got[("mk-01", "203.0.113.11", "gmail", "delivered")] == 2
    assert got[("mk-01", "203.0.113.11", "other", "delivered")] == 1
    assert got[("mk-01", "203.0.113.11", "yahoo", "bounced")] == 1
    # bad-mailbox is a hard bounce (guide §11.6): the per-ISP x IP hard-bounce rate of the alert rules
    assert got[("mk-01", "203.0.113.11", "yahoo", "hard_bounced")] == 1
    assert ("mk-01", "203.0.113.11", "gmail", "hard_bounced") not in got
    assert got[("mk-01", "203.0.113.11", "gmail", "deferred")] == 1
    assert got[("mk-01", "203.0.113.11", "gmail", "throttled")] == 1

    # nothing new: nothing changes
    assert metrics.read_new_accounting(state, [str(acct)])["records"] == 0
    assert counters(state) == got

    # a record half written waits for its end of line
    partial = record("d", "f@gmail.com", vmta="mk-02")
    with acct.open("a") as handle:
        handle.write(record("d", "g@gmail.com") + partial[:30])
    metrics.read_new_accounting(state, [str(acct)])
    assert counters(state)[("mk-01", "203.0.113.11", "gmail", "delivered")] == 3
    assert ("mk-02", "203.0.113.11", "gmail", "delivered") not in counters(state)
    with acct.open("a") as handle:
        handle.write(partial[30:])
    metrics.read_new_accounting(state, [str(acct)])
    assert counters(state)[("mk-02", "203.0.113.11", "gmail", "delivered")] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acct.csv"]  # no temporary copies


def test_accounting_follows_rotation_and_replacement(tmp_path):
    acct = tmp_path / "acct.csv"
    acct.write_text(HEADER + record("d", "a@gmail.com"))
    state = {"version": 1, "files": {}, "counters": {}}
    pattern = [str(tmp_path / "acct*.csv")]
    metrics.read_new_accounting(state, pattern)
    # PowerMTA's max-size rotation: the file is renamed, a new one starts with its own header
    with acct.open("a") as handle:
        handle.write(record("d", "b@gmail.com"))
    os.rename(acct, tmp_path / "acct-0001.csv")
    acct.write_text(HEADER + record("d", "c@gmail.com"))
    metrics.read_new_accounting(state, pattern)
    assert counters(state)[("mk-01", "203.0.113.11", "gmail", "delivered")] == 3
    # a file replaced by a shorter one (new content) is read from the start
    os.unlink(tmp_path / "acct-0001.csv")
    acct.write_text(HEADER)
    metrics.read_new_accounting(state, pattern)
    with acct.open("a") as handle:
        handle.write(record("d", "d@gmail.com"))
    metrics.read_new_accounting(state, pattern)
    assert counters(state)[("mk-01", "203.0.113.11", "gmail", "delivered")] == 4
    assert len(state["files"]) == 1


def test_accounting_backlog_is_caught_up_in_slices(tmp_path):
    acct = tmp_path / "acct.csv"
    acct.write_text(HEADER + "".join(record("d", "u%d@gmail.com" % i) for i in range(50)))
    state = {"version": 1, "files": {}, "counters": {}}
    runs = 0
    while True:
        summary = metrics.read_new_accounting(state, [str(acct)], max_bytes=2000)
        runs += 1
        if not summary["bytes"]:
            break
    assert runs > 3
    assert counters(state)[("mk-01", "203.0.113.11", "gmail", "delivered")] == 50


def test_lost_state_reads_the_header_from_the_first_line(tmp_path):
    acct = tmp_path / "acct.csv"
    acct.write_text(HEADER + record("d", "a@gmail.com"))
    info = acct.stat()
    state = {"version": 1, "counters": {}, "files": {"%d:%d" % (info.st_dev, info.st_ino): {"offset": info.st_size}}}
    with acct.open("a") as handle:
        handle.write(record("b", "b@gmail.com", category="bad-mailbox"))
    metrics.read_new_accounting(state, [str(acct)])
    assert counters(state) == {("mk-01", "203.0.113.11", "gmail", "bounced"): 1,
                               ("mk-01", "203.0.113.11", "gmail", "hard_bounced"): 1}


def warmup_state():
    observations = {"203.0.113.11": {"gmail": {"sent": 100, "delivered": 100}}}
    first = warmup.plan(state=None, observations=observations, now="2026-11-20T00:00:00Z", ips=["203.0.113.11"],
                        isps=["gmail", "other"], schedule={"default": [100, 1000]},
                        thresholds={"min_stage_hours": 0})["state"]
    return warmup.plan(state=first, observations={}, blocklisted={"203.0.113.11": ["zen.spamhaus.org"]},
                       now="2026-11-21T00:00:00Z", ips=["203.0.113.11"], isps=["gmail", "other"],
                       schedule={"default": [100, 1000]})["state"], first


def test_warmup_metrics_stage_limit_status():
    paused, first = warmup_state()
    registry = metrics.Registry()
    metrics.add_warmup_metrics(registry, first, {"default": [100, 1000]})
    assert registry.value("pmta_warmup_stage", ip="203.0.113.11", isp="gmail") == 2
    assert registry.value("pmta_warmup_daily_limit", ip="203.0.113.11", isp="gmail") == 1000
    assert registry.value("pmta_warmup_daily_limit", ip="203.0.113.11", isp="other") == 100
    assert registry.value("pmta_warmup_status", ip="203.0.113.11", isp="gmail", status="warming") == 1
    registry = metrics.Registry()
    metrics.add_warmup_metrics(registry, paused, {"default": [100, 1000]})
    assert registry.value("pmta_warmup_daily_limit", ip="203.0.113.11", isp="gmail") == 0
    assert registry.value("pmta_warmup_status", ip="203.0.113.11", isp="gmail", status="paused") == 1
    assert registry.value("pmta_warmup_updated_timestamp_seconds") == 1795219200
    registry = metrics.Registry()
    metrics.add_warmup_metrics(registry, None)
    assert registry.value("pmta_warmup_state_present") == 0


@pytest.mark.parametrize(
    "document",
    [
        {"blocklisted": {"203.0.113.11": ["zen.spamhaus.org"], "203.0.113.12": []},
         "checked_at": "2026-11-21T00:00:00Z"},
        {"results": [
            {"ip": "203.0.113.11", "zone": "zen.spamhaus.org", "status": "listed"},
            {"ip": "203.0.113.11", "zone": "b.barracudacentral.org", "status": "not_listed"},
            {"ip": "203.0.113.12", "zone": "zen.spamhaus.org", "status": "policy"},
        ], "checked_at": "2026-11-21T00:00:00Z"},
    ],
)
def test_blocklist_metrics_from_both_shapes(document):
    registry = metrics.Registry()
    metrics.add_blocklist_metrics(registry, document, ["203.0.113.13"])
    assert registry.value("pmta_blocklisted", ip="203.0.113.11") == 1
    assert registry.value("pmta_blocklisted", ip="203.0.113.12") == 0
    assert registry.value("pmta_blocklisted", ip="203.0.113.13") == 0
    assert registry.value("pmta_blocklist_listed", ip="203.0.113.11", zone="zen.spamhaus.org") == 1
    assert registry.value("pmta_blocklist_checked_timestamp_seconds") == 1795219200
    empty = metrics.Registry()
    metrics.add_blocklist_metrics(empty, None)
    assert empty.value("pmta_blocklist_data_present") == 0


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"data": {"status": {
            "queue": {"smtp": {"rcp": 42, "dom": 3, "kb": 1.5}},
            "conn": {"smtpIn": {"cur": 2}, "smtpOut": {"cur": 7}},
            "traffic": {"total": {"in": {"rcp": 900}, "out": {"rcp": 800}}, "lastHr": {"out": {"rcp": 10}}},
        }}}).encode())

    def log_message(self, *args):
        pass


def test_collector_writes_the_textfile(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        acct = tmp_path / "acct.csv"
        acct.write_text(HEADER + record("d", "a@gmail.com") + record("d", "b@gmail.com"))
        paused, _state = warmup_state()
        (tmp_path / "pmta_warmup.fact").write_text(json.dumps(paused))
        (tmp_path / "pmta_dnsbl.fact").write_text(json.dumps({"blocklisted": {"203.0.113.11": ["zen.spamhaus.org"]}}))
        config = {
            "output": str(tmp_path / "textfile" / "pmta.prom"),
            "state_file": str(tmp_path / "state" / "metrics-state.json"),
            "acct_files": [str(tmp_path / "acct*.csv")],
            "warmup_fact": str(tmp_path / "pmta_warmup.fact"),
            "warmup_schedule": {"default": [100, 1000]},
            "dnsbl_fact": str(tmp_path / "pmta_dnsbl.fact"),
            "health": {"services": [], "pmta_binary": None, "license_file": None, "check_license": False,
                       "spool_dirs": [str(tmp_path)], "acct_file": str(acct),
                       "status_url": "http://127.0.0.1:%d/status?format=json" % server.server_port},
        }
        (tmp_path / "textfile").mkdir()
        (tmp_path / "metrics.json").write_text(json.dumps(config))
        assert metrics.collector_main(["--config", str(tmp_path / "metrics.json")], fetch=stdlib_fetch.fetch) == 0
        samples = parse_exposition((tmp_path / "textfile" / "pmta.prom").read_text())
        assert samples["pmta_status_up"] == 1
        assert samples["pmta_queued_recipients"] == 42
        assert samples['pmta_smtp_connections{direction="out"}'] == 7
        assert samples['pmta_acct_records_total{ip="203.0.113.11",isp="gmail",outcome="delivered",vmta="mk-01"}'] == 2
        assert samples['pmta_warmup_daily_limit{ip="203.0.113.11",isp="gmail"}'] == 0
        assert samples['pmta_blocklisted{ip="203.0.113.11"}'] == 1
        assert samples["pmta_health_state"] == health.OK
        assert samples["pmta_collector_errors"] == 0
        assert any(key.startswith("pmta_spool_free_ratio{path=") for key in samples)
        # counters survive the next run and only grow
        with acct.open("a") as handle:
            handle.write(record("d", "c@gmail.com"))
        assert metrics.collector_main(["--config", str(tmp_path / "metrics.json")], fetch=stdlib_fetch.fetch) == 0
        samples = parse_exposition((tmp_path / "textfile" / "pmta.prom").read_text())
        assert samples['pmta_acct_records_total{ip="203.0.113.11",isp="gmail",outcome="delivered",vmta="mk-01"}'] == 3
        assert oct((tmp_path / "state" / "metrics-state.json").stat().st_mode & 0o777) == oct(0o640)
    finally:
        server.shutdown()
        server.server_close()


def test_a_full_spool_shows_in_the_metrics(tmp_path):
    """Below PowerMTA's min-free-space (§3.3.2.4, statvfs of a real directory): not accepting, health CRITICAL."""
    thresholds = health.validate_thresholds({"spool_min_free_bytes": 1024 ** 5 * 1000})  # more than any disk here
    total, free = health.probe_statvfs(str(tmp_path))
    results = [health.evaluate_spool(str(tmp_path), total, free, thresholds)]
    registry = metrics.Registry()
    metrics.add_health_metrics(registry, results, None)
    samples = parse_exposition(registry.render())
    path = str(tmp_path)
    assert samples['pmta_spool_accepting{path="%s"}' % path] == 0
    assert samples['pmta_spool_free_bytes{path="%s"}' % path] == free > 0
    assert samples['pmta_health_check_state{check="%s"}' % results[0].name] == health.CRITICAL
    assert samples["pmta_health_state"] == health.CRITICAL
    roomy = [health.evaluate_spool(path, total, free, health.validate_thresholds({}))]
    registry = metrics.Registry()
    metrics.add_health_metrics(registry, roomy, None)
    assert parse_exposition(registry.render())['pmta_spool_accepting{path="%s"}' % path] == 1


def test_collector_rejects_unknown_settings(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text(json.dumps({"outptu": "/tmp/x"}))
    assert metrics.collector_main(["--config", str(tmp_path / "metrics.json")]) == 2
    assert "unknown keys outptu" in capsys.readouterr().err


def test_dashboard_and_docs_only_use_metrics_the_collector_writes():
    import pathlib

    root = pathlib.Path(__file__).parents[4]
    written = set(re.findall(r'"(pmta_[a-z_]+)"', pathlib.Path(metrics.__file__).read_text()))
    dashboard = json.loads((root / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {name for expr in exprs for name in re.findall(r"pmta_[a-z_]+", expr)}
    assert used and used <= written, used - written
    documented = set(re.findall(r"`(pmta_[a-z_]+)`", (root / "docs" / "monitoring.md").read_text()))
    assert documented <= written, documented - written
    assert written <= documented | {"pmta_test"}, written - documented
