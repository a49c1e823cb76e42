"""The monitoring role installs the collection's module_utils files read through this lookup."""

from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible_collections.mailops.powermta.plugins.lookup.module_utils_source import LookupModule

ROOT = Path(__file__).resolve().parents[4]


def lookup():
    return LookupModule()


def test_returns_the_collection_files_byte_for_byte():
    texts = lookup().run(["_monitoring/health.py", "_monitoring/metrics.py"], variables={})
    assert texts == [(ROOT / "plugins/module_utils" / name).read_text(encoding="utf-8")
                     for name in ("_monitoring/health.py", "_monitoring/metrics.py")]


@pytest.mark.parametrize("name", ["../../galaxy.yml", "/etc/passwd", "_health", "_dns/../../x.py"])
def test_only_module_utils_files_are_served(name):
    with pytest.raises(AnsibleLookupError, match="is not a file name under plugins/module_utils"):
        lookup().run([name], variables={})


def test_a_missing_file_is_named():
    with pytest.raises(AnsibleLookupError, match="plugins/module_utils/_nope.py of mailops.powermta cannot be read"):
        lookup().run(["_nope.py"], variables={})
