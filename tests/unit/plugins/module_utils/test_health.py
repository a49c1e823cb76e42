import datetime
import http.server
import importlib.util
import io
import json
import os
import pathlib
import re
import threading

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._monitoring import health

# The standard-library fetcher the monitoring role installs next to _monitoring/health.py on hosts.
_FETCH_SPEC = importlib.util.spec_from_file_location(
    "stdlib_fetch", pathlib.Path(__file__).resolve().parents[4] / "roles" / "monitoring" / "files" / "stdlib_fetch.py")
stdlib_fetch = importlib.util.module_from_spec(_FETCH_SPEC)
_FETCH_SPEC.loader.exec_module(stdlib_fetch)

TODAY = datetime.date(2026, 11, 22)


def status_document(rcp=805, dom=226, out_last_hr=348704, state="running", shutting_down=False):
    """The shape of the User's Guide §6.2.1 sample (numbers are ours)."""
    return {
        "data": {
            "mta": {"product": {"name": "PowerMTA", "version": "5.0r8"}},
            "status": {
                "shuttingDown": shutting_down,
                "traffic": {
                    "total": {"out": {"rcp": 2007007}, "in": {"rcp": 2007845}},
                    "lastHr": {"out": {"rcp": out_last_hr}, "in": {"rcp": 348700}},
                    "lastMin": {"out": {"rcp": 5809}, "in": {"rcp": 5800}},
                },
                "conn": {"smtpIn": {"cur": 1, "max": 5, "top": 1}, "smtpOut": {"cur": 12, "max": 1200, "top": 157}},
                "queue": {
                    "smtp": {"rcp": rcp, "dom": dom, "kb": 5.5},
                    "pipe": {"rcp": 3, "dom": 1, "kb": 0},
                },
                "spool": {"files": {"inUse": 504}, "totalRcp": 805, "maxRcp": 25000},
                "status": state,
            },
        },
        "status": "success",
        "message": "",
    }


THRESHOLDS = health.validate_thresholds({})


def by_name(results):
    return {r.name: r for r in results}


# ------------------------------------------------------------------ parsing
def test_parse_status_reads_documented_fields():
    status = health.parse_status(json.dumps(status_document()))
    assert status["queued_recipients"] == 808  # smtp + pipe
    assert status["queued_recipients_smtp"] == 805
    assert status["queued_domains"] == 226
    assert status["connections_out"] == 12
    assert status["connections_out_max"] == 1200
    assert status["traffic_last_hour_out"] == 348704
    assert status["state"] == "running"
    assert status["version"] == "5.0r8"


def test_parse_status_tolerates_missing_fields():
    status = health.parse_status({"data": {"status": {"status": "running"}}})
    assert status["queued_recipients"] is None
    assert status["connections_in"] is None


@pytest.mark.parametrize("document", ["not json", {"data": {}}, {"status": "success"}, []])
def test_parse_status_rejects_other_documents(document):
    with pytest.raises(health.HealthError):
        health.parse_status(document if not isinstance(document, str) else document)


@pytest.mark.parametrize(
    "document, expected",
    [
        ({"data": {"queues": [{"name": "gmail.com/mk-01", "mode": "backoff"}, {"name": "x/y", "mode": "normal"}]}},
         ["gmail.com/mk-01"]),
        ({"data": [{"domain": "yahoo.com", "vmta": "tx-01"}]}, ["yahoo.com/tx-01"]),
        ({"data": {"queues": []}}, []),
        ({"data": {"status": "x"}}, None),
    ],
)
def test_parse_backoff_queues(document, expected):
    assert health.parse_backoff_queues(json.dumps(document)) == expected


def test_parse_license_file_and_cli_output():
    cli = """  product: PowerMTA
  version: 5.0
 platform: linux-intel
 licensee: Example Corp
   serial: 238478
   issued: 2016-12-10
  expires: 2100-03-20
copyright: Port25 Solutions, Inc.  All Rights Reserved
"""
    fields = health.parse_license(cli)
    assert fields["expires"] == datetime.date(2100, 3, 20)
    assert fields["serial"] == "238478"


@pytest.mark.parametrize(
    "text, expires, raw",
    [
        ("expires: never\n", None, "never"),
        ("# comment: 2020-01-01\nserial: 1\n", None, None),
        ("expires: 2026-13-40\n", None, "2026-13-40"),
        ("Expires: 2027-01-05 00:00:00\nsignature: AAAA:BBBB\n", datetime.date(2027, 1, 5), "2027-01-05 00:00:00"),
        ("\x00\x01binary garbage", None, None),
    ],
)
def test_parse_license_is_defensive(text, expires, raw):
    fields = health.parse_license(text)
    assert fields["expires"] == expires
    assert fields["expires_raw"] == raw


# --------------------------------------------------------------- evaluation
def test_healthy_status_is_ok_with_perfdata():
    results = health.evaluate_status(health.parse_status(status_document()), None, THRESHOLDS)
    assert health.worst_state(r.state for r in results) == health.OK
    assert by_name(results)["queued_recipients"].perfdata() == "queued_recipients=808;50000;200000;0"


@pytest.mark.parametrize("rcp, expected", [(49996, health.OK), (49997, health.WARNING), (199997, health.CRITICAL)])
def test_queue_depth_thresholds(rcp, expected):
    # the sample also has 3 recipients in the pipe queue: thresholds apply to all queued recipients
    results = by_name(health.evaluate_status(health.parse_status(status_document(rcp=rcp)), None, THRESHOLDS))
    assert results["queued_recipients"].state == expected


def test_unreachable_status_is_unknown():
    (result,) = health.evaluate_status(None, "connection refused", THRESHOLDS)
    assert result.state == health.UNKNOWN
    assert "connection refused" in result.message


def test_service_inactive_is_critical_and_outranks_unknown():
    results = [health.evaluate_service("pmta", "inactive")] + health.evaluate_status(None, "refused", THRESHOLDS)
    state, line = health.summarize(results)
    assert state == health.CRITICAL
    assert line.startswith("PMTA CRITICAL - service pmta is inactive; status endpoint unreachable")


def test_not_running_state_is_critical():
    results = by_name(health.evaluate_status(health.parse_status(status_document(state="stopped")), None, THRESHOLDS))
    assert results["http_status"].state == health.CRITICAL


def test_backoff_thresholds():
    assert health.evaluate_backoff([], None, THRESHOLDS).state == health.OK
    warn = health.evaluate_backoff(["gmail.com/mk-01"], None, THRESHOLDS)
    assert warn.state == health.WARNING and "gmail.com/mk-01" in warn.message
    assert health.evaluate_backoff(["q%d" % i for i in range(20)], None, THRESHOLDS).state == health.CRITICAL
    assert health.evaluate_backoff(None, "pmta not found", THRESHOLDS).state == health.UNKNOWN


@pytest.mark.parametrize("free, expected", [(50, health.OK), (20, health.WARNING), (9, health.CRITICAL)])
def test_spool_free_space(free, expected):
    result = health.evaluate_spool("/var/spool/pmta", 100, free, THRESHOLDS)
    assert result.state == expected
    assert result.perfdata() == "spool_free_pct=%d%%;20;10;0;100" % free


def test_spool_below_powermtas_min_free_space_is_full_whatever_the_percentage():
    """§3.3.2.4: below min-free-space PowerMTA stops accepting mail into the spool."""
    thresholds = health.validate_thresholds({"spool_min_free_bytes": 2 * 1024 ** 3})
    result = health.evaluate_spool("/var/spool/pmta", 4 * 1024 ** 3, 1024 ** 3, thresholds)  # 25 % free
    assert result.state == health.CRITICAL and result.value == 25.0
    assert "full" in result.message and "below min-free-space 2.0 GiB" in result.message
    assert result.details == {"free_bytes": 1024 ** 3, "accepting": False}
    above = health.evaluate_spool("/var/spool/pmta", 4 * 1024 ** 3, 3 * 1024 ** 3, thresholds)
    assert above.state == health.OK and above.details["accepting"]


def test_spool_with_no_space_left_is_full():
    result = health.evaluate_spool("/var/spool/pmta", 1000, 0, THRESHOLDS)
    assert result.state == health.CRITICAL and "full" in result.message and "no space left" in result.message
    assert not result.details["accepting"]
    nearly = health.evaluate_spool("/var/spool/pmta", 1000, 50, THRESHOLDS)
    assert nearly.state == health.CRITICAL and nearly.message.endswith("nearly full") and nearly.details["accepting"]


def test_spool_label_names_the_directory():
    result = health.evaluate_spool("/srv/spool 2", 1000, 500, THRESHOLDS)
    assert result.name == "spool_free_pct_srv_spool_2"


@pytest.mark.parametrize(
    "expires, expected",
    [(TODAY + datetime.timedelta(days=90), health.OK), (TODAY + datetime.timedelta(days=30), health.WARNING),
     (TODAY + datetime.timedelta(days=3), health.CRITICAL), (TODAY - datetime.timedelta(days=1), health.CRITICAL)],
)
def test_license_expiry(expires, expected):
    fields = health.parse_license("expires: %s\n" % expires.isoformat())
    assert health.evaluate_license(fields, None, TODAY, THRESHOLDS).state == expected


def test_license_unreadable_is_unknown_and_never_is_ok():
    assert health.evaluate_license(None, "permission denied", TODAY, THRESHOLDS).state == health.UNKNOWN
    assert health.evaluate_license(health.parse_license("expires: never"), None, TODAY, THRESHOLDS).state == health.OK


def test_acct_age_only_alarms_while_mail_flows():
    busy = health.evaluate_acct_age("/var/log/pmta/acct.csv", 4000, None, 1200, THRESHOLDS)
    quiet = health.evaluate_acct_age("/var/log/pmta/acct.csv", 4000, None, 0, THRESHOLDS)
    assert busy.state == health.CRITICAL
    assert quiet.state == health.OK
    assert busy.perfdata() == "acct_age=4000s;900;3600;0"
    missing = health.evaluate_acct_age("/var/log/pmta/acct.csv", None, "No such file", 50, THRESHOLDS)
    assert missing.state == health.WARNING
    # status unreachable: a quiet host and broken accounting look the same
    assert health.evaluate_acct_age("/x", None, "No such file", None, THRESHOLDS).state == health.UNKNOWN
    assert health.evaluate_acct_age("/x", 4000, None, None, THRESHOLDS).state == health.UNKNOWN
    assert health.evaluate_acct_age("/x", 10, None, None, THRESHOLDS).state == health.OK


def test_threshold_validation_names_the_option():
    with pytest.raises(health.HealthError, match="queued_recipients_warning .* must be <="):
        health.validate_thresholds({"queued_recipients_warning": 10, "queued_recipients_critical": 5})
    with pytest.raises(health.HealthError, match="unknown threshold 'queue_depth'"):
        health.validate_thresholds({"queue_depth": 1})
    with pytest.raises(health.HealthError, match="spool_free_percent_warning"):
        health.validate_thresholds({"spool_free_percent_warning": 5})


PERF_RE = re.compile(r"^('[^']+'|[^ '=]+)=(-?[0-9.]+)([a-zA-Z%]*)(;(-?[0-9.]*)){0,4}$")


def test_summary_is_one_line_with_parseable_perfdata():
    results = [health.evaluate_service("pmta", "active")]
    results += health.evaluate_status(health.parse_status(status_document(rcp=60000)), None, THRESHOLDS)
    results.append(health.evaluate_spool("/var/spool/pmta", 1000, 700, THRESHOLDS))
    state, line = health.summarize(results)
    assert state == health.WARNING
    assert "\n" not in line
    text, perf = line.split(" | ")
    assert text == "PMTA WARNING - 60003 recipients queued (warning at 50000)"
    for item in perf.split(" "):
        assert PERF_RE.match(item), item


# ------------------------------------------------------------------- probes
class _StatusHandler(http.server.BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self):  # noqa: N802 (http.server API)
        if not self.path.startswith("/status"):
            self.send_error(404)
            return
        if getattr(self.server, "api_key", None) and self.headers.get("X-API-Key") != self.server.api_key:
            self.send_error(403)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def status_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _StatusHandler)
    server.body = json.dumps(status_document()).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_probe_http_json_reads_a_real_server(status_server):
    url = "http://127.0.0.1:%d/status?format=json" % status_server.server_port
    document, error = health.probe_http_json(url, stdlib_fetch.fetch, timeout=5)
    assert error is None and document["data"]["status"]["status"] == "running"
    missing, error = health.probe_http_json(url.replace("/status", "/nope"), stdlib_fetch.fetch, timeout=5)
    assert missing is None and "HTTP 404" in error


def test_probe_http_json_reports_refused_port():
    server = http.server.HTTPServer(("127.0.0.1", 0), _StatusHandler)
    port = server.server_port
    server.server_close()  # nothing listens there now
    document, error = health.probe_http_json("http://127.0.0.1:%d/status" % port, stdlib_fetch.fetch, timeout=2)
    assert document is None and "127.0.0.1" in error


def test_probe_statvfs_and_file_age(tmp_path):
    total, free = health.probe_statvfs(str(tmp_path))
    assert total > 0 and 0 <= free <= total
    assert health.probe_statvfs(str(tmp_path / "missing"))[0] is None
    acct = tmp_path / "acct.csv"
    acct.write_text("type\n")
    os.utime(acct, (1000, 1000))
    age, error = health.probe_file_age(str(acct), now=1600)
    assert error is None and age == 600


def write_fake_pmta(tmp_path, queues, license_text, queue_args="--json show queues --mode=backoff --maxitems=1000"):
    """A stand-in `pmta` CLI for the two read-only commands the check runs."""
    script = tmp_path / "pmta"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        "  '%s') cat %s ;;\n"
        "  'show license') cat %s ;;\n"
        "  *) echo unknown command >&2; exit 1 ;;\n"
        "esac\n" % (queue_args, tmp_path / "queues.json", tmp_path / "license.txt")
    )
    (tmp_path / "queues.json").write_text(json.dumps(queues))
    (tmp_path / "license.txt").write_text(license_text)
    script.chmod(0o755)
    return str(script)


def write_fake_systemctl(tmp_path, active_units, name="systemctl"):
    """A stand-in `systemctl is-active UNIT` (this machine's PID 1 is not systemd)."""
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        'for unit in %s; do [ "$2" = "$unit" ] && { echo active; exit 0; }; done\n'
        "echo inactive; exit 3\n" % " ".join(active_units)
    )
    script.chmod(0o755)
    return str(script)


def write_config(tmp_path, server, **overrides):
    options = {
        "services": ["pmta"],
        "systemctl": write_fake_systemctl(tmp_path, ["pmta"]),
        "pmta_binary": write_fake_pmta(tmp_path, {"data": {"queues": []}}, "expires: 2100-01-01\n"),
        "license_file": None,
        "spool_dirs": [str(tmp_path)],
        "acct_file": None,
        "status_url": "http://127.0.0.1:%d/status?format=json" % server.server_port,
    }
    options.update(overrides)
    config = tmp_path / "check.json"
    config.write_text(json.dumps(options))
    return str(config)


def run_main(argv):
    out = io.StringIO()
    code = health.nagios_main(argv, stdout=out, fetch=stdlib_fetch.fetch)
    return code, out.getvalue()


def test_probe_service_reads_systemctl(tmp_path):
    systemctl = write_fake_systemctl(tmp_path, ["pmta"])
    assert health.probe_service("pmta", systemctl) == "active"
    assert health.probe_service("pmtahttp", systemctl) == "inactive"
    assert health.probe_service("pmta", str(tmp_path / "missing")) is None


def test_nagios_ok_on_a_healthy_host(status_server, tmp_path):
    acct = tmp_path / "acct.csv"
    acct.write_text("type\n")
    code, line = run_main(["--config", write_config(tmp_path, status_server), "--acct-file", str(acct)])
    assert code == health.OK, line
    assert line.count("\n") == 1
    assert line.startswith("PMTA OK - service pmta active; 808 recipients queued")
    perf = line.split(" | ")[1].split()
    assert all(PERF_RE.match(item) for item in perf), perf
    assert "backoff_queues=0;1;20;0" in perf and "license_days=" in line


def test_nagios_json_for_zabbix(status_server, tmp_path):
    code, output = run_main(["--config", write_config(tmp_path, status_server), "--json"])
    result = json.loads(output)
    assert code == health.OK and result["state"] == "OK" and result["exit_code"] == 0
    assert {c["name"] for c in result["checks"]} >= {
        "service_pmta", "http_status", "queued_recipients", "backoff_queues", "license_days"}
    assert result["status"]["queued_domains"] == 226


def test_nagios_warning_on_deep_queue_and_backoff(status_server, tmp_path):
    status_server.body = json.dumps(status_document(rcp=60000)).encode()
    config = write_config(tmp_path, status_server)
    write_fake_pmta(tmp_path, {"data": {"queues": [{"name": "gmail.com/mk-01", "mode": "backoff"}]}},
                    "expires: 2100-01-01\n")
    code, line = run_main(["--config", config])
    assert code == health.WARNING, line
    assert "60003 recipients queued (warning at 50000)" in line
    assert "1 queue in backoff (gmail.com/mk-01)" in line


def test_nagios_critical_on_very_deep_queue(status_server, tmp_path):
    status_server.body = json.dumps(status_document(rcp=250000)).encode()
    code, line = run_main(["--config", write_config(tmp_path, status_server)])
    assert code == health.CRITICAL and "(critical at 200000)" in line
    # a command-line threshold overrides the config file
    code, line = run_main(["--config", write_config(tmp_path, status_server), "--queued-recipients-critical",
                           "300000"])
    assert code == health.WARNING, line


def test_nagios_critical_when_pmta_stopped(status_server, tmp_path):
    config = write_config(tmp_path, status_server, systemctl=write_fake_systemctl(tmp_path, [], "systemctl-down"))
    code, line = run_main(["--config", config])
    assert code == health.CRITICAL
    assert line.startswith("PMTA CRITICAL - service pmta is inactive")


def test_nagios_unknown_when_endpoint_unreachable(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _StatusHandler)
    config = write_config(tmp_path, server)
    server.server_close()  # nothing listens on that port any more
    code, line = run_main(["--config", config])
    assert code == health.UNKNOWN, line
    assert "status endpoint unreachable" in line


def test_bad_config_is_unknown_with_a_clear_message(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"status_ur": "x"}))
    code, line = run_main(["--config", str(config)])
    assert code == health.UNKNOWN
    assert "unknown keys status_ur" in line


def test_backoff_falls_back_when_the_cli_refuses_maxitems(status_server, tmp_path):
    config = write_config(tmp_path, status_server)
    write_fake_pmta(tmp_path, {"data": {"queues": [{"name": "yahoo.com/tx-01", "mode": "backoff"}]}},
                    "expires: 2100-01-01\n", queue_args="--json show queues --mode=backoff")
    code, line = run_main(["--config", config])
    assert code == health.WARNING and "1 queue in backoff (yahoo.com/tx-01)" in line


def test_api_key_file_is_sent_as_header(status_server, tmp_path):
    status_server.api_key = "k" * 32
    config = write_config(tmp_path, status_server)
    code, line = run_main(["--config", config])
    assert code == health.UNKNOWN and "HTTP 403" in line
    key_file = tmp_path / "status-api-key"
    key_file.write_text("k" * 32 + "\n")
    code, line = run_main(["--config", config, "--api-key-file", str(key_file)])
    assert code == health.OK, line
    code, line = run_main(["--config", config, "--api-key-file", str(tmp_path / "missing")])
    assert code == health.UNKNOWN and "API key file" in line


def test_monitoring_role_knows_every_threshold_name():
    import pathlib

    import yaml

    role_vars = pathlib.Path(__file__).parents[4] / "roles" / "monitoring" / "vars" / "main.yml"
    names = yaml.safe_load(role_vars.read_text())["__monitoring_threshold_names"]
    assert sorted(names) == sorted(health.DEFAULT_THRESHOLDS)


def test_bad_arguments_are_unknown_not_critical(capsys):
    code, line = run_main(["--no-such-option"])
    assert code == health.UNKNOWN and line.startswith("PMTA UNKNOWN - bad arguments")
    assert run_main(["--queued-recipients-warning", "many"])[0] == health.UNKNOWN
