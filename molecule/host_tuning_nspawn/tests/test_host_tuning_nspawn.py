# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_tuning in a systemd-nspawn container: unwritable sysctl keys skipped, the rest applied."""

from __future__ import annotations

import re

SYSCTL_FILE = "/etc/sysctl.d/60-mailops-powermta.conf"


def sysctl_lines(host):
    return host.file(SYSCTL_FILE).content_string.splitlines()


def test_read_only_keys_are_written_commented_out_with_the_reason(host):
    lines = sysctl_lines(host)
    for key in ("vm.swappiness", "fs.file-max", "vm.dirty_ratio"):
        assert any(re.match(rf"^# {re.escape(key)} = \d+  # skipped: read-only here \(container\)$", line)
                   for line in lines), key
        assert not any(line.startswith(key) for line in lines)


def test_writable_network_keys_are_applied(host):
    active = {}
    for line in sysctl_lines(host):
        if line and not line.startswith("#"):
            name, _sep, value = line.partition("=")
            active[name.strip()] = " ".join(value.split())
    # high_volume profile; net.* is per network namespace and writable in the container
    assert active["net.core.somaxconn"] == "65535"
    assert active["net.ipv4.ip_local_port_range"] == "10240 65535"
    for name, value in active.items():
        live = host.file("/proc/sys/" + name.replace(".", "/")).content_string
        assert " ".join(live.split()) == value, name


def test_unit_under_the_drop_in_gets_the_limits(host):
    script = r"""
unit=/usr/lib/systemd/system/pmtahttp.service
printf '%s\n' '[Unit]' 'Description=TEST STAND-IN for pmtahttp.service (not PowerMTA)' \
  '[Service]' 'ExecStart=/bin/sleep infinity' > $unit
systemctl daemon-reload && systemctl start pmtahttp.service || exit 1
grep -E '^Max (open files|processes)' /proc/$(systemctl show -p MainPID --value pmtahttp.service)/limits
systemctl stop pmtahttp.service; rm -f $unit; systemctl daemon-reload
"""
    out = host.run(script)
    assert out.rc == 0, out.stderr
    assert re.search(r"^Max open files\s+16384\s+16384", out.stdout, re.M), out.stdout
    assert re.search(r"^Max processes\s+2048\s+2048", out.stdout, re.M), out.stdout
