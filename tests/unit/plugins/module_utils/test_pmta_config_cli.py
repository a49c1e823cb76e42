"""The pmta-config-lint CLI: the in-package main() and the tools/ script as users run it."""

import io
import json
import pathlib
import subprocess
import sys

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import cli

REPO = pathlib.Path(__file__).resolve().parents[4]
TOOL = REPO / "tools" / "pmta-config-lint"
TOOL_CODE = REPO / "tools" / "pmta_config_lint.py"
FLEET = REPO / "tests" / "fixtures" / "pmta_configs" / "valid" / "fleet"
MISTAKES = REPO / "tests" / "fixtures" / "pmta_configs" / "mistakes"


def run(argv, stdin=""):
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(argv, stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_clean_config_exits_zero():
    status, out, _err = run(["--include-root", str(FLEET), str(FLEET / "etc/pmta/config")])
    assert status == 0
    assert out.endswith(": 0 error(s), 0 warning(s)\n")


def test_findings_exit_one_with_file_line_and_hint():
    status, out, _err = run([str(MISTAKES / "invented-directives.config")])
    assert status == 1
    assert "invented-directives.config:6: error: unknown directive throttle [unknown-directive]" in out


def test_pmta_format_and_stdin_name():
    status, out, _err = run(["--format", "pmta", "--stdin-name", "/etc/pmta/config", "-"], "run-as-root no\nfoo 1\n")
    assert status == 1
    assert out == "Parse error in line 2 of /etc/pmta/config: unknown directive foo\n"


def test_json_format_is_one_document():
    status, out, _err = run(["--format", "json", "-"], "run-as-root no\n<domain *>\nroute x\n</domain>\n")
    document = json.loads(out)
    assert status == 0 and document["ok"] is True
    assert document["warnings"][0]["code"] == "deprecated" and document["files"] == ["/etc/pmta/config"]


def test_fail_on_warning():
    text = "run-as-root no\n<domain *>\nroute x\n</domain>\n"
    assert run(["-"], text)[0] == 0
    assert run(["--fail-on", "warning", "-"], text)[0] == 1


def test_quiet_prints_errors_only():
    status, out, _err = run(["-q", "-"], "<domain *>\nroute x\nmax-smtp-out x\n</domain>\n")
    assert status == 1 and out.count("\n") == 1 and "max-smtp-out" in out


def test_explain_and_schema():
    status, out, _err = run(["--explain", "max-msg-per-hour"])
    assert status == 0 and "deprecated: max-msg-rate" in out
    assert run(["--explain", "throttle"])[0] == 1
    assert "block" in run(["--explain", "<virtual-mta>"])[1]
    status, out, _err = run(["--schema"])
    names = {row["name"] for row in json.loads(out)["directives"]}
    assert status == 0 and {"max-msg-rate", "smtp-source-host", "reply"} <= names


def test_usage_errors_exit_two():
    assert run([])[0] == 2
    status, _out, err = run(["/nonexistent/pmta/config"])
    assert status == 2 and "cannot read" in err


@pytest.mark.parametrize(
    "command", [[sys.executable, "-S", "-I", str(TOOL_CODE)], [str(TOOL)]], ids=["bare-python", "launcher"]
)
def test_tools_script_runs_standalone_without_ansible(command):
    # The code must work with a bare interpreter (no collection path, no ansible import), and the launcher too.
    proc = subprocess.run(
        [*command, "-q", "--format", "pmta", "-"],
        input="run-as-root no\n<virtual-mta a>\nsmtp-source-host a.example.com 192.0.2.1\n</virtual-mta>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("Error in line 3 of /etc/pmta/config: smtp-source-host: arguments reversed")


def test_scope_option():
    assert run(["--scope", "virtual-mta", "-"], "max-smtp-msg-rate 10/s\n")[0] == 0
    assert run(["-"], "run-as-root no\nmax-smtp-msg-rate 10/s\n")[0] == 1
    status, _out, err = run(["--scope", "nope", "-"], "")
    assert status == 2 and "--scope" in err


def test_extra_directive_and_unknown_directives_options(tmp_path):
    config = tmp_path / "config"
    config.write_text("run-as-root no\ndummy-smtp-blackhole yes\n<domain *>\nx-sink-mode on\n</domain>\n")
    status, out, _err = run([str(config)])
    assert status == 1 and out.count("[unknown-directive]") == 2
    status, out, _err = run(
        ["--extra-directive", "dummy-smtp-blackhole", "--extra-directive", "x-sink-mode:global,domain", str(config)]
    )
    assert (status, out) == (0, "%s: 0 error(s), 0 warning(s)\n" % config)
    status, out, _err = run(["--unknown-directives", "warning", str(config)])
    assert status == 0 and ": 0 error(s), 2 warning(s)" in out
    status, _out, err = run(["--extra-directive", "x:nowhere", str(config)])
    assert status == 2 and "unknown scope nowhere" in err
