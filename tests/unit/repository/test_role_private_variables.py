"""Roles meet at declared seams only (issue 22): no file outside roles/R reads role R's private ``__R_`` variables.

A role's ``__<role>_`` variables are its own; another role, a playbook or a tool under tools/ uses the role's
documented variables, an entry point of its meta/argument_specs.yml (``tasks_from``) and the outputs it documents
(e.g. ``powermta_rendered`` of the powermta role's ``lint`` entry point).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks").is_dir())
SCANNED = sorted(path for top in ("roles", "playbooks", "tools") for path in (ROOT / top).rglob("*")
                 if path.is_file() and path.suffix in (".yml", ".yaml", ".j2", ".py", ".sh", ".cfg", ".md"))


def _private_reads(role):
    """``[(file, line number, variable)]`` of role's ``__<role>_`` variables used outside roles/<role>/."""
    pattern = re.compile(r"(?<![A-Za-z0-9_])__%s_[A-Za-z0-9_]+" % re.escape(role))
    own = ROOT / "roles" / role
    found = []
    for path in SCANNED:
        if own in path.parents:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [(str(path.relative_to(ROOT)), number, name) for name in pattern.findall(line)]
    return found


def test_the_roles_and_files_are_found():
    assert {"powermta", "warmup", "dns", "host_tuning", "monitoring", "fleet"} <= set(ROLES)
    assert ROOT / "tools" / "render_pmta_configs.yml" in SCANNED


@pytest.mark.parametrize("role", ROLES)
def test_no_file_outside_the_role_reads_its_private_variables(role):
    assert _private_reads(role) == []
