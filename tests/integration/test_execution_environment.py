# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml: `ansible-builder create` makes a build context that installs the built collection.

No container engine is needed: the collection is built with ansible-galaxy, the context is created with
ansible-builder (the real tool), and the Containerfile's steps are checked against the files in the context.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (requirements-dev.txt)")
    return found


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory):
    work = tmp_path_factory.mktemp("ee")
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    subprocess.run([_tool("ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(work / "build")],
                   check=True, capture_output=True, text=True)
    shutil.copy(ROOT / "execution-environment.yml", work / "execution-environment.yml")
    res = subprocess.run([_tool("ansible-builder"), "create", "-f", str(work / "execution-environment.yml"),
                          "-c", str(work / "context"), "--output-filename", "Containerfile", "-v", "2"],
                         check=False, capture_output=True, text=True, cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    return {"work": work, "context": work / "context", "galaxy": galaxy, "log": res.stdout + res.stderr}


def test_the_definition_names_the_version_galaxy_yml_builds():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    wanted = f"build/{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert [f["src"] for f in ee["additional_build_files"]] == [wanted], (
        "execution-environment.yml must ship the tarball `make build` writes for galaxy.yml's version")


def test_context_holds_the_built_collection_as_a_file(ee_context):
    galaxy = ee_context["galaxy"]
    assert "No matches" not in ee_context["log"] and "does not exist" not in ee_context["log"]
    tarballs = list((ee_context["context"] / "_build" / "collection").glob("*.tar.gz"))
    assert [t.name for t in tarballs] == [f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"]
    assert tarballs[0].is_file()
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["name"] == "powermta"
    assert manifest["collection_info"]["version"] == galaxy["version"]
    assert "plugins/action/pmta_config_render.py" in names
    assert not any(n.startswith(("tests/", "molecule/", ".venv/")) for n in names)


def test_containerfile_installs_what_the_context_holds(ee_context):
    context = ee_context["context"]
    containerfile = (context / "Containerfile").read_text()
    copies = re.findall(r"^COPY (_build/\S+) (\S+)$", containerfile, re.M)
    ours = [(src, dest) for src, dest in copies if "collection" in src]
    assert len(ours) == 1, containerfile
    src, dest = ours[0]
    assert (context / src).is_dir()
    install = re.search(r"^RUN ansible-galaxy collection install (.*?) (/\S+\.tar\.gz)", containerfile, re.M)
    assert install, containerfile
    # Into the system collections path: the image runs as uid 1000, so root's ~/.ansible is not read.
    assert "-p /usr/share/ansible/collections" in install.group(1)
    # The RUN's path, mapped back from the image into the context, must match exactly the built tarball.
    target = install.group(2)
    assert target.startswith(dest.rstrip("/") + "/")
    in_context = os.path.join(context, src, target[len(dest.rstrip("/")) + 1:])
    matches = glob.glob(in_context)
    assert len(matches) == 1 and os.path.isfile(matches[0]) and matches[0].endswith(".tar.gz"), matches
    # Installed after the dependencies it needs (ansible-core and the galaxy collections come first).
    assert containerfile.index(target) > containerfile.index("COPY --from=galaxy /usr/share/ansible")


def test_the_image_gets_every_dependency_of_the_collection():
    # The install uses --no-deps, so the galaxy section must list what galaxy.yml depends on.
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    in_image = {c["name"] for c in ee["dependencies"]["galaxy"]["collections"]}
    assert set(galaxy.get("dependencies") or {}) <= in_image
