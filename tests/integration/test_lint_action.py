# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pmta_config_lint through ansible-playbook: on the controller the action lints in process, on another
connection it runs the module; both give the same findings, failures and warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".ansible" / "collections"))

from ansible_collections.mailops.powermta.plugins.modules import pmta_config_lint  # noqa: E402

ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"

GOOD = "<virtual-mta v1>\n    smtp-source-host 203.0.113.5 mta1.example.com\n</virtual-mta>\nhttp-mgmt-port 8080\n"
BAD = "http-mgmt-port 80800\nmax-smtp-connection 10\n"

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Lint
      mailops.powermta.pmta_config_lint:
        path: "{{ config }}"
      register: lint
      ignore_errors: true
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ lint | to_json }}"
        dest: "{{ out }}"
        mode: "0600"
      delegate_to: localhost
"""


def run(tmp_path, text, connection):
    config = tmp_path / f"config-{connection}"
    config.write_text(text)
    out = tmp_path / f"out-{connection}.json"
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    inventory = {"all": {"hosts": {"h": {"ansible_connection": connection, "ansible_python_interpreter": sys.executable,
                                         "config": str(config), "out": str(out)}}}}
    (tmp_path / "hosts.json").write_text(json.dumps(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "hosts.json"), str(tmp_path / "play.yml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def module_result(tmp_path, text, capsys):
    """The module itself (the path taken on any other host), run in this process."""
    config = tmp_path / "config-module"
    config.write_text(text)
    with patch_module_args({"path": str(config)}), pytest.raises(SystemExit):
        pmta_config_lint.main()
    return json.loads(capsys.readouterr().out)


def comparable(result, config):
    out = {key: result.get(key) for key in ("failed", "errors", "lint_warnings", "changed")}
    out["failed"] = bool(out["failed"])
    out["msg"] = (result.get("msg") or "").replace(config, "CONFIG")
    return json.loads(json.dumps(out).replace(config, "CONFIG"))


def test_in_process_lint_gives_what_the_module_gives(tmp_path, capsys):
    for name, text in (("good", GOOD), ("bad", BAD)):
        in_process = run(tmp_path, text, "local")[0]
        module = module_result(tmp_path, text, capsys)
        assert comparable(in_process, str(tmp_path / "config-local")) == \
            comparable(module, str(tmp_path / "config-module")), name
    # Run in the controller's process: a module run would have returned its invocation.
    assert "invocation" not in in_process and "invocation" in module
    assert in_process["failed"] and "80800" in in_process["msg"]
    assert any("max-smtp-connection" in json.dumps(item) for item in in_process["errors"])
