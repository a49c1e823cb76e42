# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_tuning's directories: which of them the role must still create or fix (read once by the probe), and the
mount points PowerMTA's unit requires.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import os

from .probe import stat_owner


def directories_to_fix(directories, isdir=os.path.isdir, stat=stat_owner):
    """The ``{path, owner, group, mode}`` entries whose directory is missing or has other owner, group or mode."""
    out = []
    for entry in directories:
        found = stat(entry["path"]) if isdir(entry["path"]) else None
        wanted = {"user": entry["owner"], "group": entry["group"], "mode": str(entry["mode"]).rjust(4, "0")}
        if found != wanted:
            out.append(dict(entry))
    return out


def required_mounts(disks):
    """The mount point of each planned disk (spool and log), in order: PowerMTA's unit requires them
    (systemd ``RequiresMountsFor=``), so it does not start on the root disk when one is missing."""
    return [disk["mount_point"] for disk in disks]
