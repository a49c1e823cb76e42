#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmta_config_install
short_description: Install many config files in one step, with backups, then commit or restore them
version_added: 0.1.0
description:
  - Installs a set of files as one transaction in a single task call, instead of one C(copy) per file.
  - V(present) writes every file whose content or attributes differ (each atomically, through a temporary
    file in the same directory) and keeps a backup of the previous content next to it
    (C(NAME.PID.DATE~), so C(include *.conf) globs do not match it). It reports C(changed) per file.
  - V(restored) undoes a V(present) run from its RV(files) result; V(committed) deletes its backups.
  - The action plugin of the same name reads the sources from a directory on the controller
    (O(src_root)), so a staging tree rendered there is installed byte for byte.
author:
  - mailops.powermta contributors (@mailops)
options:
  state:
    description:
      - V(present) installs O(files); V(restored) puts back what O(installed) lists; V(committed) removes its backups.
    type: str
    choices: [present, restored, committed]
    default: present
  src_root:
    description:
      - Directory on the controller that holds the sources; each file's O(files[].src) is relative to it.
        Read by the action plugin; the module itself receives the content.
    type: path
  remove_src_root:
    description:
      - Remove O(src_root) on the controller after the call (also when it fails), e.g. a staging tree that
        holds rendered secrets, with V(committed) at the end of a transaction. Handled by the action plugin.
    type: bool
    default: false
  host_paths:
    description:
      - The RV(mailops.powermta.pmta_host_state#module:paths) result of a read of this host made earlier in the run,
        with the O(files) in its O(mailops.powermta.pmta_host_state#module:checksum_paths). When it shows every
        directory of O(directories) and every file of O(files) as V(present) would leave them, the action plugin
        returns unchanged without calling the host. Anything it cannot prove the same (a path not read, a
        secret file, a numeric owner) makes the call. With O(pending_marker), the read must also show the marker
        absent (no activation left pending by an earlier run). Handled by the action plugin.
    type: dict
  files:
    description:
      - The files to install (V(present)).
      - "The action plugin also takes C({path: P, ...}) for C({src: P, dest: /P}) and drops keys it does not know
        (so a role's own file list with extra keys can be passed as is)."
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: Source path relative to O(src_root) on the controller.
        type: str
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      mode:
        description: Octal mode as a string, e.g. V('0640'). Defaults to O(mode).
        type: str
      owner:
        description: Owner name or uid. Defaults to O(owner).
        type: str
      group:
        description: Group name or gid. Defaults to O(group).
        type: str
      force:
        description: V(false) creates a missing file and never changes an existing one.
        type: bool
        default: true
      secret:
        description: The file holds secrets, so its content never appears in the diff or the task's arguments.
        type: bool
        default: false
      restart:
        description:
          - The service reads this file only at start. Copied into the file's RV(files) entry, so the caller
            can choose between a reload and a restart, also from an interrupted run's RV(pending) entries.
        type: bool
        default: false
      content:
        description: The content (set by the action plugin from O(files[].src)).
        type: str
      secret_content:
        description: The content of a secret file (set by the action plugin; not logged).
        type: str
  mode:
    description: Mode of every file that does not set its own (new files without any mode get V('0600')).
    type: str
  owner:
    description: Owner of every file that does not set its own.
    type: str
  group:
    description: Group of every file that does not set its own.
    type: str
  directories:
    description:
      - Directories to create when missing (with parents) and whose mode, owner and group to set, before any
        file of O(files) is written (V(present)). Never removed by V(restored).
      - Only directories the collection owns are created or changed; every one is checked before the first
        change and the call fails, changing nothing, on C(/), a top-level or shared system directory
        (C(/var/log), C(/var/spool), C(/etc) ...), a home directory, or an existing directory that is neither
        under the collection's own prefixes (C(/etc/pmta), C(/var/log/pmta*), C(/var/spool/pmta*)) nor
        recorded as created by it in C(/var/lib/mailops-powermta/created-directories). A directory it creates
        outside those prefixes is recorded there.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path on the host.
        type: path
        required: true
      mode:
        description: Octal mode as a string, e.g. V('0750').
        type: str
      owner:
        description: Owner name or uid.
        type: str
      group:
        description: Group name or gid.
        type: str
      variable:
        description: The inventory variable the path comes from, named in the message when the path is refused.
        type: str
      force:
        description:
          - V(false) creates the directory when it is missing (under the same rule) and never changes an existing
            one, e.g. a directory that belongs to a package, whose owner and mode stay the package's.
        type: bool
        default: true
  installed:
    description:
      - The RV(files) result of a V(present) run, for V(restored) and V(committed).
    type: list
    elements: dict
    default: []
  backup:
    description:
      - Keep the previous content of a changed file until V(committed) or V(restored).
    type: bool
    default: true
  pending_marker:
    description:
      - A file on the host that says files were installed but not yet activated. With V(present), it is read
        first (returned as RV(pending)) and, when a file changes, written before the first file is touched
        (the changed entries followed by the pending ones). V(committed) and V(restored) remove it.
      - A run killed between V(present) and V(committed) or V(restored) thus leaves it behind, and the next
        run still knows what to activate, or what to restore (pass O(installed) the RV(files) plus the
        RV(pending) entries, newest first).
    type: path
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: One diff per changed file; secret files show only that they change.
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
notes:
  - Each file is replaced atomically; the set as a whole is made consistent by V(restored) on failure.
"""

EXAMPLES = r"""
- name: Install the staged configuration
  mailops.powermta.pmta_config_install:
    src_root: "{{ staging_dir }}"
    owner: root
    group: pmta
    mode: "0640"
    files:
      - {src: etc/pmta/config, dest: /etc/pmta/config}
      # staged etc/pmta/conf.d/users.conf -> /etc/pmta/conf.d/users.conf
      - {path: etc/pmta/conf.d/users.conf, secret: true}
  register: installed

- name: Put the previous files back
  mailops.powermta.pmta_config_install:
    state: restored
    installed: "{{ installed.files }}"
"""

RETURN = r"""
files:
  description: One entry per file (V(present)), the input of V(restored) and V(committed).
  returned: always
  type: list
  elements: dict
  sample:
    - {dest: /etc/pmta/config, changed: true, created: false, content_changed: true,
       backup_file: "/etc/pmta/config.4242.2026-01-01@10:00:00~"}
directories:
  description: One entry per directory of O(directories) (V(present)), with C(changed) and C(created).
  returned: success
  type: list
  elements: dict
changed_files:
  description: The paths whose content or attributes changed (V(present)) or that were put back (V(restored)).
  returned: always
  type: list
  elements: str
unchanged_by_read:
  description: With O(host_paths), whether the read showed nothing to do, so the host was not called.
  returned: when O(host_paths) is given
  type: bool
pending:
  description:
    - The entries O(pending_marker) held before this run (V(present)), the files an earlier run installed and
      never committed or restored, e.g. because the controller was killed before the reload. Empty when none.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import (  # noqa: E402
    InstallError,
    clear_marker,
    commit,
    diff_entries,
    ensure_directories,
    install,
    read_before,
    read_marker,
    restore,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "restored", "committed"], "default": "present"},
            "src_root": {"type": "path"},
            "remove_src_root": {"type": "bool", "default": False},
            "host_paths": {"type": "dict"},  # handled by the action plugin
            "files": {"type": "list", "elements": "dict", "default": [], "options": {
                "src": {"type": "str"},
                "dest": {"type": "path", "required": True},
                "mode": {"type": "str"},
                "owner": {"type": "str"},
                "group": {"type": "str"},
                "force": {"type": "bool", "default": True},
                "secret": {"type": "bool", "default": False},
                "restart": {"type": "bool", "default": False},
                "content": {"type": "str"},
                "secret_content": {"type": "str", "no_log": True},
            }},
            "mode": {"type": "str"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "directories": {"type": "list", "elements": "dict", "default": [], "options": {
                "path": {"type": "path", "required": True},
                "mode": {"type": "str"},
                "owner": {"type": "str"},
                "group": {"type": "str"},
                "variable": {"type": "str"},
                "force": {"type": "bool", "default": True},
            }},
            "installed": {"type": "list", "elements": "dict", "default": []},
            "backup": {"type": "bool", "default": True},
            "pending_marker": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    pending = []
    try:
        if params["state"] == "restored":
            touched = restore(params["installed"], check=module.check_mode)
            clear_marker(params["pending_marker"], check=module.check_mode)
            module.exit_json(changed=bool(touched), files=params["installed"], changed_files=touched)
        if params["state"] == "committed":
            removed = commit(params["installed"], check=module.check_mode)
            # Changing only the marker is bookkeeping, not a change of the host's configuration.
            clear_marker(params["pending_marker"], check=module.check_mode)
            module.exit_json(changed=False, files=params["installed"], changed_files=[], backups_removed=removed)
        pending = read_marker(params["pending_marker"])
        specs = []
        for item in params["files"]:
            text = item["secret_content"] if item["secret"] else item["content"]
            if text is None:
                module.fail_json(msg=f"files: {item['dest']} has no content (give src with src_root)")
            specs.append({"dest": item["dest"], "content": text.encode("utf-8"),
                          "mode": item["mode"] or params["mode"], "owner": item["owner"] or params["owner"],
                          "group": item["group"] or params["group"], "force": item["force"],
                          "secret": item["secret"], "restart": item["restart"]})
        directories = ensure_directories(params["directories"], check=module.check_mode)
        if module._diff:
            read_before(specs)
        results = install(specs, backup=params["backup"], check=module.check_mode,
                          marker=params["pending_marker"], pending=pending)
    except InstallError as exc:
        # files: what was already installed, so a rescue can restore it.
        module.fail_json(msg=f"InstallError: {exc}", files=exc.results, pending=pending,
                         changed_files=[r["dest"] for r in exc.results if r["changed"]])
    except OSError as exc:
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", files=[], changed_files=[], pending=pending)
    out = {"changed": any(r["changed"] for r in results + directories), "files": results,
           "changed_files": [r["dest"] for r in results if r["changed"]], "directories": directories,
           "pending": pending}
    if module._diff:
        out["diff"] = diff_entries(specs, results)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
