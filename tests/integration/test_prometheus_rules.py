# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring role's Prometheus rules, as the role installs them, under `promtool test rules`.

ansible-playbook runs the role's ``prometheus_rules`` entry point on localhost (the template task validates
with ``promtool check rules``), then promtool runs tests/integration/prometheus/mailops-powermta.rules.test.yml
against the installed file: each alert fires on a series above its threshold and stays silent below it.
A second file rendered with a higher complaint threshold must fail the same test, so the test reads the
thresholds the role renders. promtool comes from Debian's ``prometheus`` package (Makefile APT_PACKAGES).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"
RULES_TEST = ROOT / "tests" / "integration" / "prometheus" / "mailops-powermta.rules.test.yml"
RULES_NAME = "mailops-powermta.rules.yml"


def promtool():
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (make test installs APT_PACKAGES)"
    return path


def install_rules(tmp_path, **overrides):
    """Run the role's prometheus_rules entry point; returns {name: installed path}."""
    targets = {"default": {}, **overrides}
    tasks = []
    for name, thresholds in targets.items():
        (tmp_path / name).mkdir()
        tasks.append({
            "name": "Rules " + name,
            "ansible.builtin.include_role": {"name": "mailops.powermta.monitoring", "tasks_from": "prometheus_rules"},
            "vars": {"monitoring_prometheus_rules_file": str(tmp_path / name / RULES_NAME),
                     "monitoring_alert_thresholds": thresholds},
        })
    playbook = tmp_path / "rules.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Install the rules", "hosts": "localhost", "connection": "local",
                                         "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=os.path.dirname(promtool()) + os.pathsep + os.environ.get("PATH", ""))
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable,
         str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {name: tmp_path / name / RULES_NAME for name in targets}


def promtool_test(rules_file):
    shutil.copy(RULES_TEST, rules_file.parent / RULES_TEST.name)
    return subprocess.run([promtool(), "test", "rules", RULES_TEST.name], cwd=rules_file.parent,
                          capture_output=True, text=True, timeout=120, check=False)


def test_installed_rules_pass_promtool_and_the_thresholds_matter(tmp_path):
    installed = install_rules(tmp_path, stricter={"complaint_rate_warning": 0.005})
    check = subprocess.run([promtool(), "check", "rules", str(installed["default"])], capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    result = promtool_test(installed["default"])
    assert result.returncode == 0, result.stdout + result.stderr
    # the same series against a 0.5 % warning threshold: the gmail and yahoo warnings no longer fire
    changed = promtool_test(installed["stricter"])
    assert changed.returncode != 0
    assert "PowerMTAComplaintRateHigh" in changed.stdout + changed.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    """promtool parses each Grafana panel query (Grafana's variables replaced by what they expand to)."""
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    rules = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$instance", ".*").replace("$__rate_interval", "5m")
            rules.append({"record": "dashboard:panel_%d_%s:check" % (panel["id"], target["refId"].lower()),
                          "expr": expr})
    assert any("hard_bounced" in rule["expr"] for rule in rules)  # the per-ISP reputation panels are there
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
