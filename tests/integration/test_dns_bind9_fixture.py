# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench's BIND 9 fixture serves what its docstring promises (other suites rely on it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TESTBED, bind9_testbed
from dns_helpers import query, serial, txt_values


@pytest.mark.parametrize("address, answer", [
    ("127.0.0.2", "127.0.0.2"),
    ("::ffff:127.0.0.2", "127.0.0.2"),
    ("203.0.113.66", "127.0.0.2"),
    ("203.0.113.67", "127.0.0.10"),
    ("203.0.113.68", "127.255.255.254"),
    ("2001:db8::66", "127.0.0.2"),
    ("127.0.0.1", None),
    ("::ffff:127.0.0.1", None),
    ("203.0.113.10", None),
])
def test_zen_dnsbl_test_points(bind9, address, answer):
    name = "%s.zen.dnsbl.test" % bind9_testbed.reverse_pointer(address)
    rrset = query(bind9, name, "A")
    assert (rrset[0].address if rrset else None) == answer


def test_dnsbl_reasons_and_broken_lists(bind9):
    assert txt_values(bind9, "66.113.0.203.zen.dnsbl.test") == ["listed: bench test"]
    assert query(bind9, "1.0.0.127.wild.dnsbl.test", "A")[0].address == "127.0.0.2"  # lists everything
    assert query(bind9, "2.0.0.127.errors.dnsbl.test", "A")[0].address == "127.255.255.254"


def test_updatable_zones_start_at_serial_1(bind9_module):
    for zone in bind9_testbed.UPDATABLE_ZONES:
        assert serial(bind9_module, zone) == 1


def test_cli_start_writes_connection_json_and_stop_stops(tmp_path):
    script = str(TESTBED / "bind9.py")
    subprocess.run([sys.executable, script, "start", "--dir", str(tmp_path)], check=True, capture_output=True)
    try:
        connection = json.loads((tmp_path / "connection.json").read_text())
        assert set(connection) == {"server", "port", "key_name", "key_secret", "key_algorithm"}
        assert (tmp_path / "connection.json").stat().st_mode & 0o077 == 0
        server = bind9_testbed.Bind9Server(tmp_path, port=connection["port"])
        assert serial(server, "example.com") == 1
    finally:
        subprocess.run([sys.executable, script, "stop", "--dir", str(tmp_path)], check=True, capture_output=True)
    assert not (tmp_path / "named.proc.pid").exists()
