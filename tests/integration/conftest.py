# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration suite: real services started by the tests.

``bind9``        one BIND 9 named for the whole session (tests must use their own names
                 in it, e.g. a label unique to the test, so they do not interfere);
``fresh_bind9``  a new named for one test (for tests that stop it, reset zones or count serials);
``bind9_module`` a named per test module (for modules that own whole zones);
``bind9_factory`` call it to start more servers; all are stopped at the end of the test.
See tests/testbed/bind9.py for the zones served.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

TESTBED = Path(__file__).resolve().parents[1] / "testbed"


def _load_bind9_module():
    name = "mailops_testbed_bind9"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TESTBED / "bind9.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bind9_testbed = _load_bind9_module()
Bind9Server = bind9_testbed.Bind9Server


def _require_named():
    if shutil.which("named") is None:
        pytest.skip("BIND 9 named not installed (apt-get install bind9 bind9-utils; `make install` does it)")


@pytest.fixture(scope="session")
def bind9(tmp_path_factory):
    """One named shared by the session."""
    _require_named()
    server = Bind9Server(tmp_path_factory.mktemp("bind9-session"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bind9_module(tmp_path_factory):
    """A named for one test module (for modules that own whole zones)."""
    _require_named()
    server = Bind9Server(tmp_path_factory.mktemp("bind9-module"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bind9_factory(tmp_path_factory):
    """Start extra named instances: ``server = bind9_factory()``; stopped after the test."""
    _require_named()
    started = []

    def make(**kwargs):
        server = Bind9Server(tmp_path_factory.mktemp("bind9"), **kwargs)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def fresh_bind9(bind9_factory):
    """A named of its own for one test."""
    return bind9_factory()
