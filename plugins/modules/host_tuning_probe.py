#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_tuning_probe
short_description: Check a PowerMTA host before tuning it (disks, RAM, sysctl keys)
version_added: 0.1.0
description:
  - Reads the host without changing it and reports what the P(mailops.powermta.host_tuning#role) role may do.
  - For each disk it resolves the device (C(/dev/disk/by-id/...) links too), reads its signature with
    C(blkid -p), its mounts, partitions, holders and swap use, and refuses the root disk, a device mounted
    elsewhere, a mount point nested in another disk's, and a device holding another filesystem or a
    partition table unless O(spool_disks[].force_format=true).
  - Checks that MemTotal reaches O(min_ram_mb) (less 5% the kernel keeps) and that every sysctl value is an
    integer (or integers), and sorts sysctl keys into writable ones and ones a container cannot write.
  - Returns the problems as a list instead of failing, so the role can report them all at once.
author:
  - mailops.powermta contributors (@mailops)
options:
  spool_disks:
    description: Spool disks to check, as in the role's C(host_tuning_spool_disks); named so in messages.
    type: list
    elements: dict
    default: []
    suboptions:
      device:
        description: Block device path, e.g. C(/dev/nvme0n1) or C(/dev/disk/by-id/nvme-...).
        type: str
        required: true
      mount_point:
        description: Where the disk will be mounted.
        type: str
        required: true
      force_format:
        description: Allow formatting a device that holds another filesystem or a partition table.
        type: bool
        default: false
      mkfs_options:
        description: Extra C(mkfs.xfs) options, passed through to RV(disks).
        type: str
        default: ""
      mount_options:
        description: Mount options, passed through to RV(disks); O(mount_options) when unset.
        type: str
  log_disk:
    description: Optional disk for C(/var/log/pmta), as in the role's C(host_tuning_log_disk).
    type: dict
    default: {}
  mount_options:
    description: Mount options of disks that set none.
    type: str
    default: noatime,nofail
  sysctl:
    description:
      - sysctl items C({name, value, comment}) to validate and probe for writability (the profile's defaults).
      - O(sysctl_layers) are merged over them by name; the result is returned in RV(sysctl).
      - Keys the host cannot set are returned in RV(sysctl_skipped) with a warning each.
    type: list
    elements: dict
    default: []
  sysctl_layers:
    description:
      - Layers merged over O(sysctl) by name, in order (all hosts, group, host); an item with C(state=absent)
        drops the key. Merged once here, in Python, instead of a Jinja variable evaluated at each use.
    type: list
    elements: dict
    default: []
    suboptions:
      variable:
        description: The variable the layer comes from, named in messages.
        type: str
        required: true
      items:
        description: The layer's sysctl items.
        type: list
        elements: raw
        default: []
  directories:
    description:
      - Directories the role keeps (drop-in directories); those missing, or with another owner, group or mode,
        are returned in RV(directories_to_fix), so the role calls a module only for them.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      owner:
        description: Owner name.
        type: str
        default: root
      group:
        description: Group name.
        type: str
        default: root
      mode:
        description: Octal mode as a string.
        type: str
        default: "0755"
  limit_nofile:
    description:
      - The LimitNOFILE the role will set; a problem when it exceeds fs.nr_open (as the merged sysctl items set
        it, else the kernel's 1048576). V(0) skips the check.
    type: int
    default: 0
  min_ram_mb:
    description: Installed RAM the host must have, in MiB. V(0) skips the check.
    type: int
    default: 0
  dir_mode:
    description: Mode the spool and log directories should have (for RV(disks[].dir_in_place)).
    type: str
    default: "0750"
  packages:
    description: Debian packages whose absence is reported in RV(packages_missing).
    type: list
    elements: str
    default: []
  variable_prefix:
    description: Prefix of the variable names used in messages (C(host_tuning_spool_disks[0].device)).
    type: str
    default: host_tuning_
  user:
    description: Account whose existence is reported in RV(user_exists).
    type: str
    default: pmta
  group:
    description: Group whose existence is reported in RV(group_exists).
    type: str
    default: pmta
  checksum_paths:
    description:
      - Files whose existence, type, mode, owner, group and SHA-256 to report in RV(paths) (the role's settings
        files), so M(mailops.powermta.pmta_config_install) (its
        O(mailops.powermta.pmta_config_install#module:host_paths)) can tell without a call that none differs.
    type: list
    elements: path
    default: []
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Check the spool disks and sysctl values before changing anything
  mailops.powermta.host_tuning_probe:
    spool_disks:
      - device: /dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_spool1
        mount_point: /var/spool/pmta1
    sysctl:
      - {name: net.core.somaxconn, value: 4096}
    min_ram_mb: 16384
  register: probe

- name: Stop on any problem
  ansible.builtin.assert:
    that: probe.problems | length == 0
    fail_msg: "{{ probe.problems | join('; ') }}"
"""

RETURN = r"""
problems:
  description: Every reason not to go on, each naming the variable and the fix. Empty when all is well.
  returned: always
  type: list
  elements: str
disks:
  description: One entry per disk with what the role will do.
  returned: always
  type: list
  elements: dict
  contains:
    label:
      description: The variable that asked for the disk (C(host_tuning_spool_disks[1]))
      type: str
    purpose:
      description: C(spool) or C(log).
      type: str
    device:
      description: The device as given.
      type: str
    real_device:
      description: The resolved device node.
      type: str
    mount_point:
      description: The normalised mount point.
      type: str
    fstype:
      description: Filesystem found on the device; empty when none.
      type: str
    uuid:
      description: Filesystem UUID; empty when none.
      type: str
    format:
      description: Whether an XFS filesystem must be created.
      type: bool
    force:
      description: Whether creating it overwrites other content (allowed by force_format).
      type: bool
    mkfs_options:
      description: Extra mkfs.xfs options.
      type: str
    mount_options:
      description: Mount options.
      type: str
    in_place:
      description: XFS, mounted at its mount point, with exactly the fstab line the role writes.
      type: bool
    dir_in_place:
      description: The mounted directory already has the owner, group and mode asked for.
      type: bool
required_mounts:
  description:
    - The mount point of each of RV(disks), in order; the PowerMTA unit's C(RequiresMountsFor=).
  returned: always
  type: list
  elements: str
memtotal_mb:
  description: MemTotal of the host in MiB.
  returned: always
  type: int
packages_missing:
  description: Packages of O(packages) not installed (all of them on hosts without dpkg).
  returned: always
  type: list
  elements: str
swaps:
  description: Active swap devices and files (from /proc/swaps).
  returned: always
  type: list
  elements: str
directories_to_fix:
  description: The entries of O(directories) that are missing or have another owner, group or mode.
  returned: always
  type: list
  elements: dict
sysctl:
  description:
    - The merged sysctl items in order, each with C(skipped), the reason this host cannot set it (or empty).
  returned: always
  type: list
  elements: dict
sysctl_writable:
  description: sysctl items this host can set.
  returned: always
  type: list
  elements: dict
sysctl_skipped:
  description: sysctl items this host cannot set (read-only in a container, or absent), with a C(reason).
  returned: always
  type: list
  elements: dict
user_exists:
  description: Whether O(user) exists.
  returned: always
  type: bool
group_exists:
  description: Whether O(group) exists.
  returned: always
  type: bool
paths:
  description:
    - Per file of O(checksum_paths), C(exists) and, when it exists, C(type), C(mode), C(owner), C(group) and, for a
      regular file, C(checksum) (SHA-256).
  returned: always
  type: dict
"""

import grp  # noqa: E402
import pwd  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning import probe as ht  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning import sysctl as hts  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning.files import (  # noqa: E402
    directories_to_fix,
    required_mounts,
)
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import stat_paths  # noqa: E402


def _exists(lookup, name):
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "spool_disks": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "device": {"type": "str", "required": True},
                    "mount_point": {"type": "str", "required": True},
                    "force_format": {"type": "bool", "default": False},
                    "mkfs_options": {"type": "str", "default": ""},
                    "mount_options": {"type": "str"},
                },
            },
            "log_disk": {"type": "dict", "default": {}},
            "mount_options": {"type": "str", "default": "noatime,nofail"},
            "sysctl": {"type": "list", "elements": "dict", "default": []},
            "sysctl_layers": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "variable": {"type": "str", "required": True},
                    "items": {"type": "list", "elements": "raw", "default": []},
                },
            },
            "limit_nofile": {"type": "int", "default": 0},
            "directories": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "path": {"type": "path", "required": True},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "mode": {"type": "str", "default": "0755"},
                },
            },
            "min_ram_mb": {"type": "int", "default": 0},
            "user": {"type": "str", "default": "pmta"},
            "variable_prefix": {"type": "str", "default": "host_tuning_"},
            "dir_mode": {"type": "str", "default": "0750"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "group": {"type": "str", "default": "pmta"},
            "checksum_paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    problems = []

    memtotal_mb = ht.parse_meminfo_mb(ht._read("/proc/meminfo"))
    if params["min_ram_mb"]:
        problems += ht.check_ram(memtotal_mb, params["min_ram_mb"])

    sysctl, layer_problems = hts.merge_layers(params["sysctl"], params["sysctl_layers"])
    problems += layer_problems
    problems += ht.check_sysctl_items(sysctl)
    problems += hts.check_limit_nofile(params["limit_nofile"], sysctl)
    writable, skipped = ht.probe_sysctl([i for i in sysctl if "name" in i])
    for item in skipped:
        module.warn("sysctl %s = %s skipped: %s" % (item["name"], item.get("value"), item["reason"]))

    disks = [
        dict(disk, label="spool_disks[%d]" % index, purpose="spool")
        for index, disk in enumerate(params["spool_disks"])
    ]
    if params["log_disk"]:
        log_disk = dict(params["log_disk"])
        log_disk.setdefault("mount_point", "/var/log/pmta")
        if not log_disk.get("device"):
            problems.append(
                params["variable_prefix"] + "log_disk.device: give the device of the log disk, or leave log_disk empty"
            )
        else:
            disks.append(dict(log_disk, label="log_disk", purpose="log"))
    for disk in disks:
        disk["label"] = params["variable_prefix"] + disk["label"]
        disk["force_format"] = bool(disk.get("force_format"))
        disk["mount_options"] = disk.get("mount_options") or params["mount_options"]
        disk.setdefault("mkfs_options", "")
    problems += ht.check_mount_points(disks)
    mounts = ht.parse_mountinfo(ht._read("/proc/self/mountinfo"))
    swaps = ht.probe_swaps(ht._read("/proc/swaps"))
    roots = ht.root_disks(mounts)
    fstab = ht.parse_fstab(ht._read("/etc/fstab"))
    owner = {"user": params["user"], "group": params["group"], "mode": params["dir_mode"].rjust(4, "0")}
    planned = []

    def run(argv):
        return module.run_command(argv)

    for disk in disks:
        try:
            probe = ht.probe_device(disk["device"], disk["mount_point"], mounts, swaps, run=run)
        except (OSError, RuntimeError) as exc:
            problems.append("%s.device: cannot read %s: %s" % (disk["label"], disk["device"], exc))
            continue
        disk_problems = ht.check_disk(disk, probe, roots)
        problems += disk_problems
        if not disk_problems:
            planned.append(ht.plan_disk(disk, probe, fstab, owner))

    module.exit_json(
        changed=False,
        problems=problems,
        disks=planned,
        required_mounts=required_mounts(planned),
        memtotal_mb=memtotal_mb,
        swaps=swaps,
        packages_missing=ht.packages_missing(params["packages"], run),
        directories_to_fix=directories_to_fix(params["directories"]),
        sysctl=hts.annotate_skipped(sysctl, skipped),
        sysctl_writable=writable,
        sysctl_skipped=skipped,
        user_exists=_exists(pwd.getpwnam, params["user"]),
        group_exists=_exists(grp.getgrnam, params["group"]),
        paths=stat_paths([], params["checksum_paths"]),
    )


if __name__ == "__main__":
    main()
