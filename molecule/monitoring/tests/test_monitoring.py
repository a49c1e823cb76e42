"""The monitoring role on a bench host running the PowerMTA TEST DOUBLE."""

import json
import re
import time
from pathlib import Path

import pytest

CHECK = "/usr/local/lib/nagios/plugins/check_pmta"
COLLECTOR = "/usr/local/sbin/pmta-metrics-collector"
TEXTFILE = "/var/lib/prometheus/node-exporter/pmta.prom"
QUEUE_HOOK = "/etc/pmta/TEST-DOUBLE-queue.json"
PERF_RE = re.compile(r"^('[^']+'|[^ '=]+)=(-?[0-9.]+)([a-zA-Z%]*)(;(-?[0-9.]*)){0,4}$")


def check(host, *args):
    result = host.run(" ".join([CHECK, *args]))
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return result.rc, lines[0]


def perfdata(line):
    assert " | " in line, line
    items = line.split(" | ", 1)[1].split()
    for item in items:
        assert PERF_RE.match(item), item
    return {item.split("=")[0]: item.split("=")[1] for item in items}


def samples(text):
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


@pytest.fixture
def queue_hook(host):
    def write(document):
        host.run("cat > %s <<'EOF'\n%s\nEOF" % (QUEUE_HOOK, json.dumps(document)))

    yield write
    host.run("rm -f %s" % QUEUE_HOOK)


def test_ok_on_a_healthy_host(host):
    rc, line = check(host)
    assert rc == 0, line
    assert line.startswith("PMTA OK - service pmta active; service pmtahttp active")
    perf = perfdata(line)
    assert perf["queued_recipients"].startswith("0;50000;200000")
    assert "backoff_queues" in perf and "license_days" in perf and "spool_free_pct" in perf


def test_json_output_for_zabbix(host):
    result = host.run(CHECK + " --json")
    document = json.loads(result.stdout)
    assert result.rc == 0 and document["state"] == "OK"
    assert {c["name"] for c in document["checks"]} >= {"service_pmta", "http_status", "queued_recipients"}


def test_warning_then_critical_on_a_deep_queue(host, queue_hook):
    queue_hook({"smtp": {"rcp": 60000, "dom": 12, "kb": 9000}, "queues": []})
    rc, line = check(host)
    assert rc == 1 and "60000 recipients queued (warning at 50000)" in line, line
    queue_hook({"smtp": {"rcp": 250000, "dom": 12, "kb": 900000},
                "queues": [{"name": "gmail.com/mk-eu-01", "rcp": 200000, "mode": "backoff"},
                           {"name": "yahoo.com/mk-eu-01", "rcp": 50000, "mode": "normal"}]})
    rc, line = check(host)
    assert rc == 2, line
    assert "250000 recipients queued (critical at 200000)" in line
    assert "1 queue in backoff (gmail.com/mk-eu-01)" in line
    assert perfdata(line)["queued_recipients"].startswith("250000;")


def test_critical_when_pmta_is_stopped(host):
    host.run("systemctl stop pmta")
    try:
        rc, line = check(host)
        assert rc == 2 and "service pmta is inactive" in line, line
    finally:
        host.run("systemctl start pmta")
    host.run("for i in $(seq 20); do " + CHECK + " >/dev/null && break; sleep 1; done")
    assert check(host)[0] == 0


def test_unknown_when_the_status_endpoint_is_unreachable(host):
    rc, line = check(host, "--url", "http://127.0.0.1:1/status?format=json")
    assert rc == 3 and "status endpoint unreachable" in line, line


def test_status_endpoint_is_loopback_only(host):
    address = host.ansible.get_variables()["ansible_host"]
    local = host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/status?format=json")
    remote = host.run("curl -s -o /dev/null -w '%%{http_code}' --max-time 5 http://%s:8080/status?format=json"
                      % address)
    assert local.stdout == "200"
    assert remote.stdout != "200"


def test_timer_and_node_exporter_serve_the_metrics(host):
    assert host.service("pmta-metrics.timer").is_running
    assert host.service("pmta-metrics.timer").is_enabled
    assert host.file(TEXTFILE).mode == 0o644
    # The timer collects every 60 s: after the stop/start of an earlier test the file may still say 0 for a while.
    host.run("for i in $(seq 75); do curl -sf http://127.0.0.1:9100/metrics | grep -q '^pmta_status_up 1' && break;"
             " sleep 1; done")
    exported = samples(host.check_output("curl -sf http://127.0.0.1:9100/metrics | grep '^pmta_'"))
    assert exported["pmta_status_up"] == 1
    assert exported["pmta_health_state"] == 0
    assert exported['pmta_service_active{unit="pmta"}'] == 1
    assert "pmta_queued_recipients" in exported
    assert exported["pmta_license_days_remaining"] > 1000


def test_accounting_counters_follow_injected_mail(host):
    # The test double delivers for real; this isolated host reaches no MX, so each recipient's first attempt
    # is a t record in diag.csv (outcome "deferred"; "delivered" where an MX answers), with possibly a queue-level
    # tq record beside it; retries come only after retry-after (10 min).
    def records():
        host.check_output(COLLECTOR)
        values = samples(host.file(TEXTFILE).content_string)
        return sum(v for k, v in values.items() if k.startswith("pmta_acct_records_total{"))

    before = records()
    host.check_output(
        "python3 -c \"import smtplib; s = smtplib.SMTP('127.0.0.1', 25, timeout=10); "
        "s.sendmail('news@example.com', ['a@gmail.com', 'b@example.org'], "
        "'Subject: metrics test\\r\\n\\r\\nhello\\r\\n'); s.quit()\"")
    deadline = time.monotonic() + 60
    after = records()
    while after < before + 2 and time.monotonic() < deadline:
        time.sleep(2)
        after = records()
    assert after >= before + 2
    values = samples(host.file(TEXTFILE).content_string)
    assert any('isp="gmail"' in k for k in values if k.startswith("pmta_acct_records_total{"))
    # the next run without new mail keeps the counter
    assert records() == after


def test_files_and_modes(host):
    assert host.file("/etc/mailops-powermta/metrics.json").mode == 0o640
    assert host.file("/etc/mailops-powermta/check_pmta.json").mode == 0o644
    assert host.file("/var/lib/mailops-powermta").mode == 0o750
    assert host.file(CHECK).mode == 0o755
    settings = json.loads(host.file("/etc/mailops-powermta/check_pmta.json").content_string)
    assert settings["status_url"] == "http://127.0.0.1:8080/status?format=json"


def test_warmup_and_blocklist_metrics_from_the_local_facts(host):
    state = {"version": 1, "updated_at": "2026-11-21T06:00:00Z", "ips": {"203.0.113.11": {
        "gmail": {"stage": 3, "status": "warming", "stage_started_at": "2026-11-21T06:00:00Z"},
        "yahoo": {"stage": 2, "status": "paused", "stage_started_at": "2026-11-21T06:00:00Z"},
    }}}
    dnsbl = {"blocklisted": {"203.0.113.11": ["zen.spamhaus.org"]}, "checked_at": "2026-11-21T06:00:00Z"}
    host.run("mkdir -p /etc/ansible/facts.d")
    host.run("cat > /etc/ansible/facts.d/pmta_warmup.fact <<'EOF'\n%s\nEOF" % json.dumps(state))
    host.run("cat > /etc/ansible/facts.d/pmta_dnsbl.fact <<'EOF'\n%s\nEOF" % json.dumps(dnsbl))
    try:
        host.check_output(COLLECTOR)
        values = samples(host.file(TEXTFILE).content_string)
        assert values['pmta_warmup_stage{ip="203.0.113.11",isp="gmail"}'] == 3
        assert values['pmta_warmup_daily_limit{ip="203.0.113.11",isp="gmail"}'] == 1000  # default schedule stage 3
        assert values['pmta_warmup_daily_limit{ip="203.0.113.11",isp="yahoo"}'] == 0
        assert values['pmta_blocklisted{ip="203.0.113.11"}'] == 1
        assert values['pmta_blocklist_listed{ip="203.0.113.11",zone="zen.spamhaus.org"}'] == 1
        assert values["pmta_collector_errors"] == 0
    finally:
        host.run("rm -f /etc/ansible/facts.d/pmta_warmup.fact /etc/ansible/facts.d/pmta_dnsbl.fact")


def test_blocklist_metrics_from_the_fact_the_warmup_step_writes(host):
    """The warm-up step keeps warmup_dnsbl_check's results for the host's IPs in pmta_dnsbl.fact (roles/warmup
    gather.yml); an IP checked and not listed shows 0, not "no data". The state carries an approach
    level below a throttled ceiling (cap), which is the daily limit the collector must report."""
    state = {"version": 1, "updated_at": "2026-11-21T06:00:00Z", "ips": {"203.0.113.12": {
        "yahoo": {"stage": 4, "status": "warming", "stage_started_at": "2026-11-21T06:00:00Z", "cap": 2750,
                  "ceiling": {"limit": 5000, "until": "2026-11-28T06:00:00Z", "step": 750}},
    }}}
    dnsbl = {"checked_at": "2026-11-21T06:00:00Z", "findings": [], "unusable_zones": [], "results": [
        {"ip": "203.0.113.11", "zone": "bl.example.test", "status": "listed", "codes": ["127.0.0.2"]},
        {"ip": "203.0.113.12", "zone": "bl.example.test", "status": "not_listed", "codes": []},
    ]}
    host.run("mkdir -p /etc/ansible/facts.d")
    host.run("cat > /etc/ansible/facts.d/pmta_warmup.fact <<'EOF'\n%s\nEOF" % json.dumps(state))
    host.run("cat > /etc/ansible/facts.d/pmta_dnsbl.fact <<'EOF'\n%s\nEOF" % json.dumps(dnsbl))
    try:
        host.check_output(COLLECTOR)
        values = samples(host.file(TEXTFILE).content_string)
        assert values["pmta_blocklist_data_present"] == 1
        assert values['pmta_blocklisted{ip="203.0.113.11"}'] == 1
        assert values['pmta_blocklisted{ip="203.0.113.12"}'] == 0
        assert values['pmta_blocklist_listed{ip="203.0.113.11",zone="bl.example.test"}'] == 1
        assert values['pmta_warmup_daily_limit{ip="203.0.113.12",isp="yahoo"}'] == 2750
        assert values["pmta_collector_errors"] == 0
    finally:
        host.run("rm -f /etc/ansible/facts.d/pmta_warmup.fact /etc/ansible/facts.d/pmta_dnsbl.fact")


DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana-dashboard.json"


def panel_series(host, title, instance="mon-n1"):
    """Evaluate the dashboard panel TITLE on node_exporter's scrape of HOST as Prometheus would with the Host
    variable at All (the scrape adds ``instance``): {refId: [labels of each series]}. Only the selector-and-comparison
    form the panels use is understood; anything else fails."""
    panel = next(p for p in json.loads(DASHBOARD.read_text())["panels"] if p.get("title") == title)
    scraped = []
    for line in host.check_output("curl -sf http://127.0.0.1:9100/metrics").splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""), instance=instance)
            scraped.append((match.group(1), labels, float(match.group(3))))
    out = {}
    for target in panel["targets"]:
        expr = re.fullmatch(r"(\w+)\{(.*)\}\s*==\s*(\S+)", target["expr"].strip())
        assert expr, "panel %r: cannot evaluate %r here" % (title, target["expr"])
        matchers = re.findall(r'(\w+)(=~|=)"([^"]*)"', expr.group(2))
        out[target["refId"]] = [
            labels for name, labels, value in scraped
            if name == expr.group(1) and value == float(expr.group(3)) and all(
                (re.fullmatch(".*" if want == "$instance" else want, labels.get(label, "")) is not None)
                if op == "=~" else labels.get(label, "") == want for label, op, want in matchers)]
    return out


def test_grafana_blocklist_panel_returns_the_listing(host):
    """The "Blocklisted IPs" panel's queries, on what node_exporter serves after the collector read a DNSBL fact in
    the form the warm-up step writes (warmup_dnsbl_check results; the end-to-end run with the real step and BIND 9 is
    molecule/mailflow test_warmup_lab.py): one series for the listed IP and zone, none for the clean IP."""
    dnsbl = {"checked_at": "2026-11-21T06:00:00Z", "findings": [], "unusable_zones": [], "results": [
        {"ip": "203.0.113.11", "zone": "bl.example.test", "status": "listed", "codes": ["127.0.0.2"]},
        {"ip": "203.0.113.12", "zone": "bl.example.test", "status": "not_listed", "codes": []},
    ]}
    host.run("mkdir -p /etc/ansible/facts.d")
    host.run("cat > /etc/ansible/facts.d/pmta_dnsbl.fact <<'EOF'\n%s\nEOF" % json.dumps(dnsbl))
    try:
        host.check_output(COLLECTOR)
        panel = panel_series(host, "Blocklisted IPs")
        assert [(s["ip"], s["zone"]) for s in panel["A"]] == [("203.0.113.11", "bl.example.test")], panel
    finally:
        host.run("rm -f /etc/ansible/facts.d/pmta_dnsbl.fact")
        host.check_output(COLLECTOR)
    assert panel_series(host, "Blocklisted IPs")["A"] == []
