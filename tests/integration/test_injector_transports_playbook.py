# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/injector_transports.yml for real: ansible-playbook reads the warm-up local facts
with the setup module, writes YAML/JSON/CSV files that validate against the documented
schema, follows two warm-up steps made by the warmup_plan engine, and is idempotent."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "injector_transports.yml"
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "injector-transports.schema.json").read_text())
ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"
sys.path.insert(0, str(ROOT / ".ansible" / "collections"))

from ansible_collections.mailops.powermta.plugins.module_utils._fleet import isp_groups as _isp_groups  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._warmup import engine as _warmup  # noqa: E402

IP_WARMING = "203.0.113.11"
SCHEDULE = {"default": [100, 1000, 10000]}


def inventory(tmp_path):
    hosts = {
        "pmta1": {
            "ansible_host": "198.51.100.10",
            "injector_transports_fact_path": str(tmp_path / "facts" / "pmta1"),
            "powermta_vmtas": [
                {"name": "mk-01", "ip": IP_WARMING, "hostname": "mta11.example.com", "pool": "marketing",
                 "warmup": True},
            ],
        },
        "pmta2": {
            "ansible_host": "198.51.100.20",
            "powermta_injection_port": 2525,
            "injector_transports_fact_path": str(tmp_path / "facts" / "pmta2"),
            "powermta_vmtas": [
                {"name": "mk-02", "ip": "203.0.113.21", "hostname": "mta21.example.com", "pool": "marketing"},
            ],
        },
    }
    for host in hosts.values():
        host.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
    data = {
        "all": {
            "vars": {
                "warmup_schedule": SCHEDULE,
                "powermta_injectors": [{"name": "mumara", "username": "mumara", "password": "vault-secret",
                                        "pools": ["marketing"]}],
            },
            "children": {"pmta_fleet": {"hosts": hosts}},
        }
    }
    path = tmp_path / "inventory" / "hosts.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    for name in hosts:
        (tmp_path / "facts" / name).mkdir(parents=True, exist_ok=True)
    return path


def write_state(tmp_path, state):
    (tmp_path / "facts" / "pmta1" / "pmta_warmup.fact").write_text(json.dumps(state))


def play(inventory_path, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory_path), str(PLAYBOOK), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]
    return completed.stdout


def changed_count(output):
    return sum(int(part.split("=")[1]) for part in output.split() if part.startswith("changed="))


def weights(out_dir):
    document = json.loads((out_dir / "mumara.json").read_text())
    return {t["node"]: (t["daily_capacity"], t["weight"]) for t in document["transports"]}


def step(state, now):
    observations = {IP_WARMING: {isp: {"sent": 1000, "delivered": 1000} for isp in _isp_groups.group_names()}}
    return _warmup.plan(state=state, observations=observations, now=now, schedule=SCHEDULE, ips=[IP_WARMING],
                        thresholds={"min_stage_hours": 0, "min_delivered_share": 0.0})["state"]


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs the project venv (make install)")
def test_export_follows_warmup_and_validates(tmp_path):
    inventory_path = inventory(tmp_path)
    out_dir = tmp_path / "inventory" / "injector-transports"

    state1 = step(None, "2026-11-01T00:00:00Z")
    write_state(tmp_path, state1)
    first = play(inventory_path)
    assert changed_count(first) == 2  # the directory, then the files (one looped task)
    for suffix in ("json", "yml", "csv"):
        assert (out_dir / ("mumara." + suffix)).stat().st_mode & 0o777 == 0o640
    document = json.loads((out_dir / "mumara.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert yaml.safe_load((out_dir / "mumara.yml").read_text()) == document
    rows = list(csv.DictReader((out_dir / "mumara.csv").open()))
    assert [(r["node"], r["host"], r["port"], r["x_virtual_mta"]) for r in rows] == [
        ("pmta1", "198.51.100.10", "587", "marketing"), ("pmta2", "198.51.100.20", "2525", "marketing")]
    assert "vault-secret" not in (out_dir / "mumara.json").read_text() + (out_dir / "mumara.csv").read_text()
    before = weights(out_dir)

    assert changed_count(play(inventory_path)) == 0  # idempotent

    write_state(tmp_path, step(state1, "2026-11-02T00:00:00Z"))
    check = play(inventory_path, "--check", "--diff")
    assert changed_count(check) >= 1  # the new weights would be written ...
    assert weights(out_dir) == before  # ... but check mode wrote nothing
    play(inventory_path)
    after = weights(out_dir)
    assert after["pmta1"][0] > before["pmta1"][0]
    assert after["pmta1"][1] > before["pmta1"][1] and after["pmta2"][1] < before["pmta2"][1]
    jsonschema.validate(json.loads((out_dir / "mumara.json").read_text()), SCHEMA)


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs the project venv (make install)")
def test_passwords_only_when_asked(tmp_path):
    inventory_path = inventory(tmp_path)
    output = play(inventory_path, "-e", '{"injector_transports_include_passwords": true}')
    out_dir = tmp_path / "inventory" / "injector-transports"
    document = json.loads((out_dir / "mumara.json").read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["passwords_included"] is True
    assert {t["password"] for t in document["transports"]} == {"vault-secret"}
    assert (out_dir / "mumara.json").stat().st_mode & 0o777 == 0o600
    assert "vault-secret" not in output


@pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="needs the project venv (make install)")
def test_export_without_the_vault_loaded(tmp_path):
    inventory_path = inventory(tmp_path)
    data = yaml.safe_load(inventory_path.read_text())
    data["all"]["vars"]["powermta_injectors"][0]["password"] = "{{ vault_mumara_smtp_password }}"
    inventory_path.write_text(yaml.safe_dump(data))
    play(inventory_path)  # the password is never resolved when it does not go into the files
    document = json.loads((tmp_path / "inventory" / "injector-transports" / "mumara.json").read_text())
    assert document["passwords_included"] is False and len(document["transports"]) == 2
