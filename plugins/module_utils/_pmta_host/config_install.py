# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install a set of files as one transaction: plan, install with backups, restore or commit.

PRIVATE to the collection (pmta_config_install). Standard library only, so the logic is unit-tested
without Ansible. A file is written to a temporary file in its own directory and renamed over the old
one (atomic per file); the previous bytes are kept in a backup next to it until the caller commits
(deletes the backups) or restores (renames the backups back, removes files that did not exist).

A pending marker (optional) survives a controller killed between install and activation: written before
the first file changes, it lists what changed (with the backups), and only commit() or restore() removes
it. The next run reads it, so it still activates (or restores) what the killed run installed.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import tempfile
import time

from .ownership import (
    MANIFEST,
    owned_by_name,
    ownership_problem,
    path_shape_problem,
    read_manifest,
    record_created,
)


class InstallError(Exception):
    """A file could not be planned, written, restored or committed.

    results: what install() had already done when it stopped (so the caller can restore it).
    """

    def __init__(self, message: str, results: list | None = None):
        super().__init__(message)
        self.results = results or []


def _resolve_ids(owner, group):
    uid = gid = -1
    try:
        if owner not in (None, ""):
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(str(owner)).pw_uid
        if group not in (None, ""):
            gid = int(group) if str(group).isdigit() else grp.getgrnam(str(group)).gr_gid
    except KeyError as exc:
        raise InstallError(f"unknown owner or group: {exc}") from exc
    return uid, gid


def _parse_mode(mode):
    if mode in (None, ""):
        return None
    if isinstance(mode, int):
        return mode
    text = str(mode)
    if not text.isdigit() or any(ch not in "01234567" for ch in text):
        raise InstallError(f"mode must be octal digits such as '0640', not {mode!r}")
    return int(text, 8)


def plan_file(spec: dict) -> dict:
    """What installing one file would do, without changing anything.

    spec: {dest, content (bytes), mode, owner, group, force}. force=False creates a missing file
    and never touches an existing one (content or attributes).
    """
    dest = spec["dest"]
    if not os.path.isabs(dest):
        raise InstallError(f"dest must be an absolute path, not {dest!r}")
    content = spec["content"]
    mode = _parse_mode(spec.get("mode"))
    uid, gid = _resolve_ids(spec.get("owner"), spec.get("group"))
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InstallError(f"{dest} exists and is not a regular file")
    plan = {"dest": dest, "exists": st is not None, "mode": mode, "uid": uid, "gid": gid,
            "before": None, "content_changed": False, "attributes_changed": False}
    if st is None:
        plan["content_changed"] = True
        return plan
    plan["previous"] = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    if not spec.get("force", True):
        return plan
    with open(dest, "rb") as handle:
        before = handle.read()
    plan["before"] = before
    plan["content_changed"] = before != content
    plan["attributes_changed"] = ((mode is not None and stat.S_IMODE(st.st_mode) != mode)
                                  or (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid))
    return plan


def _write_atomically(dest: str, content: bytes, mode, uid: int, gid: int) -> None:
    directory = os.path.dirname(dest)
    fd, tmp = tempfile.mkstemp(prefix=".ansible-tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        # Mode and owner are set before the rename, so the file never appears with looser permissions.
        os.chmod(tmp, mode if mode is not None else 0o600)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _backup_name(dest: str, stamp: str) -> str:
    """A free backup name: an uncommitted run's backup of the same file (pending marker) is never overwritten."""
    name = f"{dest}.{os.getpid()}.{stamp}~"
    count = 1
    while os.path.lexists(name):
        count += 1
        name = f"{dest}.{os.getpid()}.{stamp}.{count}~"
    return name


def _backup(dest: str, backup: str) -> str:
    """Copy dest next to itself (same mode and owner); the name ends in ~ so include globs skip it."""
    st = os.stat(dest)
    with open(dest, "rb") as src:
        data = src.read()
    _write_atomically(backup, data, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return backup


def read_marker(path: str | None) -> list[dict]:
    """The entries a pending marker lists (install() results of runs not yet committed), or []."""
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise InstallError(
            f"pending marker {path} is unreadable ({exc}): check the files it guards, then remove it") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "dest" in e for e in entries):
        raise InstallError(f"pending marker {path} is not a list of installed files: check them, then remove it")
    return entries


def write_marker(path: str, entries: list[dict]) -> None:
    """Write the marker atomically, readable by root only (it names backups, never content)."""
    _write_atomically(path, (json.dumps(entries, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o600, -1, -1)


def clear_marker(path: str | None, check: bool = False) -> bool:
    """Remove the marker; True when there was one."""
    if not path or not os.path.lexists(path):
        return False
    if not check:
        os.unlink(path)
    return True


def install(specs: list[dict], backup: bool = True, check: bool = False, marker: str | None = None,
            pending: list[dict] | None = None) -> list[dict]:
    """Install every file whose content or attributes differ. Returns one result per file.

    Every file is planned (read and compared) before the first write, so a bad spec changes nothing.
    A result: {dest, changed, created, content_changed, restart, backup_file?, previous?}.
    marker: before the first write, the changed results (newest first) plus ``pending`` (what an earlier,
    interrupted run left in the marker) are written there, so restore() of the marker's list goes back
    to the files as they were before the oldest uncommitted run.
    """
    plans = [plan_file(spec) for spec in specs]
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S")
    results = []
    for spec, plan in zip(specs, plans, strict=True):
        changed = plan["content_changed"] or plan["attributes_changed"]
        result = {"dest": plan["dest"], "changed": changed, "created": not plan["exists"],
                  "content_changed": plan["content_changed"], "restart": bool(spec.get("restart"))}
        if "previous" in plan and changed:
            result["previous"] = plan["previous"]
        if changed and plan["content_changed"] and plan["exists"] and backup and not check:
            result["backup_file"] = _backup_name(plan["dest"], stamp)
        results.append(result)
    changed_results = [r for r in results if r["changed"]]
    if check or not changed_results:
        return results
    if marker:
        write_marker(marker, changed_results + list(pending or []))
    for spec, plan, result in zip(specs, plans, results, strict=True):
        if not result["changed"]:
            continue
        try:
            if plan["content_changed"]:
                if result.get("backup_file"):
                    _backup(plan["dest"], result["backup_file"])
                _write_atomically(plan["dest"], spec["content"], plan["mode"], plan["uid"], plan["gid"])
            else:
                if plan["mode"] is not None:
                    os.chmod(plan["dest"], plan["mode"])
                os.chown(plan["dest"], plan["uid"], plan["gid"])
        except OSError as exc:
            raise InstallError(f"{plan['dest']}: {exc}", results) from exc
    return results


def ensure_directories(specs: list[dict], check: bool = False, manifest: str = MANIFEST) -> list[dict]:
    """Create missing directories (parents too) and fix mode/owner/group of listed ones.

    spec: {path, mode, owner, group, variable?, force?}. Returns [{path, changed, created}] (a ``force: False``
    directory that exists is left out: it is created when missing and never changed, e.g. one that belongs to
    a package). Directories are never removed by restore(): they may hold files that are not ours.
    Only directories the collection owns are touched (_ownership): every spec is checked before the first
    change, and a system directory or an existing directory it did not create refuses the whole call.
    A directory created here outside the collection's own prefixes is recorded in ``manifest``.
    """
    known = read_manifest(manifest)
    planned, problems = [], []
    for spec in specs:
        path = spec["path"]
        mode = _parse_mode(spec.get("mode"))
        uid, gid = _resolve_ids(spec.get("owner"), spec.get("group"))
        try:
            st = os.stat(path) if os.path.isabs(path) else None
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and not spec.get("force", True):
            continue  # created only when missing (e.g. a package's directory): an existing one is left as it is
        problem = ownership_problem(path, st is not None, known, spec.get("variable"))
        if problem:
            problems.append(problem)
            continue
        if st is not None and not stat.S_ISDIR(st.st_mode):
            problems.append(f"{path} exists and is not a directory")
            continue
        planned.append((path, mode, uid, gid, st))
    if problems:
        raise InstallError("refused, nothing was changed: " + " | ".join(problems))
    results, created_here = [], []
    for path, mode, uid, gid, st in planned:
        created = st is None
        changed = created or ((mode is not None and stat.S_IMODE(st.st_mode) != mode)
                              or (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid))
        if changed and not check:
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chown(path, uid, gid)
            os.chmod(path, mode if mode is not None else 0o755)
            if created and not owned_by_name(path):
                created_here.append(path)
        results.append({"path": path, "changed": changed, "created": created})
    if created_here:
        record_created(created_here, manifest)
    return results


def restore(installed: list[dict], check: bool = False) -> list[str]:
    """Undo install(): put the backups back, remove created files, reset changed attributes.

    Returns the paths it changed. Safe to call twice: a missing backup or file is skipped.
    """
    touched = []
    for item in installed:
        if not item.get("changed"):
            continue
        dest = item["dest"]
        backup = item.get("backup_file")
        if backup:
            if os.path.exists(backup):
                if not check:
                    os.replace(backup, dest)
                touched.append(dest)
        elif item.get("created"):
            if os.path.lexists(dest):
                if not check:
                    os.unlink(dest)
                touched.append(dest)
        elif item.get("previous") and os.path.exists(dest):
            previous = item["previous"]
            if not check:
                os.chmod(dest, previous["mode"])
                os.chown(dest, previous["uid"], previous["gid"])
            touched.append(dest)
    return touched


def commit(installed: list[dict], check: bool = False) -> list[str]:
    """Keep what install() wrote: delete its backups. Returns the backups removed."""
    removed = []
    for item in installed:
        backup = item.get("backup_file")
        if backup and os.path.exists(backup):
            if not check:
                os.unlink(backup)
            removed.append(backup)
    return removed


def diff_entries(specs: list[dict], plans_or_results: list[dict]) -> list[dict]:
    """Ansible diff entries for files whose content changed, leaving out secret files."""
    entries = []
    for spec, result in zip(specs, plans_or_results, strict=True):
        if not result.get("content_changed"):
            continue
        dest = spec["dest"]
        if spec.get("secret"):
            entries.append({"before_header": dest, "after_header": dest,
                            "before": "", "after": "(content hidden: the file holds secrets)\n"})
            continue
        before = spec.get("_before")
        entries.append({"before_header": dest if before is not None else "/dev/null",
                        "after_header": dest,
                        "before": (before or b"").decode("utf-8", "replace"),
                        "after": spec["content"].decode("utf-8", "replace")})
    return entries


def read_before(specs: list[dict]) -> None:
    """Remember each file's current bytes in spec['_before'] (for the diff), before install() writes."""
    for spec in specs:
        spec["_before"] = None
        if spec.get("secret") or not spec.get("force", True):
            continue
        try:
            with open(spec["dest"], "rb") as handle:
                spec["_before"] = handle.read()
        except (FileNotFoundError, IsADirectoryError):
            pass


def _same_attributes(found: dict, mode, owner, group) -> bool:
    """The read attributes of one path are what install() or ensure_directories() would leave (None: any)."""
    if mode not in (None, "") and int(found.get("mode") or "0", 8) != _parse_mode(mode):
        return False
    return all(want in (None, "") or str(want) == found.get(key) for key, want in (("owner", owner), ("group", group)))


def unchanged_by_read(files: list[dict], directories: list[dict], host_paths: dict, defaults: dict) -> bool:
    """Whether the host, as pmta_host_state read it (``host_paths``: its ``paths`` result, files with their
    ``checksum``), already has every directory and file as a present call would leave them, so the caller
    can leave out the call. Anything it cannot prove the same (a path not read, a secret file, whose checksum
    is never read, a numeric owner, a directory outside the collection's own prefixes, whose ownership only the
    host's manifest tells) counts as a change: the call then decides on the host, rule included.

    files: {dest, content (text), mode?, owner?, group?, force?, secret?}; defaults: {mode, owner, group}.
    """
    import hashlib

    for spec in directories:
        found = host_paths.get(spec.get("path")) or {}
        if not found.get("exists") or found.get("type") != "directory":
            return False
        if not spec.get("force", True):
            continue
        # The ownership rule is the host's to apply, with its manifest: proven here only for a directory under the
        # collection's own prefixes whose path is well formed.
        if not owned_by_name(spec["path"]) or path_shape_problem("directory", spec["path"]):
            return False
        if not _same_attributes(found, spec.get("mode"), spec.get("owner"), spec.get("group")):
            return False
    for spec in files:
        found = host_paths.get(spec.get("dest")) or {}
        if not found.get("exists") or found.get("type") != "file":
            return False
        if not spec.get("force", True):
            continue
        if spec.get("secret") or spec.get("content") is None:
            return False
        if found.get("checksum") != hashlib.sha256(spec["content"].encode("utf-8")).hexdigest():
            return False
        if not _same_attributes(found, spec.get("mode") or defaults.get("mode"),
                                spec.get("owner") or defaults.get("owner"), spec.get("group") or defaults.get("group")):
            return False
    return True
