"""The fleet model decides, templates print (issue 22): no Jinja programs anywhere in roles/, playbooks/, tools/.

Derived facts live in plugins/module_utils (_fleet/derived.py, _fleet/summary.py, _fleet/add_ip.py,
_warmup/report.py, _operations/queue.py, _host_tuning/...) and are unit-tested there; templates and task files only
print or pass them on. A ``{% set %}`` or ``namespace(...)`` in any of them is a rule decided a second time in
Jinja: move it into Python instead (a filter, or the module that already returns the data).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOPS = ("roles", "playbooks", "tools")
JINJA_FILES = sorted(path for top in TOPS for path in (ROOT / top).rglob("*")
                     if path.is_file() and path.name.endswith((".j2", ".yml", ".yaml")))
SET_RE = re.compile(r"\{%-?\s*set\s")


def _relative(path):
    return str(path.relative_to(ROOT))


def test_the_scan_covers_every_template_and_task_file():
    """Not a hand list: every role's templates and tasks, the playbooks and tools/ are scanned."""
    names = {_relative(path) for path in JINJA_FILES}
    assert "playbooks/incident.yml" in names
    assert "roles/warmup/tasks/configure.yml" in names
    assert "tools/render_pmta_configs.yml" in names
    assert any(name.startswith("roles/powermta/templates/") and name.endswith(".j2") for name in names)
    assert len(names) > 50


@pytest.mark.parametrize("path", JINJA_FILES, ids=_relative)
def test_no_jinja_set(path):
    found = [number for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if SET_RE.search(line)]
    assert found == [], "%s lines %s: decide this in Python (the fleet model, a filter or a module)" % (
        _relative(path), found)


def test_no_jinja_namespace():
    found = [_relative(path) for path in JINJA_FILES if "namespace(" in path.read_text(encoding="utf-8")]
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
