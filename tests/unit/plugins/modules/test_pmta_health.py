"""The pmta_health module: options in, structured checks out, fail_on fails the task."""

import http.server
import json
import threading

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import pmta_health


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def status_url():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    server.body = json.dumps({"data": {"status": {
        "queue": {"smtp": {"rcp": 70000, "dom": 12, "kb": 1.0}},
        "conn": {"smtpIn": {"cur": 2}, "smtpOut": {"cur": 5}},
        "traffic": {"lastHr": {"out": {"rcp": 0}}},
    }}}).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/status?format=json" % server.server_port
    server.shutdown()
    server.server_close()


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        pmta_health.main()
    return json.loads(capsys.readouterr().out)


def base_args(status_url, tmp_path, **extra):
    args = {"services": [], "status_url": status_url, "pmta_binary": "", "check_license": False,
            "spool_dirs": [str(tmp_path)], "acct_file": ""}
    args.update(extra)
    return args


def test_reports_structured_checks(status_url, tmp_path, capsys):
    out = run_module(base_args(status_url, tmp_path), capsys)
    assert out["changed"] is False and "failed" not in out
    assert out["state"] == "WARNING" and out["exit_code"] == 1
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["queued_recipients"]["value"] == 70000 and checks["queued_recipients"]["state"] == "WARNING"
    spool = [c for name, c in checks.items() if name.startswith("spool_free_pct_")]
    assert len(spool) == 1 and spool[0]["unit"] == "%" and 0 <= spool[0]["value"] <= 100
    assert out["status"]["connections_out"] == 5
    assert out["summary"].startswith("PMTA WARNING - 70000 recipients queued")


def test_thresholds_and_fail_on(status_url, tmp_path, capsys):
    out = run_module(base_args(status_url, tmp_path, thresholds={"queued_recipients_warning": 80000},
                               fail_on="warning"), capsys)
    assert out["state"] == "OK" and "failed" not in out
    out = run_module(base_args(status_url, tmp_path, fail_on="warning"), capsys)
    assert out["failed"] is True and "PowerMTA health is WARNING" in out["msg"]
    assert out["checks"]  # the structured result comes with the failure


def test_unreachable_endpoint_is_unknown(tmp_path, capsys):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    url = "http://127.0.0.1:%d/status" % server.server_port
    server.server_close()
    out = run_module(base_args(url, tmp_path, fail_on="critical"), capsys)
    assert out["state"] == "UNKNOWN" and "failed" not in out


def test_bad_threshold_fails_clearly(status_url, tmp_path, capsys):
    out = run_module(base_args(status_url, tmp_path, thresholds={"queue": 1}), capsys)
    assert out["failed"] is True and "unknown threshold 'queue'" in out["msg"]
