"""The fleet model decides, templates print (issue 22): no Jinja programs over fleet data.

Derived facts live in plugins/module_utils (_fleet/derived.py, _fleet/summary.py, _fleet/add_ip.py,
_warmup/report.py) and are unit-tested there; the files below only print or pass them on. A ``{% set %}`` or
``namespace(...)`` here is a rule decided a second time in Jinja: move it into Python instead.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PRINT_ONLY = sorted(
    list((ROOT / "roles" / "powermta" / "templates").rglob("*.j2"))
    + [ROOT / "playbooks" / "templates" / "lab_summary.txt.j2",
       ROOT / "playbooks" / "templates" / "lab_summary_mail.txt.j2",
       ROOT / "playbooks" / "add_ip.yml",
       ROOT / "playbooks" / "lab_summary.yml",
       ROOT / "roles" / "warmup" / "tasks" / "report.yml",
       ROOT / "roles" / "powermta" / "vars" / "main.yml"]
)
SET_RE = re.compile(r"\{%-?\s*set\s")


@pytest.mark.parametrize("path", PRINT_ONLY, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_jinja_set_in_files_that_print_the_model(path):
    found = [number for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if SET_RE.search(line)]
    assert found == [], "%s lines %s: decide this in Python (the fleet model or a filter)" % (path, found)


def test_no_jinja_namespace_in_roles_or_playbooks():
    found = [str(path.relative_to(ROOT)) for top in ("roles", "playbooks") for path in (ROOT / top).rglob("*")
             if path.is_file() and path.suffix in (".j2", ".yml", ".yaml") and "namespace(" in path.read_text("utf-8")]
    assert found == []


def test_one_definition_of_warming():
    """``warmup`` is read by _fleet/derived.py is_warming only: no ``is True`` / truthiness readings elsewhere."""
    readers = []
    for path in (ROOT / "plugins").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.relative_to(ROOT).as_posix() == "plugins/module_utils/_fleet/derived.py":
            continue
        if re.search(r"""get\(["']warmup["']\)|\[["']warmup["']\]""", text):
            readers.append(str(path.relative_to(ROOT)))
    for top in ("roles", "playbooks"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in (".j2", ".yml") and re.search(
                    r"""selectattr\(['"]warmup['"]|\.warmup \| *(default|bool)|\.warmup\b *(is|==)""",
                    path.read_text(encoding="utf-8")):
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
