# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure checks of the host_tuning preflight (the host-side probes run on bench hosts in Molecule)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning import probe as ht
from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning.files import required_mounts


def disk(label="host_tuning_spool_disks[0]", device="/dev/nvme0n1", mount_point="/var/spool/pmta1", **kw):
    return dict(label=label, device=device, mount_point=mount_point, **kw)


def probe(**kw):
    base = {
        "exists": True, "is_block": True, "real_device": "/dev/nvme0n1", "name": "nvme0n1", "disk": "nvme0n1",
        "majmin": "259:0", "partitions": [], "holders": [], "mounted_at": [], "swap": False, "fstype": "",
        "pttype": "", "uuid": "", "mount_point_source": None, "mount_point_device": None,
    }
    base.update(kw)
    return base


# ---------------------------------------------------------------- sysctl values


@pytest.mark.parametrize(
    "value", [1, 0, -1, "4096", "10240 65000", "4096\t87380  16777216", 16777216],
)
def test_integer_sysctl_values_pass(value):
    # A key that takes negative values, so only the integer grammar is tested here (ranges below).
    assert ht.check_sysctl_items([{"name": "kernel.perf_event_paranoid", "value": value}]) == []


@pytest.mark.parametrize(
    "name, value",
    [("vm.swappiness", -5), ("vm.swappiness", 201), ("net.core.somaxconn", 99999999999),
     ("net.ipv4.tcp_rmem", "4096 -1 16777216"), ("fs.file-max", 2**64), ("net.ipv4.ip_local_port_range", "0 65000"),
     ("net.ipv4.ip_local_port_range", "65000 10240"), ("fs.nr_open", 2**31)],
)
def test_out_of_range_sysctl_values_are_refused_naming_key_and_variable(name, value):
    (problem,) = ht.check_sysctl_items([{"name": name, "value": value}], variable="host_tuning_host_sysctl")
    assert problem.startswith("host_tuning_host_sysctl: %s = " % name)
    assert "range" in problem or "two ports" in problem


@pytest.mark.parametrize(
    "name, value",
    [("vm.swappiness", 0), ("vm.swappiness", 200), ("fs.file-max", 4194304), ("net.core.somaxconn", 65535),
     ("net.ipv4.ip_local_port_range", "10240 65535"), ("kernel.perf_event_paranoid", -1)],
)
def test_sysctl_values_in_range_pass(name, value):
    assert ht.check_sysctl_items([{"name": name, "value": value}]) == []


@pytest.mark.parametrize("value", ["fast", "1.5", "10240-65000", "", None, True, "4096 big", [1, 2]])
def test_non_integer_sysctl_values_are_refused_naming_key_and_variable(value):
    problems = ht.check_sysctl_items([{"name": "net.core.somaxconn", "value": value}], variable="host_tuning_sysctl")
    assert len(problems) == 1
    assert "host_tuning_sysctl" in problems[0] and "net.core.somaxconn" in problems[0]
    assert "not an integer" in problems[0]


def test_word_valued_sysctls_take_one_word_only():
    assert ht.check_sysctl_items([{"name": "net.ipv4.tcp_congestion_control", "value": "bbr"}]) == []
    assert ht.check_sysctl_items([{"name": "net.ipv4.tcp_congestion_control", "value": "bbr; reboot"}])


@pytest.mark.parametrize("name", ["somaxconn", "net core", "net.core.somaxconn=1", "/proc/sys/net", ""])
def test_malformed_sysctl_names_are_refused(name):
    assert "is not a sysctl key" in ht.check_sysctl_items([{"name": name, "value": 1}])[0]


def test_sysctl_path_maps_dots_and_vlan_slashes():
    assert ht.sysctl_path("net.core.somaxconn", "/p") == "/p/net/core/somaxconn"
    assert ht.sysctl_path("net.ipv4.conf.eth0/10.rp_filter", "/p") == "/p/net/ipv4/conf/eth0.10/rp_filter"


def test_probe_sysctl_sorts_writable_read_only_and_missing(tmp_path):
    (tmp_path / "net" / "core").mkdir(parents=True)
    (tmp_path / "net" / "core" / "somaxconn").write_text("4096\n")
    ro = tmp_path / "vm" / "swappiness"
    ro.parent.mkdir()
    ro.write_text("60\n")
    ro.chmod(0o444)
    items = [
        {"name": "net.core.somaxconn", "value": 1},
        {"name": "vm.swappiness", "value": 1},
        {"name": "net.core.rmem_max", "value": 1},
    ]
    writable, skipped = ht.probe_sysctl(items, proc_sys=str(tmp_path))
    reasons = {i["name"]: i["reason"] for i in skipped}
    assert "not present" in reasons["net.core.rmem_max"]
    # root may write a 0444 file; only EROFS (a read-only /proc/sys in a container) stops root
    expected = ["net.core.somaxconn"] + (["vm.swappiness"] if os.access(ro, os.W_OK) else [])
    assert [i["name"] for i in writable] == expected
    if "vm.swappiness" not in expected:
        assert "read-only" in reasons["vm.swappiness"]


# ---------------------------------------------------------------- RAM


def test_ram_allows_what_the_kernel_keeps_but_not_less():
    assert ht.check_ram(15700, 16384) == []  # a 16 GiB host reports about 15.6 GiB
    problems = ht.check_ram(7900, 16384)
    assert len(problems) == 1
    assert "host_tuning_min_ram_mb" in problems[0] and "7900 MiB" in problems[0]


def test_parse_meminfo():
    assert ht.parse_meminfo_mb("MemFree: 1 kB\nMemTotal:       16314592 kB\n") == 15932


# ---------------------------------------------------------------- mount points


def test_mount_point_inside_another_disks_spool_is_refused():
    problems = ht.check_mount_points(
        [disk(), disk("host_tuning_spool_disks[1]", "/dev/nvme1n1", "/var/spool/pmta1/more")]
    )
    assert len(problems) == 1
    assert problems[0].startswith("host_tuning_spool_disks[1].mount_point: /var/spool/pmta1/more lies inside")
    assert "host_tuning_spool_disks[0]" in problems[0]


def test_sibling_with_common_prefix_is_not_nested():
    assert ht.check_mount_points([disk(), disk("b", "/dev/nvme1n1", "/var/spool/pmta10")]) == []


@pytest.mark.parametrize("mount_point", ["/", "/var", "/var/log", "/usr", "/var/spool", "/boot"])
def test_system_directories_are_refused(mount_point):
    assert "system directory" in ht.check_mount_points([disk(mount_point=mount_point)])[0]


@pytest.mark.parametrize("mount_point", ["/home/pmta", "/root/spool", "/var/spool/postfix", "/etc/ssl"])
def test_home_and_shared_directories_are_refused(mount_point):
    problems = ht.check_mount_points([disk(mount_point=mount_point)])
    assert len(problems) == 1 and "never creates or chowns" in problems[0]
    assert problems[0].startswith("host_tuning_spool_disks[0].mount_point: %s" % mount_point)


@pytest.mark.parametrize("mount_point,fix", [("var/spool/x", "absolute"), ("/var/spool/../x", "write")])
def test_relative_or_unnormalized_mount_points_are_refused(mount_point, fix):
    assert fix in ht.check_mount_points([disk(mount_point=mount_point)])[0]


def test_same_device_or_mount_point_twice_is_refused():
    problems = ht.check_mount_points([disk(), disk("b", "/dev/nvme0n1", "/var/spool/pmta1")])
    assert any("also the mount point" in p for p in problems)
    assert any("also used by" in p for p in problems)


# ---------------------------------------------------------------- devices


def test_empty_disk_is_planned_for_formatting():
    d = disk()
    assert ht.check_disk(d, probe(), root_disks={"vda"}) == []
    plan = ht.plan_disk(d, probe())
    assert plan["format"] is True and plan["force"] is False


def test_existing_xfs_is_reused_not_formatted():
    p = probe(fstype="xfs", uuid="1234", mounted_at=["/var/spool/pmta1"], mount_point_source="259:0")
    assert ht.check_disk(disk(), p, root_disks=set()) == []
    plan = ht.plan_disk(disk(), p)
    assert plan["format"] is False and plan["uuid"] == "1234"


def test_missing_device_names_variable_and_fix():
    problems = ht.check_disk(disk(device="/dev/disk/by-id/nvme-gone"), probe(exists=False), set())
    assert problems == [
        "host_tuning_spool_disks[0].device: /dev/disk/by-id/nvme-gone does not exist on this host;"
        " check the path (ls -l /dev/disk/by-id/)"
    ]


def test_not_a_block_device():
    assert "not a block device" in ht.check_disk(disk(), probe(is_block=False), set())[0]


@pytest.mark.parametrize("name,parent", [("vda", "vda"), ("vda2", "vda")])
def test_root_disk_and_its_partitions_are_refused_even_with_force(name, parent):
    problems = ht.check_disk(disk(force_format=True), probe(name=name, disk=parent), root_disks={"vda1", "vda"})
    assert len(problems) == 1 and "root filesystem" in problems[0]


def test_foreign_filesystem_needs_force_format():
    p = probe(fstype="ext4", uuid="u")
    problems = ht.check_disk(disk(), p, set())
    assert len(problems) == 1
    assert "holds a ext4 filesystem; refusing to format" in problems[0]
    assert "force_format: true" in problems[0]
    assert ht.check_disk(disk(force_format=True), p, set()) == []
    assert ht.plan_disk(disk(force_format=True), p)["force"] is True


def test_partition_table_counts_as_foreign_content():
    problems = ht.check_disk(disk(), probe(pttype="gpt", partitions=["/dev/nvme0n1p1"]), set())
    assert any("gpt partition table" in p for p in problems)
    assert any("has partitions" in p for p in problems)


def test_mounted_elsewhere_is_refused_even_with_force():
    p = probe(fstype="xfs", mounted_at=["/srv/data"])
    problems = ht.check_disk(disk(force_format=True), p, set())
    assert problems == [
        "host_tuning_spool_disks[0].device: /dev/nvme0n1 is mounted at /srv/data; unmount it before using it"
        " as /var/spool/pmta1"
    ]


def test_mount_point_taken_by_another_device():
    p = probe(mount_point_source="259:5", mount_point_device="/dev/nvme3n1")
    assert "already has another filesystem mounted (/dev/nvme3n1)" in ht.check_disk(disk(), p, set())[0]


def test_holders_and_swap_are_refused():
    problems = ht.check_disk(disk(), probe(holders=["dm-0"], swap=True), set())
    assert any("dm-0" in p for p in problems) and any("swap" in p for p in problems)


# ---------------------------------------------------------------- parsers


def test_parse_mountinfo_with_escaped_spaces():
    text = (
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "40 22 259:1 / /var/spool/pmta\\0401 rw,noatime shared:20 - xfs /dev/nvme0n1 rw,attr2\n"
    )
    mounts = ht.parse_mountinfo(text)
    assert mounts[1] == {
        "majmin": "259:1", "mount_point": "/var/spool/pmta 1", "fstype": "xfs", "source": "/dev/nvme0n1",
    }


def test_parse_blkid_export_and_swaps():
    assert ht.parse_blkid_export("DEVNAME=/dev/x\nUUID=ab-cd\nTYPE=xfs\n") == {
        "DEVNAME": "/dev/x", "UUID": "ab-cd", "TYPE": "xfs",
    }
    assert ht.probe_swaps("Filename Type Size Used Priority\n/swapfile file 1 0 -2\n") == ["/swapfile"]


def test_blkid_rc_2_means_empty_and_other_errors_raise():
    assert ht._blkid("/dev/x", lambda argv: (2, "", "")) == {}
    with pytest.raises(RuntimeError, match="blkid -p /dev/x failed"):
        ht._blkid("/dev/x", lambda argv: (4, "", "boom"))


def test_probe_device_on_a_regular_file_is_not_a_block_device(tmp_path):
    f = tmp_path / "img"
    f.write_bytes(b"\0" * 10)
    result = ht.probe_device(str(f), "/var/spool/pmta1", [], [])
    assert result["exists"] and not result["is_block"]
    assert "not a block device" in ht.check_disk(disk(device=str(f)), result, set())[0]


def test_the_unit_requires_the_mount_point_of_every_planned_disk_in_order():
    spool = ht.plan_disk(disk(), probe())
    log = ht.plan_disk(disk("host_tuning_log_disk", "/dev/nvme1n1", "/var/log/pmta", purpose="log"),
                       probe(real_device="/dev/nvme1n1", name="nvme1n1", disk="nvme1n1"))
    assert required_mounts([spool, log]) == ["/var/spool/pmta1", "/var/log/pmta"]
    assert required_mounts([]) == []
