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


def run_preflight(inventory, **environment):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **environment)
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "-e", "@%s" % VAULT_EXAMPLE,
         str(ROOT / "playbooks" / "preflight.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def stand_in_package(path):
    """The operator's PowerMTA package is theirs to supply; preflight only checks that the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a package: preflight only checks that the file exists\n")


@pytest.fixture
def example_copy(tmp_path):
    target = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, target)
    stand_in_package(target / "files" / "PowerMTA-5.0r8.deb")  # the example's "{{ inventory_dir }}/files/..."
    return target


def edit_host_vars(inventory, host, change):
    path = inventory / "host_vars" / ("%s.yml" % host)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


def test_example_inventory_passes(example_copy):
    result = run_preflight(example_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Fleet model consistent: 3 host(s)" in result.stdout


def test_example_inventory_without_the_package_file_is_refused(example_copy):
    """The role asserts the package is a file on the controller before installing: preflight refuses it first."""
    (example_copy / "files" / "PowerMTA-5.0r8.deb").unlink()
    result = run_preflight(example_copy)
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert ("pmta-eu1: powermta_package_src %s is not a file on the controller"
            % (example_copy / "files" / "PowerMTA-5.0r8.deb")) in flat, result.stdout[-3000:]


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


def test_role_alone_builds_the_model_from_play_vars_and_checks_the_host(tmp_path):
    """Without playbooks/preflight.yml the powermta role builds the fleet model (the fleet role, same action, once),
    seeing the play's vars_files, then checks the host's interfaces: here the controller, over a local
    connection, in check mode and only up to the preflight."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"pmta_fleet": {"hosts": {"ctl1": {
        "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    (tmp_path / "fleet.yml").write_text(yaml.safe_dump({
        "powermta_package_name": "pmta", "powermta_license": "LICENSE", "powermta_hostname": "pmta1.example.com",
        "powermta_pools": [{"name": "transactional"}],
        "powermta_vmtas": [{"name": "tx-01", "ip": "192.0.2.99", "hostname": "mta99.example.com",
                            "pool": "transactional"}]}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "The role alone", "hosts": "pmta_fleet", "gather_facts": True, "vars_files": ["fleet.yml"],
        "roles": [{"role": "mailops.powermta.powermta"}]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
         str(tmp_path / "play.yml"), "--tags", "powermta_preflight", "--check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "TASK [mailops.powermta.fleet : Build the fleet model (when this run has none that fits)" in output
    assert "ok: [ctl1 -> localhost]" in output  # the model (package, license, vMTAs from vars_files) is fine
    flat = " ".join(output.split())
    assert "ctl1: powermta_vmtas item tx-01: IP 192.0.2.99 is not configured on ctl1" in flat, output[-3000:]


SCENARIOS_WITH_INVENTORY = sorted(path.parent.parent.name
                                  for path in (ROOT / "molecule").glob("*/inventory/group_vars"))


@pytest.mark.parametrize("scenario", SCENARIOS_WITH_INVENTORY)
def test_molecule_scenario_inventory_passes_preflight_on_the_controller(tmp_path, scenario):
    """Each scenario's inventory (platforms' groups + its group_vars/host_vars) passes playbooks/preflight.yml."""
    source = ROOT / "molecule" / scenario
    platforms = yaml.safe_load((source / "molecule.yml").read_text())["platforms"]
    groups = {}
    for platform in platforms:
        for group in platform.get("groups", []):
            groups.setdefault(group, {"hosts": {}})["hosts"][platform["name"]] = {
                "ansible_host": "192.0.2.1", "ansible_ssh_executable": "/bin/false"}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    for part in ("group_vars", "host_vars"):
        if (source / "inventory" / part).is_dir():
            shutil.copytree(source / "inventory" / part, tmp_path / part)
    # The scenarios' package is the test double Molecule builds into its ephemeral directory.
    ephemeral = tmp_path / "ephemeral"
    stand_in_package(ephemeral / "pmta-test-double" / "pmta-test-double_all.deb")
    result = run_preflight(tmp_path, MOLECULE_EPHEMERAL_DIRECTORY=str(ephemeral))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Fleet model consistent: %d host(s)" % len(groups["pmta_fleet"]["hosts"]) in result.stdout


def test_list_in_group_vars_and_host_vars_is_refused_naming_both(example_copy):
    """host_vars/pmta-eu1.yml setting powermta_injectors would replace the group's list: refused, not dropped."""
    edit_host_vars(example_copy, "pmta-eu1", lambda d: d.update(powermta_injectors=[
        {"name": "other", "password": "a-long-password-9", "networks": ["198.51.100.200/32"]}]))
    result = run_preflight(example_copy)
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert "pmta-eu1: powermta_injectors is set in group pmta_fleet and in host pmta-eu1" in flat, result.stdout
    assert "powermta_host_injectors" in flat
