# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_tuning on a fresh host: `--check` and bad input change nothing (checked on the host).

Run by the scenario's prepare step, before converge, with Molecule's environment
(MOLECULE_INVENTORY_FILE, ANSIBLE_CONFIG). Each case runs the real role with
ansible-playbook against the bench host; the order matters (the host stays fresh).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parent.parent
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
VARS = yaml.safe_load((SCENARIO / "vars" / "main.yml").read_text())
DISK1 = VARS["host_tuning_spool_disks"][0]["device"]
DISK2 = VARS["host_tuning_spool_disks"][1]["device"]

pytestmark = pytest.mark.skipif(not INVENTORY, reason="needs Molecule's inventory (run by molecule prepare)")

# What the role could change, as one text: disks' signatures, fstab, mounts, the files
# and directories it writes, accounts, live sysctl values, services.
SNAPSHOT = r"""
for d in {disks}; do echo "== $d"; blkid -p -o export "$d"; echo "rc=$?"; done
echo "== fstab"; sha256sum /etc/fstab
echo "== mounts"; findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | sort
echo "== files"
ls -la --time-style=full-iso /etc/sysctl.d /etc/security/limits.d /etc/systemd/system /etc/logrotate.d \
  /etc/unbound/unbound.conf.d /var/spool 2>&1
ls -la --time-style=full-iso /etc/systemd/journald.conf.d /etc/systemd/system/pmta.service.d \
  /var/spool/pmta1 /var/spool/pmta2 2>&1
echo "== accounts"; getent passwd pmta; getent group pmta
echo "== sysctl"; sysctl net.core.somaxconn vm.swappiness net.ipv4.ip_local_port_range fs.file-max
echo "== services"; systemctl is-enabled unbound
"""


@pytest.fixture(scope="module")
def host():
    hosts = testinfra.get_hosts(["ansible://all"], ansible_inventory=INVENTORY)
    assert len(hosts) == 1, "the scenario has one host"
    return hosts[0]


def snapshot(host):
    return host.run(SNAPSHOT.format(disks=f"{DISK1} {DISK2}")).stdout


def run_role(extra_vars=None, check=False):
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", INVENTORY, str(SCENARIO / "converge.yml"),
    ]
    if extra_vars:
        argv += ["-e", json.dumps(extra_vars)]
    if check:
        argv += ["--check", "--diff"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    match = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups()), strict=True))


@pytest.fixture(scope="module")
def fresh(host):
    state = snapshot(host)
    # The host really is fresh: no filesystem on the spool disks, nothing of ours written.
    assert "TYPE=" not in state.split("== fstab")[0], state
    assert "60-mailops-powermta.conf" not in state
    return state


def test_check_mode_on_a_fresh_host_changes_nothing(host, fresh):
    rc, out = run_role(check=True)
    assert rc == 0, out
    counts = recap(out)
    assert counts["failed"] == 0
    assert counts["changed"] > 0, "check mode should report what it would change"
    assert "Create XFS on spool and log disks" in out
    assert snapshot(host) == fresh


def spool_disks(**second):
    disks = [dict(d) for d in VARS["host_tuning_spool_disks"]]
    disks[1].update(second)
    return disks


@pytest.mark.parametrize(
    "extra_vars,message",
    [
        pytest.param(
            {"host_tuning_spool_disks": spool_disks(device="/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_absent")},
            "host_tuning_spool_disks[1].device: /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_absent does not exist",
            id="missing-device",
        ),
        pytest.param(
            {"host_tuning_min_ram_mb": 16384},
            "host_tuning_min_ram_mb: the host has",
            id="ram-below-minimum",
        ),
        pytest.param(
            {"host_tuning_spool_disks": spool_disks(mount_point="/var/spool/pmta1/inner")},
            "host_tuning_spool_disks[1].mount_point: /var/spool/pmta1/inner lies inside /var/spool/pmta1",
            id="mount-point-inside-another-spool",
        ),
        pytest.param(
            {"host_tuning_host_sysctl": [{"name": "net.core.somaxconn", "value": "lots"}]},
            "net.core.somaxconn = 'lots' is not an integer",
            id="non-integer-sysctl",
        ),
        pytest.param(
            {"host_tuning_spool_disks": spool_disks(device="/dev/vda", force_format=True)},
            "host_tuning_spool_disks[1].device: /dev/vda (/dev/vda) holds the root filesystem",
            id="root-disk-even-with-force",
        ),
    ],
)
def test_bad_input_fails_in_preflight_and_changes_nothing(host, fresh, extra_vars, message):
    rc, out = run_role(extra_vars)
    assert rc != 0, out
    assert message in out, out
    assert "nothing was changed" in out
    assert recap(out)["changed"] == 0
    assert snapshot(host) == fresh


def test_device_with_another_filesystem_is_refused_and_kept(host, fresh):
    host.run_expect([0], f"mkfs.ext4 -q -F -L keepme {DISK2}")
    try:
        before = snapshot(host)
        assert "TYPE=ext4" in before
        rc, out = run_role()
        assert rc != 0, out
        assert f"host_tuning_spool_disks[1].device: {DISK2} holds a ext4 filesystem; refusing to format it" in out
        assert "force_format: true" in out
        assert recap(out)["changed"] == 0
        after = snapshot(host)
        assert after == before  # still ext4 with its label, disk 1 still empty
        assert "LABEL=keepme" in after
    finally:
        host.run_expect([0], f"wipefs -a -q {DISK2}")
    assert snapshot(host) == fresh
