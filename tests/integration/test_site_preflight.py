"""The fleet preflight (playbooks/preflight.yml) on the example inventory and on broken copies of it.

Runs the real playbook with ansible-playbook; the preflight only reads, so no host is contacted.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
VAULT_EXAMPLE = EXAMPLE / "group_vars" / "all" / "vault.yml.example"


def run_preflight(inventory):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "-e", "@%s" % VAULT_EXAMPLE,
         str(ROOT / "playbooks" / "preflight.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.fixture
def example_copy(tmp_path):
    target = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, target)
    return target


def edit_host_vars(inventory, host, change):
    path = inventory / "host_vars" / ("%s.yml" % host)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_example_inventory_passes():
    result = run_preflight(EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Fleet model consistent: 3 host(s)" in result.stdout


def test_ip_on_two_hosts_is_refused_naming_both(example_copy):
    stolen_ip = yaml.safe_load((EXAMPLE / "host_vars" / "pmta-us1.yml").read_text())["powermta_vmtas"][0]["ip"]
    edit_host_vars(example_copy, "pmta-eu1", lambda d: d["powermta_vmtas"][0].update(ip=stolen_ip))
    result = run_preflight(example_copy)
    assert result.returncode != 0
    assert "IP %s is used by pmta-eu1/" % stolen_ip in result.stdout
    assert "pmta-us1/" in result.stdout and "powermta_vmtas" in result.stdout


def test_unknown_pool_is_refused_naming_host_and_variable(example_copy):
    edit_host_vars(example_copy, "pmta-us2", lambda d: d["powermta_vmtas"][3].update(pool="marketing-apac"))
    result = run_preflight(example_copy)
    assert result.returncode != 0
    assert "pmta-us2: vMTA" in result.stdout and "'marketing-apac'" in result.stdout
    assert "powermta_pools" in result.stdout


def test_missing_license_is_refused(example_copy):
    edit_host_vars(example_copy, "pmta-eu1", lambda d: d.update(powermta_license=""))
    result = run_preflight(example_copy)
    assert result.returncode != 0
    assert "pmta-eu1: no PowerMTA license" in result.stdout


def test_domain_without_selector_is_refused(example_copy):
    edit_host_vars(example_copy, "pmta-us1", lambda d: d.update(powermta_host_domains=[
        {"name": "example.com", "dkim_selectors": []}]))
    result = run_preflight(example_copy)
    assert result.returncode != 0
    assert "pmta-us1: domain example.com has no dkim_selectors" in result.stdout
