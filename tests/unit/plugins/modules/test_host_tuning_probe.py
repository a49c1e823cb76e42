"""The host_tuning_probe module on this machine: read-only, all problems reported together."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.mailops.powermta.plugins.modules import host_tuning_probe


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit):
        host_tuning_probe.main()
    return json.loads(capsys.readouterr().out)


def test_every_problem_is_reported_at_once_naming_the_variables(tmp_path, capsys):
    not_a_device = tmp_path / "disk.img"
    not_a_device.write_bytes(b"\0" * 4096)
    result = run_module(
        {
            "spool_disks": [
                {"device": "/dev/disk/by-id/nvme-absent-test-disk", "mount_point": "/var/spool/pmta1"},
                {"device": str(not_a_device), "mount_point": "/var/spool/pmta1/inner"},
            ],
            "sysctl": [{"name": "net.core.somaxconn", "value": "lots"}],
            "min_ram_mb": 100 * 1024 * 1024,
            "_ansible_check_mode": True,
        },
        capsys,
    )
    assert result["changed"] is False and not result.get("failed")
    problems = "\n".join(result["problems"])
    assert "host_tuning_spool_disks[0].device: /dev/disk/by-id/nvme-absent-test-disk does not exist" in problems
    assert f"host_tuning_spool_disks[1].device: {not_a_device} is not a block device" in problems
    assert "host_tuning_spool_disks[1].mount_point: /var/spool/pmta1/inner lies inside /var/spool/pmta1" in problems
    assert "host_tuning_min_ram_mb: the host has" in problems
    assert "net.core.somaxconn = 'lots' is not an integer" in problems
    assert result["disks"] == []
    assert result["memtotal_mb"] > 0


def test_clean_input_plans_nothing_and_reports_packages(capsys):
    result = run_module({"packages": ["dpkg", "surely-not-installed-package-xyz"], "_ansible_check_mode": True}, capsys)
    assert result["problems"] == []
    assert result["packages_missing"] == ["surely-not-installed-package-xyz"]
    assert isinstance(result["user_exists"], bool)


def test_log_disk_without_device_is_refused(capsys):
    result = run_module({"log_disk": {"mount_point": "/var/log/pmta"}}, capsys)
    assert result["problems"] == [
        "host_tuning_log_disk.device: give the device of the log disk, or leave log_disk empty"
    ]
