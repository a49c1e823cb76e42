# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which directories the collection may create, chown and chmod: only its own.

PRIVATE to the collection. Standard library only: used on the host by pmta_config_install (before any
directory is created or changed) and on the controller by the preflight (the path-shape part), so a
wrong path is refused before any host is contacted and again on the host.

A directory is ours when
  1. it is one the collection names itself, under a prefix it owns (``OWNED_ROOTS``: /etc/pmta,
     /var/log/pmta*, /var/spool/pmta*, the monitoring role's own directories), or
  2. the collection created it: a directory that did not exist is created and its path recorded in the
     manifest on the host (``MANIFEST``), so the next run knows it made it.
Never ours: ``/``, a top-level directory, the shared system directories (``PROTECTED``: /var/log,
/var/spool, /etc ...), home directories (/home/USER, /root and what is inside them), and any existing
directory that is neither of the above: its owner and mode stay as they are.
"""

from __future__ import annotations

import grp
import os
import posixpath
import pwd

MANIFEST = "/var/lib/mailops-powermta/created-directories"

# (parent, name prefix): PARENT/NAME* and everything below it. /var/log/pmta and /var/spool/pmta are the
# vendor package's own directories; /var/spool/pmta2 etc. are a fleet's extra spools.
OWNED_ROOTS = (
    ("/etc", "pmta"),
    ("/var/log", "pmta"),
    ("/var/spool", "pmta"),
    ("/etc", "mailops-powermta"),
    ("/var/lib", "mailops-powermta"),
    ("/var/cache", "mailops-powermta"),
    ("/usr/local/lib", "mailops-powermta"),
)

# Shared directories other software depends on (besides every top-level directory).
PROTECTED = frozenset([
    "/", "/etc/ssl", "/etc/ssl/private", "/etc/ssl/certs", "/etc/systemd", "/etc/systemd/system",
    "/etc/default", "/etc/cron.d", "/etc/logrotate.d", "/etc/ansible", "/etc/ansible/facts.d",
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/share", "/usr/local", "/usr/local/bin", "/usr/local/lib",
    "/usr/local/sbin", "/usr/local/share",
    "/var/backups", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail",
    "/var/opt", "/var/run", "/var/spool", "/var/tmp", "/var/www", "/var/log/journal",
    "/var/spool/cron", "/var/spool/postfix", "/var/lib/prometheus",
])
# Trees that are never ours, nothing inside them either (user homes, kernel and runtime file systems).
FOREIGN_TREES = ("/home", "/root", "/proc", "/sys", "/dev", "/run", "/boot")

SUGGESTION = {"powermta_log_file": "/var/log/pmta/log", "powermta_spool_dirs": "/var/spool/pmta",
              "powermta_dkim_key_dir": "/etc/pmta/dkim", "powermta_acct_files": "/var/log/pmta/acct.csv",
              "monitoring_lib_dir": "/usr/local/lib/mailops-powermta", "monitoring_config_dir": "/etc/mailops-powermta",
              "monitoring_state_dir": "/var/lib/mailops-powermta"}


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def owned_by_name(path: str) -> bool:
    """True when ``path`` is under one of the collection's own prefixes (``OWNED_ROOTS``)."""
    for parent, prefix in OWNED_ROOTS:
        if not path.startswith(parent + "/"):
            continue
        first = path[len(parent) + 1:].split("/", 1)[0]
        if first.startswith(prefix):
            return True
    return False


def _fix(variable: str) -> str:
    example = SUGGESTION.get(variable.split(" ")[0].split("[")[0], "/var/spool/pmta2")
    return "use a directory of its own that the collection creates, such as %s" % example


def path_shape_problem(variable: str, path, what: str = "directory") -> str | None:
    """Why ``path`` can never be a directory the collection creates or chowns, or None.

    Pure (no file system access): the controller's preflight and the host's module call it alike.
    ``variable`` names the inventory variable (and item) the path came from, for the message.
    """
    if not isinstance(path, str) or not path:
        return "%s: %r is not a path; give an absolute path" % (variable, path)
    if not path.startswith("/"):
        return "%s: %s is relative; give an absolute path (%s)" % (variable, path, _fix(variable))
    normalized = posixpath.normpath(path)
    if normalized.startswith("//"):
        normalized = "/" + normalized.lstrip("/")
    if normalized != (path.rstrip("/") or "/") or (path != "/" and path.endswith("/")):
        return "%s: write %s as %s" % (variable, path, normalized)
    for tree in FOREIGN_TREES:
        if _within(normalized, tree):
            return ("%s: %s is in %s, which the collection never creates or chowns (home directories and runtime "
                    "file systems are not ours); %s" % (variable, normalized, tree, _fix(variable)))
    if normalized in PROTECTED or normalized.count("/") == 1:
        return ("%s: %s is a system %s shared with other software; the collection never creates or chowns it "
                "(its owner and mode stay as they are); %s" % (variable, normalized, what, _fix(variable)))
    return None


def check_paths(items) -> list[str]:
    """Problems of ``[(variable, path), ...]``: the preflight's list form of :func:`path_shape_problem`."""
    return [problem for variable, path in items for problem in [path_shape_problem(variable, path)] if problem]


def directory_problems(host_vars: dict, acct_files=()) -> list[str]:
    """Problems of every directory a host's settings make the powermta role create and chown (controller side).

    ``host_vars``: the host's variables as the fleet model reads them (only the settings given are checked);
    ``acct_files``: the host's merged powermta_acct_files (``{name}``; a ``|pipe`` name is not a file).
    The same rule refuses them again on the host (pmta_config_install), so a run past preflight changes nothing.
    """
    items = []
    log_file = host_vars.get("powermta_log_file")
    if log_file is not None:
        if not isinstance(log_file, str) or not log_file.startswith("/") or log_file.endswith("/"):
            items.append(("powermta_log_file", log_file))
        else:
            items.append(("powermta_log_file (the directory of %s)" % log_file, posixpath.dirname(log_file)))
    spools = host_vars.get("powermta_spool_dirs")
    if isinstance(spools, list):
        items += [("powermta_spool_dirs[%d]" % index, path) for index, path in enumerate(spools)]
    if host_vars.get("powermta_dkim_key_dir") is not None:
        items.append(("powermta_dkim_key_dir", host_vars["powermta_dkim_key_dir"]))
    for acct in acct_files or ():
        name = acct.get("name") if isinstance(acct, dict) else None
        if isinstance(name, str) and name.startswith("/"):
            items.append(("powermta_acct_files item %s (its directory)" % name, posixpath.dirname(name)))
    return check_paths(items)


def read_manifest(manifest: str = MANIFEST) -> set[str]:
    """Paths the collection recorded as created by itself on this host (empty when there is no manifest)."""
    try:
        with open(manifest, encoding="utf-8") as handle:
            return {line.strip() for line in handle if line.strip().startswith("/")}
    except FileNotFoundError:
        return set()


def record_created(paths, manifest: str = MANIFEST) -> None:
    """Add ``paths`` (directories just created) to the manifest, atomically."""
    known = read_manifest(manifest)
    new = sorted(set(paths) - known)
    if not new:
        return
    directory = os.path.dirname(manifest)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = "%s.tmp.%d" % (manifest, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("# Directories mailops.powermta created on this host; it changes only these and its own\n"
                     "# (docs/architecture.md \"What the collection owns on a host\"). Do not edit.\n")
        handle.writelines(path + "\n" for path in sorted(known | set(new)))
    os.chmod(tmp, 0o644)
    os.replace(tmp, manifest)


def ownership_problem(path: str, exists: bool, manifest_paths=frozenset(), variable: str | None = None) -> str | None:
    """Why the collection may not create or change the directory ``path`` on this host, or None.

    ``exists``: the directory is there now. ``manifest_paths``: :func:`read_manifest`.
    """
    label = variable or "directory"
    shape = path_shape_problem(label, path)
    if shape:
        return shape
    if not exists or owned_by_name(path) or path in manifest_paths:
        return None
    return ("%s: %s already exists and was not created by mailops.powermta (not under %s, not in %s); its owner "
            "and mode stay as they are. %s, or remove it yourself if it is unused"
            % (label, path, ", ".join("%s/%s*" % root for root in OWNED_ROOTS[:3]), MANIFEST,
               _fix(label)[0].upper() + _fix(label)[1:]))


def owner_names(st):
    """``(user, group)`` of an ``os.stat`` result: names when the host knows them, else the numbers."""
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group
