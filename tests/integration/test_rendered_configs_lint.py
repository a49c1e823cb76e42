# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every PowerMTA config the collection renders lints with zero errors and zero warnings (issue 23).

The powermta role's own render-and-lint step (tools/render_pmta_configs.yml runs roles/powermta/tasks/lint.yml
on the controller, no host contacted) for the inventories we ship and test with: docs/examples/powermta,
inventories/example, the lab, and the molecule scenarios that render PowerMTA configs (powermta, warmup, site,
mailflow). The role lints with powermta_lint_fail_on=warning, and each staging tree is linted again here.
docs/examples/powermta/rendered must be what the role renders for pmta-eu1 (tools/render-example.sh).
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".ansible" / "collections"))

from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import lint_path  # noqa: E402

ANSIBLE_PLAYBOOK = ROOT / ".venv" / "bin" / "ansible-playbook"
PLAYBOOK = ROOT / "tools" / "render_pmta_configs.yml"
EXAMPLE = ROOT / "docs" / "examples" / "powermta"
MOLECULE = ROOT / "molecule"


def _molecule_inventory(scenario: str, where: Path) -> Path:
    """hosts.yml from the scenario's platforms (all in pmta_fleet), next to its inventory links if it has some."""
    platforms = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())["platforms"]
    where.mkdir(parents=True)
    hosts = {"pmta_fleet": {"hosts": {platform["name"]: {} for platform in platforms}}}
    (where / "hosts.yml").write_text(yaml.safe_dump(hosts))
    for part in ("group_vars", "host_vars"):
        linked = MOLECULE / scenario / "inventory" / part
        if linked.is_dir():
            (where / part).symlink_to(linked)
    return where / "hosts.yml"


def _cases(tmp: Path):
    """name -> (inventory, extra arguments, expected hosts)."""
    state = tmp / "lab-state"
    state.mkdir()
    (state / "injector-password").write_text("lab-injector-password-0123\n")
    cases = {
        "docs-example": (EXAMPLE / "hosts.yml", [], 2),
        # Its vault is an example file (group_vars/all/vault.yml.example): the secrets come from the command line.
        "inventories-example": (
            ROOT / "inventories" / "example" / "hosts.yml",
            ["-e", "vault_mumara_smtp_password=example-injector-password-0123",
             "-e", "vault_powermta_license=example-license"],
            3,
        ),
        "lab": (ROOT / "inventories" / "lab" / "hosts.yml", ["-e", "lab_state_dir=%s" % state], 2),
        # host_tuning's local DNS cache on: PowerMTA resolves with it (name-server) without a second variable.
        "docs-example-unbound": (EXAMPLE / "hosts.yml",
                                 ["-e", '{"host_tuning_unbound_enabled": true, '
                                        '"host_tuning_unbound_interfaces": ["127.0.0.1", "::1"]}'], 2),
    }
    for scenario, variables in (("powermta", "vars/fleet.yml"), ("warmup", "vars/main.yml")):
        extra = ["-e", "@%s" % (MOLECULE / scenario / variables)]
        cases["molecule-" + scenario] = (_molecule_inventory(scenario, tmp / scenario), extra, 1)
    for scenario, hosts in (("site", 3), ("mailflow", 2)):
        cases["molecule-" + scenario] = (_molecule_inventory(scenario, tmp / scenario), [], hosts)
    return cases


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render every case at once (one ansible-playbook each, in parallel): name -> (process, trees, hosts)."""
    tmp = tmp_path_factory.mktemp("rendered")
    running = {}
    for name, (inventory, extra, hosts) in _cases(tmp).items():
        staging = tmp / "staging" / name
        staging.mkdir(parents=True)
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"),
            ANSIBLE_NOCOLOR="1",
            TMPDIR=str(staging),  # the role's staging trees land here
            MOLECULE_EPHEMERAL_DIRECTORY=str(tmp / "ephemeral"),
        )
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK), "-e", "powermta_lint_fail_on=warning"]
        running[name] = (
            subprocess.Popen(command + extra, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True),
            staging,
            hosts,
        )
    done = {}
    for name, (process, staging, hosts) in running.items():
        output = process.communicate(timeout=600)[0]
        trees = sorted(path for path in staging.iterdir() if path.name.startswith("powermta-staging-"))
        done[name] = (process.returncode, output, trees, hosts)
    return done


@pytest.mark.parametrize(
    "name",
    ["docs-example", "docs-example-unbound", "inventories-example", "lab", "molecule-powermta", "molecule-warmup",
     "molecule-site", "molecule-mailflow"],
)
def test_every_rendered_config_lints_without_findings(rendered, name):
    returncode, output, trees, hosts = rendered[name]
    assert returncode == 0, output[-4000:]
    assert len(trees) == hosts, output[-4000:]
    for tree in trees:
        result = lint_path(str(tree / "etc/pmta/config"), include_root=str(tree))
        assert [f.format() for f in result.errors + result.warnings] == [], tree
        # The warm-up includes resolve to the role's stand-ins: nothing was skipped.
        assert len(result.tree.includes.followed) >= 8 and not result.tree.includes.unfollowed
        # Our own rendering offers STARTTLS wherever it asks for AUTH (no auth-without-tls warning above, and
        # explicitly here): every <source> with require-auth yes says allow-starttls yes itself.
        for source in result.tree.blocks("source"):
            values = {directive.name: directive.value for directive in source.directives()}
            if values.get("require-auth") == "yes":
                assert values.get("allow-starttls") == "yes", (tree, source.arg)


def test_the_documented_example_is_what_the_role_renders(rendered):
    """docs/examples/powermta/rendered is complete (the warm-up includes too) and current."""
    _returncode, _output, trees, _hosts = rendered["docs-example"]
    (tree,) = [tree for tree in trees if "host-name pmta-eu1.example.com" in (tree / "etc/pmta/config").read_text()]
    shown = EXAMPLE / "rendered"
    compared = filecmp.dircmp(tree, shown)
    stale = []

    def walk(cmp, prefix=""):
        stale.extend(prefix + name for name in cmp.left_only + cmp.right_only + cmp.diff_files)
        for sub, inner in cmp.subdirs.items():
            walk(inner, prefix + sub + "/")

    walk(compared)
    assert stale == [], "run tools/render-example.sh to refresh docs/examples/powermta/rendered: %s" % json.dumps(stale)
    # Linted as it is, with no stand-ins: every include it names is in the example.
    result = lint_path(str(shown / "etc/pmta/config"), include_root=str(shown))
    assert [f.format() for f in result.errors + result.warnings] == []
    assert len(result.tree.includes.followed) == len(list((shown / "etc/pmta").rglob("*.conf")))


def test_the_test_double_s_default_config_lints_without_findings():
    """The config the test double's package installs (molecule monitoring runs PowerMTA with it)."""
    result = lint_path(str(ROOT / "tests" / "pmta_test_double" / "etc" / "config"))
    assert [f.format() for f in result.errors + result.warnings] == []


def test_powermta_resolves_with_host_tuning_s_dns_cache(rendered):
    """Guide §3.3.1.26: without name-server PowerMTA uses the OS's resolvers; with unbound on, the cache's IPs."""
    def name_servers(name):
        _returncode, _output, trees, _hosts = rendered[name]
        configs = [lint_path(str(tree / "etc/pmta/config"), include_root=str(tree)).tree for tree in trees]
        result = [[directive.value for directive in config.directives("name-server")] for config in configs]
        assert result, name
        return result

    assert name_servers("docs-example-unbound") == [["127.0.0.1", "::1"]] * 2
    assert name_servers("docs-example") == [[]] * 2
