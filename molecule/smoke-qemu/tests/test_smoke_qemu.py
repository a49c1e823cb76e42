"""QEMU bench host: global sysctls, XFS on a real NVMe disk mounted by UUID, a unit, after a reboot."""


def test_rebooted_after_fstab_change(host):
    first = host.file("/var/lib/smoke-first-boot-id").content_string.strip()
    assert first and first != host.file("/proc/sys/kernel/random/boot_id").content_string.strip()


def test_global_sysctls_survive_reboot(host):
    assert host.sysctl("vm.swappiness") == 7
    assert host.sysctl("fs.file-max") == 2000000
    assert host.sysctl("net.core.somaxconn") == 4096


def test_nvme_disks_are_real_controllers(host):
    for serial in ("spool1", "spool2"):
        link = host.file(f"/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_{serial}")
        assert link.is_symlink and link.linked_to.startswith("/dev/nvme")
    assert "QEMU NVMe Ctrl" in host.check_output("cat /sys/class/nvme/nvme*/model")


def test_xfs_mounted_by_uuid_from_fstab(host):
    mount = host.mount_point("/srv/spool1")
    assert mount.exists and mount.filesystem == "xfs" and "noatime" in mount.options
    uuid = host.check_output("findmnt -n -o UUID /srv/spool1")
    assert f"UUID={uuid} /srv/spool1 xfs noatime" in host.file("/etc/fstab").content_string
    host.check_output("touch /srv/spool1/probe && rm /srv/spool1/probe")


def test_unit_running_with_high_nofile(host):
    svc = host.service("bench-smoke")
    assert svc.is_running and svc.is_enabled
    pid = host.check_output("systemctl show -p MainPID --value bench-smoke")
    assert "65536" in host.check_output(f"grep 'Max open files' /proc/{pid}/limits")
