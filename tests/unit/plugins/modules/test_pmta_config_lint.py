"""The pmta_config_lint module over real files and text."""

import json
import pathlib
import shutil

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import pmta_config_lint

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "pmta_configs"


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        pmta_config_lint.main()
    return json.loads(capsys.readouterr().out)


def test_path_with_includes_passes(capsys):
    root = FIXTURES / "valid" / "fleet"
    out = run_module({"path": str(root / "etc/pmta/config"), "include_root": str(root)}, capsys)
    assert out["changed"] is False and out["ok"] is True and not out.get("failed")
    assert out["errors"] == [] and out["lint_warnings"] == []
    assert out["files"][0] == "/etc/pmta/config" and len(out["files"]) == 6


def test_path_errors_fail_with_a_message_listing_them(capsys):
    out = run_module({"path": str(FIXTURES / "mistakes" / "reversed-smtp-source-host.config")}, capsys)
    assert out["failed"] is True and out["ok"] is False
    assert out["errors"] == [
        {
            "file": str(FIXTURES / "mistakes" / "reversed-smtp-source-host.config"),
            "line": 4,
            "message": "smtp-source-host: arguments reversed: the IP address must come first",
            "hint": "write smtp-source-host 192.0.2.21 mta1.example.com (§3.3.1.16)",
            "code": "bad-value",
        }
    ]
    assert out["msg"].startswith("PowerMTA config check failed: 1 error(s), 0 warning(s):")
    assert "reversed-smtp-source-host.config:4: error:" in out["msg"]


def test_content_warnings_pass_by_default_and_fail_with_fail_on_warning(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(pmta_config_lint.AnsibleModule, "warn", lambda self, text: shown.append(text))
    content = "run-as-root no\n<domain *>\nmax-msg-per-hour 100\n</domain>\n"
    out = run_module({"content": content}, capsys)
    assert not out.get("failed") and out["ok"] is True
    assert [(w["line"], w["code"]) for w in out["lint_warnings"]] == [(3, "deprecated")]
    assert len(shown) == 1 and "max-msg-per-hour is deprecated" in shown[0]  # also shown as Ansible warnings
    out = run_module({"content": content, "fail_on": "warning"}, capsys)
    assert out["failed"] is True and "max-msg-per-hour is deprecated" in out["msg"]


def test_content_is_reported_under_filename_and_includes_follow_include_root(tmp_path, capsys):
    (tmp_path / "etc/pmta/conf.d").mkdir(parents=True)
    (tmp_path / "etc/pmta/conf.d/v.conf").write_text(
        "<virtual-mta a>\nsmtp-source-host 192.0.2.1 a.test\n</virtual-mta>\n"
    )
    content = (
        "run-as-root no\ninclude /etc/pmta/conf.d/*.conf\n<virtual-mta-pool p>\nvirtual-mta a\n</virtual-mta-pool>\n"
        "<source 127.0.0.1>\ndefault-virtual-mta p\n</source>\n"
    )
    out = run_module({"content": content, "filename": "/etc/pmta/config", "include_root": str(tmp_path)}, capsys)
    assert out["ok"] is True and out["lint_warnings"] == []
    assert out["files"] == ["/etc/pmta/config", "/etc/pmta/conf.d/v.conf"]
    # Without include_root the pool member cannot be resolved: a warning, not an error.
    out = run_module({"content": content}, capsys)
    assert out["ok"] is True and [w["code"] for w in out["lint_warnings"]] == ["undefined-reference"]


def test_error_in_an_included_file_names_that_file(tmp_path, capsys):
    shutil.copytree(FIXTURES / "valid" / "fleet", tmp_path / "fleet")
    policies = tmp_path / "fleet/etc/pmta/conf.d/10-isp-policies.conf"
    policies.write_text(policies.read_text().replace("max-msg-rate 500/h", "max-msg-rate 500 per hour"))
    out = run_module({"path": str(tmp_path / "fleet/etc/pmta/config"), "include_root": str(tmp_path / "fleet")}, capsys)
    assert out["failed"] is True
    assert [(e["file"], e["line"], e["code"]) for e in out["errors"]] == [
        ("/etc/pmta/conf.d/10-isp-policies.conf", 9, "bad-value")
    ]


def test_fragment_skips_whole_config_checks(capsys):
    out = run_module({"content": "<domain $gmail>\nmax-msg-rate 100/d\n</domain>\n", "fragment": True}, capsys)
    assert out["ok"] is True
    assert [w["code"] for w in out["lint_warnings"]] == ["undefined-reference"]


def test_scope_lints_a_block_fragment(tmp_path, capsys):
    fragment = tmp_path / "vmta1.conf"
    fragment.write_text("max-smtp-msg-rate 100/h\n<domain *>\nmax-cold-virtual-mta-msg 50/d\n</domain>\n")
    out = run_module({"path": str(fragment), "scope": "virtual-mta"}, capsys)
    assert out["ok"] is True and out["errors"] == []
    out = run_module({"path": str(fragment), "scope": "vmta"}, capsys)
    assert out["failed"] is True and out["msg"].startswith("scope: 'vmta' is not a PowerMTA block")


def test_check_mode_gives_the_same_result(capsys):
    path = str(FIXTURES / "mistakes" / "open-relay.config")
    normal = run_module({"path": path}, capsys)
    checked = run_module({"path": path, "_ansible_check_mode": True}, capsys)
    assert normal["errors"] == checked["errors"] and checked["changed"] is False


def test_bad_options_fail_clearly(tmp_path, capsys):
    out = run_module({"path": str(tmp_path / "missing")}, capsys)
    assert out["failed"] is True and out["msg"].startswith("path: ") and "not a readable file" in out["msg"]
    out = run_module({"content": "run-as-root no", "include_root": str(tmp_path / "nope")}, capsys)
    assert out["failed"] is True and out["msg"].startswith("include_root: ")
    out = run_module({"path": "/etc/hosts", "content": "run-as-root no"}, capsys)
    assert out["failed"] is True and "mutually exclusive" in out["msg"]
    out = run_module({}, capsys)
    assert out["failed"] is True and "one of the following is required" in out["msg"]


def test_long_lists_are_cut_in_the_message_but_complete_in_errors(capsys):
    content = "run-as-root no\n" + "".join("bogus-%d yes\n" % i for i in range(25))
    out = run_module({"content": content}, capsys)
    assert out["failed"] is True and len(out["errors"]) == 25
    assert out["msg"].count("unknown directive bogus-") == 20
    assert out["msg"].endswith("... and 5 more (see errors and lint_warnings)")


SINK = "run-as-root no\ndummy-smtp-blackhole yes\n<domain *>\nmax-smtp-outt 5\n</domain>\n"


def test_extra_directives_and_unknown_directives_as_warnings(capsys, monkeypatch):
    monkeypatch.setattr(pmta_config_lint.AnsibleModule, "warn", lambda self, text: None)
    out = run_module({"content": SINK}, capsys)
    assert out["failed"] is True
    assert [(e["line"], e["code"]) for e in out["errors"]] == [(2, "unknown-directive"), (4, "unknown-directive")]
    args = {
        "content": SINK,
        "extra_directives": [{"name": "dummy-smtp-blackhole", "scopes": ["global"]}],
        "unknown_directives": "warning",
    }
    out = run_module(args, capsys)
    assert not out.get("failed") and out["errors"] == []
    assert [(w["line"], w["code"]) for w in out["lint_warnings"]] == [(4, "unknown-directive")]
    assert "max-smtp-out" in out["lint_warnings"][0]["hint"]


def test_bad_extra_directive_scope_names_the_option(capsys):
    out = run_module({"content": SINK, "extra_directives": [{"name": "x", "scopes": ["nowhere"]}]}, capsys)
    assert out["failed"] is True
    assert out["msg"].startswith("extra_directives: extra directive #1 (x): unknown scope nowhere")
