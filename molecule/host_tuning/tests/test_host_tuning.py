# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_tuning on a QEMU host with two NVMe disks, after converge, idempotence and a reboot.

Each command costs seconds on an emulated host, so the state is read in one command
(the ``state`` fixture) and the two behaviour checks run one command each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

VARS = yaml.safe_load((Path(__file__).resolve().parent.parent / "vars" / "main.yml").read_text())
DISKS = VARS["host_tuning_spool_disks"]
SYSCTL_FILE = "/etc/sysctl.d/60-mailops-powermta.conf"

DNS_CHECK = (
    "import dns.resolver as r; x = r.Resolver(configure=False); x.nameservers = ['127.0.0.1'];"
    " print(x.resolve('localhost.', 'A').rrset[0])"
)
STATE_SCRIPT = r"""
section() { printf '\n@@%s\n' "$1"; }
section boot_id_before; cat /root/host-tuning-test-boot-id
section boot_id; cat /proc/sys/kernel/random/boot_id
section fstab; cat /etc/fstab
section findmnt; findmnt -J -l -o TARGET,SOURCE,FSTYPE,OPTIONS
i=0
for d in {devices}; do
  section "disk$i"; r=$(readlink -f "$d"); echo "REAL=$r"; blkid -p -o export "$r"; i=$((i+1))
done
section stat; stat -c '%n %U %G %a' {mount_points}
section passwd; getent passwd pmta
section sysctl_file; cat {sysctl_file}
section sysctl_live; sysctl -a 2>/dev/null
section limits_file; cat /etc/security/limits.d/60-mailops-powermta.conf
section su_ulimit; su -s /bin/sh -c 'ulimit -Hn' pmta
section journald; systemd-analyze cat-config systemd/journald.conf; systemctl is-active systemd-journald
section logrotate; cat /etc/logrotate.d/mailops-powermta
section unbound; systemctl is-enabled unbound; systemctl is-active unbound
section udp; ss -lunH
section dns; python3 -c "{dns_check}"
section nvme_model; cat /sys/class/nvme/nvme*/model
section nvme_links; for s in spool1 spool2; do readlink -f /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_$s; done
section spool_writable; for m in {mount_points}; do touch $m/.probe && rm $m/.probe && echo "$m ok"; done
section smoke_unit; systemctl is-enabled bench-smoke; systemctl is-active bench-smoke
grep 'Max open files' /proc/$(systemctl show -p MainPID --value bench-smoke)/limits
true
"""


@pytest.fixture(scope="module")
def state(host):
    script = (
        STATE_SCRIPT.replace("{devices}", " ".join(d["device"] for d in DISKS))
        .replace("{mount_points}", " ".join(d["mount_point"] for d in DISKS))
        .replace("{sysctl_file}", SYSCTL_FILE)
        .replace("{dns_check}", DNS_CHECK)
    )
    out = host.run(script).stdout
    sections = {}
    for chunk in out.split("\n@@")[1:]:
        name, _sep, body = chunk.partition("\n")
        sections[name] = body.strip("\n")
    return sections


def kv(text, sep="="):
    pairs = (line.partition(sep) for line in text.splitlines() if sep in line)
    return {k.strip(): " ".join(v.split()) for k, _sep, v in pairs}


def test_host_was_rebooted_after_converge(state):
    # side_effect.yml saved the boot id before rebooting: what follows is checked after a boot.
    assert state["boot_id_before"], "side_effect.yml did not run"
    assert state["boot_id"] != state["boot_id_before"]


@pytest.mark.parametrize("index", range(len(DISKS)), ids=[d["mount_point"] for d in DISKS])
def test_spool_disk_is_xfs_mounted_by_uuid_with_noatime(state, index):
    disk = DISKS[index]
    ids = kv(state[f"disk{index}"])
    assert ids["REAL"].startswith("/dev/nvme")
    assert ids["TYPE"] == "xfs"
    # fstab names the filesystem by UUID, so renumbered devices still mount right
    fstab = [line.split() for line in state["fstab"].splitlines() if line.split() and not line.startswith("#")]
    entries = [f for f in fstab if f[1] == disk["mount_point"]]
    assert entries == [[f"UUID={ids['UUID']}", disk["mount_point"], "xfs", "noatime,nofail", "0", "0"]]
    # and it is mounted there now, after the reboot, from that device, with noatime
    mounts = {m["target"]: m for m in json.loads(state["findmnt"])["filesystems"]}
    mount = mounts[disk["mount_point"]]
    assert mount["source"] == ids["REAL"]
    assert mount["fstype"] == "xfs"
    assert "noatime" in mount["options"].split(",")


def test_second_disk_got_its_mkfs_options(state):
    assert kv(state["disk1"])["LABEL"] == "pmtaspool2"


def test_spool_dirs_owned_by_pmta_system_account(state):
    assert state["stat"].splitlines() == [f"{d['mount_point']} pmta pmta 750" for d in DISKS]
    name, _password, uid, _gid, _gecos, home, shell = state["passwd"].split(":")
    assert int(uid) < 1000 and shell == "/usr/sbin/nologin"


def rendered_sysctl(state):
    lines = [line for line in state["sysctl_file"].splitlines() if line.strip() and not line.startswith("#")]
    return kv("\n".join(lines))


def test_live_sysctl_values_equal_the_rendered_ones(state):
    rendered = rendered_sysctl(state)
    live = kv(state["sysctl_live"])
    assert len(rendered) >= 12
    assert {name: live.get(name) for name in rendered} == rendered


def test_sysctl_layers_and_profile_reached_the_kernel(state):
    rendered = rendered_sysctl(state)
    live = kv(state["sysctl_live"])
    # host layer over the profile (4096 is both the kernel and the profile default)
    assert rendered["net.core.somaxconn"] == live["net.core.somaxconn"] == "8192"
    assert rendered["vm.swappiness"] == live["vm.swappiness"] == "5"
    assert rendered["net.ipv4.ip_local_port_range"] == live["net.ipv4.ip_local_port_range"] == "10240 65000"


def test_nofile_and_nproc_of_a_unit_under_the_drop_in(host):
    # The drop-in was written before any pmta unit existed; a stand-in unit (not PowerMTA)
    # installed now, as a package would, must start with the limits asked for.
    script = r"""
unit=/usr/lib/systemd/system/pmta.service
printf '%s\n' '[Unit]' 'Description=TEST STAND-IN for pmta.service (host_tuning limits check, not PowerMTA)' \
  '[Service]' 'ExecStart=/bin/sleep infinity' > $unit
systemctl daemon-reload && systemctl start pmta.service || exit 1
pid=$(systemctl show -p MainPID --value pmta.service)
grep -E '^Max (open files|processes)' /proc/$pid/limits
echo "requires: $(systemctl show -p RequiresMountsFor --value pmta.service)"
systemctl stop pmta.service; rm -f $unit; systemctl daemon-reload
"""
    out = host.run(script)
    assert out.rc == 0, out.stderr
    nofile = re.search(r"^Max open files\s+(\d+)\s+(\d+)", out.stdout, re.M).groups()
    nproc = re.search(r"^Max processes\s+(\d+)\s+(\d+)", out.stdout, re.M).groups()
    assert nofile == (str(VARS["host_tuning_limit_nofile"]),) * 2
    assert nproc == (str(VARS["host_tuning_limit_nproc"]),) * 2
    requires = re.search(r"^requires: (.*)$", out.stdout, re.M).group(1).split()
    assert sorted(requires) == sorted(d["mount_point"] for d in DISKS)


def test_login_limits_for_the_pmta_account(state):
    assert re.search(r"^pmta\s+hard\s+nofile\s+131072$", state["limits_file"], re.M)
    # PAM applies it (root's own hard limit here is higher)
    assert state["su_ulimit"] == "131072"


def test_journal_is_capped(state):
    assert "SystemMaxUse=1G" in state["journald"] and "MaxRetentionSec=1month" in state["journald"]
    assert state["journald"].splitlines()[-1] == "active"


def test_logrotate_rotates_only_the_startup_error_log(host, state):
    entries = re.findall(r"^(\S.*) \{$", state["logrotate"], re.M)
    assert entries == ["/var/log/pmta/pmta-startuperr.log"]  # PowerMTA rotates its log and acct files itself
    # a real rotation of a real file, as PowerMTA's account
    script = r"""
install -d -o pmta -g pmta -m 0750 /var/log/pmta
echo 'startup error' > /var/log/pmta/pmta-startuperr.log
chown pmta:pmta /var/log/pmta/pmta-startuperr.log
logrotate -f -s /run/ht-logrotate.state /etc/logrotate.d/mailops-powermta || exit 1
cat /var/log/pmta/pmta-startuperr.log.1; echo "size=$(stat -c %s /var/log/pmta/pmta-startuperr.log)"
rm -rf /var/log/pmta /run/ht-logrotate.state
"""
    out = host.run(script)
    assert out.rc == 0, out.stderr
    assert out.stdout == "startup error\nsize=0\n"


def test_unbound_caches_on_loopback_only(state):
    assert state["unbound"].splitlines() == ["enabled", "active"]
    listeners = [line.split()[3] for line in state["udp"].splitlines()]
    port53 = [addr for addr in listeners if addr.endswith(":53")]
    assert port53 and all(addr.startswith("127.0.0.1:") for addr in port53), port53
    # it answers (localhost is served by unbound itself; the bench has no route out)
    assert state["dns"] == "127.0.0.1"


# Folded in from the former smoke-qemu scenario: the bench's QEMU host itself (one VM boot, not two).
def test_nvme_disks_are_real_qemu_controllers(state):
    assert state["nvme_model"].count("QEMU NVMe Ctrl") == 2, state["nvme_model"]
    links = state["nvme_links"].splitlines()
    assert len(links) == 2 and all(re.fullmatch(r"/dev/nvme\d+n\d+", link) for link in links), links


def test_spool_file_systems_are_writable_after_the_reboot(state):
    assert state["spool_writable"].splitlines() == [f"{d['mount_point']} ok" for d in DISKS]


def test_a_unit_enabled_before_the_reboot_runs_after_it_with_its_nofile(state):
    lines = state["smoke_unit"].splitlines()
    assert lines[:2] == ["enabled", "active"], lines
    assert re.match(r"^Max open files\s+65536\s+65536", lines[2]), lines
