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
    assert result["disks"] == [] and result["required_mounts"] == []
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


def test_sysctl_layers_are_merged_checked_and_returned_in_order(capsys):
    result = run_module({
        "sysctl": [{"name": "net.core.somaxconn", "value": 4096, "comment": "backlog"},
                   {"name": "vm.swappiness", "value": 1}],
        "sysctl_layers": [
            {"variable": "host_tuning_sysctl", "items": [{"name": "net.core.somaxconn", "value": 8192}]},
            {"variable": "host_tuning_host_sysctl",
             "items": [{"name": "vm.swappiness", "state": "absent"}, {"name": "fs.nr_open", "value": 1048576}]},
        ],
        "limit_nofile": 2000000,
        "_ansible_check_mode": True,
    }, capsys)
    assert [(i["name"], i["value"]) for i in result["sysctl"]] == [("net.core.somaxconn", 8192),
                                                                   ("fs.nr_open", 1048576)]
    assert result["sysctl"][0]["comment"] == "backlog"
    assert all("skipped" in item for item in result["sysctl"])
    assert result["problems"] == ["host_tuning_limit_nofile: 2000000 exceeds fs.nr_open (1048576); lower it or add"
                                  " fs.nr_open to host_tuning_sysctl"]


def test_a_bad_value_in_a_layer_is_a_problem(capsys):
    result = run_module({"sysctl_layers": [{"variable": "host_tuning_group_sysctl",
                                            "items": [{"name": "net.core.somaxconn", "value": "lots"}]}]}, capsys)
    assert any("net.core.somaxconn = 'lots' is not an integer" in p for p in result["problems"])


def test_directories_missing_are_returned_to_fix(tmp_path, capsys):
    missing = str(tmp_path / "pmta.service.d")
    result = run_module({"directories": [{"path": missing}], "_ansible_check_mode": True}, capsys)
    assert result["directories_to_fix"] == [{"path": missing, "owner": "root", "group": "root", "mode": "0755"}]
