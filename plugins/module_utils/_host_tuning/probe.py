# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host tuning preflight: probe block devices, RAM and sysctl keys, and check the plan.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. The pure checks (``check_*``) take data, the
probes (``probe_*``) read /proc, /sys and ``blkid``; both are used by the
``host_tuning_probe`` module.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.ownership import (
    owner_names,
    path_shape_problem,
)

# Mount points a spool or log disk must never take over.
FORBIDDEN_MOUNT_POINTS = frozenset(
    [
        "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root",
        "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log", "/var/spool",
        "/var/tmp",
    ]
)

# sysctl keys whose value is a word, not integers (everything else must be integers).
WORD_VALUED_SYSCTLS = frozenset(["net.core.default_qdisc", "net.ipv4.tcp_congestion_control"])

# MemTotal excludes memory the firmware and kernel keep, so a 16 GiB host reports
# about 15.6 GiB. The RAM check allows this much below the requested size.
RAM_ALLOWANCE_PERCENT = 5

# Ranges the kernel accepts (Documentation/admin-guide/sysctl/{vm,fs}.rst, networking/ip-sysctl.rst); a value
# outside makes `sysctl --system` fail after the file was written, so the preflight refuses it first.
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
SYSCTL_RANGES = {
    "vm.swappiness": (0, 200),
    "vm.dirty_ratio": (0, 100),
    "vm.dirty_background_ratio": (0, 100),
    "vm.overcommit_memory": (0, 2),
    "net.ipv4.tcp_tw_reuse": (0, 2),
    "net.ipv4.tcp_fin_timeout": (1, INT_MAX),
    "net.ipv4.ip_local_port_range": (1, 65535),
    "fs.nr_open": (1024, 2147483584),
    "fs.file-max": (0, LONG_MAX),
}
# Keys that take negative values (-1 = "no limit" or "unrestricted").
SIGNED_SYSCTLS = frozenset(["kernel.perf_event_paranoid", "kernel.sched_rt_runtime_us", "net.ipv4.tcp_min_rtt_wlen"])
# Most net.* and vm.* values are C ints; anything else is bounded by a 64-bit long.
_INT_PREFIXES = ("net.", "vm.")

_SYSCTL_NAME = re.compile(r"^[a-z0-9_]+([./][A-Za-z0-9_:@-]+)+$")
_INTEGERS = re.compile(r"^-?[0-9]+(\s+-?[0-9]+)*$")
_WORD = re.compile(r"^[a-z0-9_]+$")


# ---------------------------------------------------------------- pure checks


def check_sysctl_items(items, variable="host_tuning_sysctl"):
    """Return problems for sysctl items ``{name, value}`` (values must be integers)."""
    problems = []
    for item in items:
        name = str(item.get("name", ""))
        value = item.get("value")
        if not _SYSCTL_NAME.match(name):
            problems.append(
                "%s: %r is not a sysctl key; use dotted names such as net.core.somaxconn" % (variable, name)
            )
            continue
        if isinstance(value, bool) or value is None:
            text = None
        else:
            text = " ".join(str(value).split())
        if name in WORD_VALUED_SYSCTLS:
            if text is None or not _WORD.match(text):
                problems.append("%s: %s = %r must be one lower-case word (e.g. bbr, fq)" % (variable, name, value))
        elif text is None or not _INTEGERS.match(text):
            problems.append(
                "%s: %s = %r is not an integer; give an integer or space-separated integers"
                " (e.g. '10240 65535')" % (variable, name, value)
            )
        else:
            problems += _range_problems(variable, name, value, [int(part) for part in text.split()])
    return problems


def _range_problems(variable, name, value, numbers):
    if name in SYSCTL_RANGES:
        low, high = SYSCTL_RANGES[name]
    elif name in SIGNED_SYSCTLS:
        low, high = -(INT_MAX + 1), INT_MAX
    else:
        low, high = 0, INT_MAX if name.startswith(_INT_PREFIXES) else LONG_MAX
    bad = [number for number in numbers if not low <= number <= high]
    if bad:
        return ["%s: %s = %r is out of range: the kernel takes %d to %d; fix or remove the item"
                % (variable, name, value, low, high)]
    if name == "net.ipv4.ip_local_port_range" and (len(numbers) != 2 or numbers[0] > numbers[1]):
        return ["%s: %s = %r must be two ports, low then high (e.g. '10240 65000')" % (variable, name, value)]
    return []


def normalize_sysctl_value(value):
    """Render a value the way /proc/sys prints it (tabs between integers)."""
    return "\t".join(str(value).split())


def minimum_ram_mb(min_ram_mb):
    """The lowest MemTotal (MiB) accepted for ``min_ram_mb`` of installed RAM."""
    return (int(min_ram_mb) * (100 - RAM_ALLOWANCE_PERCENT)) // 100


def check_ram(memtotal_mb, min_ram_mb, variable="host_tuning_min_ram_mb"):
    floor = minimum_ram_mb(min_ram_mb)
    if memtotal_mb < floor:
        return [
            "%s: the host has %d MiB of RAM (MemTotal) but %d MiB is required (%d MiB minus %d%% the kernel"
            " reserves); PowerMTA must not swap. Add RAM, or lower %s for a lab host."
            % (variable, memtotal_mb, floor, int(min_ram_mb), RAM_ALLOWANCE_PERCENT, variable)
        ]
    return []


def _is_within(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_mount_points(disks):
    """Problems with the requested mount points, independent of the host.

    ``disks``: list of ``{label, device, mount_point}``.
    """
    problems = []
    seen = {}
    for disk in disks:
        label, mount_point = disk["label"], disk.get("mount_point") or ""
        if not mount_point.startswith("/"):
            problems.append("%s.mount_point: %r must be an absolute path" % (label, mount_point))
            continue
        normalized = os.path.normpath(mount_point)
        if normalized != (mount_point.rstrip("/") or "/") or "//" in mount_point:
            problems.append("%s.mount_point: write %r as %r" % (label, mount_point, normalized))
        if normalized in FORBIDDEN_MOUNT_POINTS:
            problems.append(
                "%s.mount_point: %s is a system directory; use a directory of its own such as /var/spool/pmta1"
                % (label, normalized)
            )
        else:
            # Home directories and the other directories the collection never owns (_ownership).
            foreign = path_shape_problem("%s.mount_point" % label, normalized)
            if foreign:
                problems.append(foreign)
        if normalized in seen:
            problems.append("%s.mount_point: %s is also the mount point of %s" % (label, normalized, seen[normalized]))
        seen.setdefault(normalized, label)
    ordered = [(d["label"], os.path.normpath(d.get("mount_point") or "")) for d in disks]
    for label, mount_point in ordered:
        for other_label, other in ordered:
            nested = other != mount_point and other.startswith("/") and _is_within(mount_point, other)
            if other_label != label and nested:
                problems.append(
                    "%s.mount_point: %s lies inside %s, the mount point of %s; nested disks break mount order"
                    " and hide each other's data. Use a sibling directory such as %s2"
                    % (label, mount_point, other, other_label, other.rstrip("/"))
                )
    devices = {}
    for disk in disks:
        device = disk.get("device") or ""
        if device in devices:
            problems.append("%s.device: %s is also used by %s" % (disk["label"], device, devices[device]))
        devices.setdefault(device, disk["label"])
    return problems


def check_disk(disk, probe, root_disks):
    """Problems with one disk against what the host has; ``probe`` from :func:`probe_device`."""
    label, device = disk["label"], disk["device"]
    mount_point = os.path.normpath(disk["mount_point"])
    if not probe["exists"]:
        return [
            "%s.device: %s does not exist on this host; check the path (ls -l /dev/disk/by-id/)" % (label, device)
        ]
    if not probe["is_block"]:
        return ["%s.device: %s is not a block device" % (label, device)]
    real = probe["real_device"]
    problems = []
    if probe["name"] in root_disks or probe["disk"] in root_disks:
        return [
            "%s.device: %s (%s) holds the root filesystem; never use the root disk for spool" % (label, device, real)
        ]
    if probe["holders"]:
        problems.append(
            "%s.device: %s is in use by %s (LVM, RAID or device mapper); free it first"
            % (label, device, ", ".join(probe["holders"]))
        )
    if probe["swap"]:
        problems.append("%s.device: %s is active swap; run swapoff and remove it from fstab first" % (label, device))
    if probe["partitions"]:
        problems.append(
            "%s.device: %s has partitions (%s); give the whole empty disk, or wipe it yourself (wipefs -a)"
            % (label, device, ", ".join(probe["partitions"]))
        )
    elsewhere = [m for m in probe["mounted_at"] if m != mount_point]
    if elsewhere:
        problems.append(
            "%s.device: %s is mounted at %s; unmount it before using it as %s"
            % (label, device, ", ".join(elsewhere), mount_point)
        )
    other = probe.get("mount_point_source")
    if other and other != probe["majmin"]:
        problems.append(
            "%s.mount_point: %s already has another filesystem mounted (%s); unmount it or choose another directory"
            % (label, mount_point, probe.get("mount_point_device") or other)
        )
    fstype, pttype = probe["fstype"], probe["pttype"]
    foreign = (fstype and fstype != "xfs") or (not fstype and pttype)
    if foreign and not disk.get("force_format"):
        what = ("a %s filesystem" % fstype) if fstype else ("a %s partition table" % pttype)
        problems.append(
            "%s.device: %s holds %s; refusing to format it. If its data may be destroyed, set"
            " force_format: true on this disk" % (label, device, what)
        )
    return problems


def fstab_entries(fstab, mount_point):
    return [e for e in fstab if e["mount_point"] == mount_point]


def plan_disk(disk, probe, fstab=(), owner=None):
    """What the role will do with a disk that passed :func:`check_disk`.

    ``in_place`` is true when the disk is XFS, mounted at its mount point and has exactly
    the fstab line the role writes; ``dir_in_place`` when its directory has ``owner``
    ``{user, group, mode}``. The role skips those steps then (each costs a module run).
    """
    fstype = probe.get("fstype") or ""
    mount_point = os.path.normpath(disk["mount_point"])
    mount_options = disk.get("mount_options") or "noatime"
    wanted = {
        "source": "UUID=%s" % probe.get("uuid"), "mount_point": mount_point, "fstype": "xfs",
        "options": mount_options, "dump": "0", "passno": "0",
    }
    in_place = (
        fstype == "xfs"
        and mount_point in probe.get("mounted_at", [])
        and fstab_entries(fstab, mount_point) == [wanted]
    )
    stat_ = probe.get("mount_point_stat")
    same_owner = bool(owner and stat_) and all(stat_.get(k) == owner.get(k) for k in ("user", "group", "mode"))
    dir_in_place = in_place and same_owner
    return {
        "label": disk["label"],
        "purpose": disk.get("purpose", "spool"),
        "device": disk["device"],
        "real_device": probe.get("real_device"),
        "mount_point": os.path.normpath(disk["mount_point"]),
        "fstype": fstype,
        "uuid": probe.get("uuid") or "",
        "format": fstype != "xfs",
        "force": bool(fstype and fstype != "xfs") or bool(not fstype and probe.get("pttype")),
        "mkfs_options": disk.get("mkfs_options") or "",
        "mount_options": mount_options,
        "in_place": in_place,
        "dir_in_place": dir_in_place,
    }


def parse_fstab(text):
    """fstab lines as dicts; missing dump/passno read as "0" like mount(8)."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 4:
            continue
        fields += ["0"] * (6 - len(fields))
        entries.append(
            {
                "source": _unescape(fields[0]), "mount_point": _unescape(fields[1]), "fstype": fields[2],
                "options": fields[3], "dump": fields[4], "passno": fields[5],
            }
        )
    return entries


def stat_owner(path):
    """``{user, group, mode}`` of a path (names when known, else numbers), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    user, group = owner_names(st)
    return {"user": user, "group": group, "mode": "%04o" % stat.S_IMODE(st.st_mode)}


def packages_missing(packages, run):
    """Debian packages of ``packages`` not installed (all of them when dpkg-query is absent)."""
    if not packages:
        return []
    try:
        rc, out, _err = run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n"] + list(packages))
    except OSError:
        return list(packages)
    installed = {line.split()[0] for line in out.splitlines() if len(line.split()) > 1 and line.split()[1] == "ii"}
    return [p for p in packages if p not in installed]


# ---------------------------------------------------------------- parsers


def parse_meminfo_mb(text):
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ValueError("MemTotal missing from /proc/meminfo")


def _unescape(path):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text):
    """Return a list of ``{majmin, mount_point, fstype, source}`` from /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        mounts.append(
            {
                "majmin": fields[2],
                "mount_point": _unescape(fields[4]),
                "fstype": fields[sep + 1],
                "source": _unescape(fields[sep + 2]),
            }
        )
    return mounts


def parse_blkid_export(text):
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def sysctl_path(name, proc_sys="/proc/sys"):
    """/proc/sys path of a key (``net.ipv4.conf.eth0/1.rp_filter`` style allowed)."""
    if "/" in name and "." in name:
        parts = name.split(".")
        return os.path.join(proc_sys, *[p.replace("/", ".") for p in parts])
    return os.path.join(proc_sys, *name.replace(".", "/").split("/"))


# ---------------------------------------------------------------- probes (read the host)


def _read(path, default=""):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return default


def _majmin(rdev):
    return "%d:%d" % (os.major(rdev), os.minor(rdev))


def _sys_block(majmin, sys="/sys"):
    path = os.path.join(sys, "dev", "block", majmin)
    return os.path.realpath(path) if os.path.exists(path) else None


def backing_disks(majmin, sys="/sys", _depth=0):
    """Names of the block devices (partitions, their disks, dm slaves) behind ``majmin``."""
    real = _sys_block(majmin, sys)
    if real is None or _depth > 8:
        return set()
    names = {os.path.basename(real)}
    if os.path.exists(os.path.join(real, "partition")):
        names.add(os.path.basename(os.path.dirname(real)))
    slaves = os.path.join(real, "slaves")
    if os.path.isdir(slaves):
        for slave in os.listdir(slaves):
            dev = _read(os.path.join(slaves, slave, "dev")).strip()
            if dev:
                names |= backing_disks(dev, sys, _depth + 1)
    return names


def root_disks(mounts, sys="/sys"):
    """Block devices that hold / (and /boot, /usr when separate)."""
    names = set()
    for mount in mounts:
        if mount["mount_point"] in ("/", "/boot", "/boot/efi", "/usr"):
            names |= backing_disks(mount["majmin"], sys)
    try:
        names |= backing_disks(_majmin(os.stat("/").st_dev), sys)
    except OSError:
        pass
    return names


def _blkid(device, run):
    rc, out, err = run(["blkid", "-p", "-o", "export", device])
    if rc == 0:
        return parse_blkid_export(out)
    if rc == 2:  # nothing detected: an empty device
        return {}
    raise RuntimeError("blkid -p %s failed (rc %d): %s" % (device, rc, err.strip()))


def _run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def probe_device(device, mount_point, mounts, swaps, sys="/sys", run=_run):
    """Everything the checks need to know about ``device`` on this host."""
    result = {
        "exists": os.path.exists(device), "is_block": False, "real_device": None, "name": None,
        "disk": None, "majmin": None, "partitions": [], "holders": [], "mounted_at": [], "swap": False,
        "fstype": "", "pttype": "", "uuid": "", "mount_point_source": None, "mount_point_device": None,
    }
    mount_point = os.path.normpath(mount_point)
    for mount in mounts:
        if mount["mount_point"] == mount_point:
            result["mount_point_source"] = mount["majmin"]
            result["mount_point_device"] = mount["source"]
    if not result["exists"]:
        return result
    real = os.path.realpath(device)
    st = os.stat(real)
    result["real_device"] = real
    if not stat.S_ISBLK(st.st_mode):
        return result
    result["is_block"] = True
    majmin = _majmin(st.st_rdev)
    result["majmin"] = majmin
    sys_path = _sys_block(majmin, sys)
    name = os.path.basename(sys_path) if sys_path else os.path.basename(real)
    result["name"] = name
    result["disk"] = name
    own = {majmin}
    if sys_path:
        if os.path.exists(os.path.join(sys_path, "partition")):
            result["disk"] = os.path.basename(os.path.dirname(sys_path))
        for entry in sorted(os.listdir(sys_path)):
            if entry.startswith(name) and os.path.exists(os.path.join(sys_path, entry, "partition")):
                result["partitions"].append("/dev/" + entry)
                own.add(_read(os.path.join(sys_path, entry, "dev")).strip())
        holders = os.path.join(sys_path, "holders")
        if os.path.isdir(holders):
            result["holders"] = sorted(os.listdir(holders))
    result["mounted_at"] = sorted({m["mount_point"] for m in mounts if m["majmin"] in own})
    real_paths = {real} | set(result["partitions"])
    result["swap"] = any(os.path.realpath(s) in real_paths for s in swaps)
    ids = _blkid(real, run)
    result["fstype"] = ids.get("TYPE", "")
    result["pttype"] = ids.get("PTTYPE", "")
    result["uuid"] = ids.get("UUID", "") if result["fstype"] else ""
    if mount_point in result["mounted_at"]:
        result["mount_point_stat"] = stat_owner(mount_point)
    return result


def probe_swaps(text):
    return [line.split()[0] for line in text.splitlines()[1:] if line.strip()]


def probe_sysctl(items, proc_sys="/proc/sys"):
    """Split items into ``(writable, skipped)``; skipped items carry a ``reason``."""
    writable, skipped = [], []
    for item in items:
        path = sysctl_path(item["name"], proc_sys)
        if not os.path.exists(path):
            skipped.append(dict(item, reason="not present on this kernel or network namespace"))
        elif not os.access(path, os.W_OK):
            skipped.append(dict(item, reason="read-only here (container)"))
        else:
            writable.append(dict(item))
    return writable, skipped
