# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A refused config that would need a restart: files restored, PowerMTA NOT restarted (issue 16).

`pmta test config` refuses it, so the new config never reached the daemon; restarting pmta and pmtahttp
after restoring the files would only drop connections.
"""

from __future__ import annotations

import json

import pytest
from test_powermta import REAL_PACKAGE, config_checksums, playbook


def main_pids(host):
    with host.sudo():
        return {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in ("pmta", "pmtahttp")}


@pytest.mark.skipif(REAL_PACKAGE, reason="needs the test double's refusal hook (/etc/pmta/TEST-DOUBLE-refuse)")
def test_refused_restart_only_config_is_restored_without_a_restart(host):
    before_files = config_checksums(host)
    before_pids = main_pids(host)
    assert all(pid not in ("", "0") for pid in before_pids.values()), before_pids
    # http-mgmt-port is read only at start (conf.d/startup.conf, restart: true).
    with host.sudo():
        host.run_expect([0], "echo 'http-mgmt-port 8181' > /etc/pmta/TEST-DOUBLE-refuse")
    try:
        result = playbook("-e", json.dumps({"powermta_http_mgmt_port": 8181}))
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert "refused the new configuration" in output, output[-3000:]
        assert "Test the configuration with PowerMTA" in output, output[-3000:]
    finally:
        with host.sudo():
            host.run("rm -f /etc/pmta/TEST-DOUBLE-refuse")
    assert config_checksums(host) == before_files
    assert main_pids(host) == before_pids, "PowerMTA was restarted although the refused config never loaded"
    with host.sudo():
        assert host.check_output("find /etc/pmta -name '*~'") == ""
