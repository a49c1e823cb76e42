"""The pmta_queue module: guards, check mode and diff, with a scripted `pmta` on PATH (the test double's own
commands are tested against its daemon in tests/pmta_test_double/test_queue_commands.py)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import pmta_queue

SHOW = """\
queue                #rcpt kbytes conn st    retry last error
-------------------- ----- ------ ---- -- -------- ----------
%s
%s
1 of 1 matching queues.
"""


def fake_pmta(tmp_path, paused):
    """A pmta that lists gmail.com/v1 (7 recipients) as paused or running and logs every other command."""
    log = tmp_path / "ran.log"
    row = "gmail.com/v1            7    3.5    0"
    script = tmp_path / "pmta"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "show queues" ]; then\n'
        '  if [ "$3" = "--paused=%s" ]; then printf %%s "$ROW_TEXT"; else printf %%s "$EMPTY_TEXT"; fi; exit 0\n'
        "fi\n"
        'echo "$@" >> %s\necho "Queue(s) done."\n' % ("yes" if paused else "no", log))
    script.chmod(0o755)
    return script, log, {"ROW_TEXT": SHOW % ("*/*", row), "EMPTY_TEXT": SHOW.replace("1 of 1", "0 of 0") % ("*/*", "")}


def run_module(args, capsys, monkeypatch, env=None):
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    with patch_module_args(args), pytest.raises(SystemExit):
        pmta_queue.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_and_diff_say_what_would_run_and_run_nothing(tmp_path, capsys, monkeypatch):
    script, log, env = fake_pmta(tmp_path, paused=False)
    result = run_module({"state": "paused", "queue": ["gmail.com/*"], "pmta_command": str(script),
                         "_ansible_check_mode": True, "_ansible_diff": True}, capsys, monkeypatch, env)
    assert result["changed"] is True
    assert result["commands"] == ["%s pause queue gmail.com/*" % script]
    assert result["diff"]["after"] == "%s pause queue gmail.com/*\n" % script
    assert result["queues"] == [{"queue": "gmail.com/v1", "rcpt": 7, "kbytes": 3.5, "paused": False}]
    assert not log.exists()


def test_a_paused_queue_is_left_alone(tmp_path, capsys, monkeypatch):
    script, log, env = fake_pmta(tmp_path, paused=True)
    result = run_module({"state": "paused", "queue": ["gmail.com/v1"], "pmta_command": str(script)},
                        capsys, monkeypatch, env)
    assert result["changed"] is False and result["commands"] == [] and not log.exists()


def test_delete_needs_confirm_and_reports_what_it_deleted(tmp_path, capsys, monkeypatch):
    script, log, env = fake_pmta(tmp_path, paused=True)
    refused = run_module({"state": "deleted", "queue": ["gmail.com/*"], "pmta_command": str(script)},
                         capsys, monkeypatch, env)
    assert refused["failed"] and "confirm: true" in refused["msg"] and not log.exists()
    done = run_module({"state": "deleted", "queue": ["gmail.com/*"], "confirm": True, "pmta_command": str(script)},
                      capsys, monkeypatch, env)
    assert done["changed"] and done["deleted"] == [{"queue": "gmail.com/v1", "rcpt": 7, "kbytes": 3.5}]
    assert log.read_text() == "delete --queue=gmail.com/*\n"


def test_fleet_names_reach_the_module_only_through_the_action_plugin(capsys, monkeypatch):
    result = run_module({"state": "paused", "isp": ["gmail"]}, capsys, monkeypatch)
    assert result["failed"] and "action plugin" in result["msg"]


def test_no_queue_of_this_host_is_no_change(capsys, monkeypatch):
    result = run_module({"state": "resumed", "queue": []}, capsys, monkeypatch)
    assert result["changed"] is False and result["msg"] == "no queue of this host is selected"
