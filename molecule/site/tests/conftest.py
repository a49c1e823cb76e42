"""Fixtures shared by the site scenario's fleet-wide tests (testinfra runs each test once per host)."""

import pytest
from helpers import HOSTS


@pytest.fixture(scope="module")
def fleet(host):
    """testinfra hosts of the whole fleet, by name."""
    return {name: host.get_host("ansible://%s?ansible_inventory=%s" % (name, host.backend.ansible_inventory))
            for name in HOSTS}


@pytest.fixture
def once(host):
    """A fleet-wide test runs once (on the first host), not once per host."""
    if host.backend.get_hostname() != HOSTS[0]:
        pytest.skip("runs once for the fleet")


def pytest_configure(config):
    config.addinivalue_line("markers", "after_merge(branch): passes only once the named helper branch is merged "
                                       "(test_mistakes_change_nothing.py); never skipped")
