"""The pmta_acct_stats module over real files."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import pmta_acct_stats

HEADER = "type,timeLogged,rcpt,dsnDiag,dlvSourceIp,vmta,bounceCat"


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        pmta_acct_stats.main()
    return json.loads(capsys.readouterr().out)


def test_module_reads_globs_and_returns_observations(tmp_path, capsys):
    (tmp_path / "acct.csv").write_text(
        HEADER + "\n"
        "d,2026-05-01 10:00:00+0000,a@gmail.com,250 ok,203.0.113.11,mk-01,\n"
        "b,2026-05-01 10:00:01+0000,b@yahoo.com,550 no,203.0.113.11,mk-01,bad-mailbox\n"
        "t,2026-05-01 10:00:02+0000,c@yahoo.com,421 4.7.0 [TSS04] deferred,203.0.113.11,mk-01,\n"
        "d,2026-05-01 10:00:03+00\n")
    out = run_module({"paths": [str(tmp_path / "*.csv")], "since": "2026-05-01T00:00:00Z"}, capsys)
    assert out["changed"] is False
    assert out["observations"]["203.0.113.11"]["yahoo"] == {
        "sent": 1, "delivered": 0, "bounced": 1, "deferred": 1, "complaints": 0, "throttled": 1}
    assert out["corrupt"] == 1


def test_module_warns_without_files_and_fails_on_bad_since(tmp_path, capsys, monkeypatch):
    # Record warn() calls: where warnings land in the result depends on what controller code is loaded.
    shown = []
    monkeypatch.setattr(pmta_acct_stats.AnsibleModule, "warn", lambda self, text: shown.append(text))
    out = run_module({"paths": [str(tmp_path / "none*.csv")]}, capsys)
    assert out["stats"] == [] and any("no accounting file matches" in text for text in shown)
    out = run_module({"paths": [str(tmp_path / "none*.csv")], "since": "soon"}, capsys)
    assert out["failed"] and "since must be an ISO 8601 time" in out["msg"]
