# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of pmta_config_install: read the staged sources and call the module once."""

from __future__ import annotations

import os
import shutil

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.config_install import (
    InstallError,
    unchanged_by_read,
)

FILE_KEYS = frozenset(("src", "dest", "mode", "owner", "group", "force", "secret", "restart", "content"))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        files = []
        src_root = module_args.get("src_root")
        for index, item in enumerate(module_args.get("files") or []):
            if not isinstance(item, dict):
                raise AnsibleActionFail(f"files[{index}] must be a dict with src/dest, not {item!r}")
            if item.get("path") and not item.get("dest"):
                # A staged path P (relative to src_root) is installed at /P.
                item = dict(item, src=item["path"], dest="/" + str(item["path"]).lstrip("/"))
            entry = {key: value for key, value in item.items() if key in FILE_KEYS}
            src = entry.pop("src", None)
            if src is not None:
                if not src_root:
                    raise AnsibleActionFail(f"files[{index}] has src {src!r} but src_root is not set")
                path = os.path.join(src_root, src)
                try:
                    with open(path, "rb") as handle:
                        text = to_text(handle.read(), errors="surrogate_or_strict")
                except OSError as exc:
                    raise AnsibleActionFail(f"files[{index}]: cannot read {path} on the controller: {exc}") from exc
                if entry.get("secret"):
                    entry["secret_content"] = text
                else:
                    entry["content"] = text
            if entry.get("secret") and "content" in entry:
                # Given inline (e.g. a license): still kept out of the logged arguments.
                entry["secret_content"] = entry.pop("content")
            files.append(entry)
        module_args["files"] = files
        module_args.pop("src_root", None)
        remove_src_root = boolean(module_args.pop("remove_src_root", False), strict=False)
        host_paths = module_args.pop("host_paths", None)
        if (host_paths and module_args.get("state", "present") == "present"
                and self._no_pending_activation(module_args.get("pending_marker"), host_paths)
                and self._unchanged(files, module_args, host_paths)):
            # The host's read (pmta_host_state) shows every directory and file as this call would leave them, and no
            # activation left pending by an earlier run (its marker read as absent).
            if remove_src_root and src_root:
                shutil.rmtree(src_root, ignore_errors=True)
            result.update(changed=False, changed_files=[], directories=[], pending=[], unchanged_by_read=True,
                          files=[{"dest": item["dest"], "changed": False, "created": False, "content_changed": False,
                                  "restart": bool(item.get("restart"))} for item in files])
            return result
        installed = [item for item in module_args.get("installed") or [] if isinstance(item, dict)]
        if module_args.get("state") == "committed" and not any(item.get("backup_file") for item in installed) and not (
                module_args.get("pending_marker") and any(item.get("changed") for item in installed)):
            # Nothing to delete on the host (no backup, and no marker since no file changed): no module call.
            if remove_src_root and src_root:
                shutil.rmtree(src_root, ignore_errors=True)
            result.update(changed=False, files=module_args.get("installed") or [], changed_files=[],
                          backups_removed=[])
            return result
        try:
            module_result = self._execute_module(
                module_name="mailops.powermta.pmta_config_install", module_args=module_args, task_vars=task_vars)
        finally:
            # The staging tree holds rendered secrets: gone even when the host call fails.
            if remove_src_root and src_root:
                shutil.rmtree(src_root, ignore_errors=True)
        # The arguments hold every file's content: keep them out of the registered result.
        module_result.pop("invocation", None)
        if host_paths:
            module_result["unchanged_by_read"] = False
        result.update(module_result)
        return result

    @staticmethod
    def _no_pending_activation(marker, host_paths):
        """No marker asked for, or the read shows it absent (a path not read counts as present)."""
        if not marker:
            return True
        found = host_paths.get(marker) if isinstance(host_paths, dict) else None
        return isinstance(found, dict) and found.get("exists") is False

    @staticmethod
    def _unchanged(files, module_args, host_paths):
        if not isinstance(host_paths, dict):
            raise AnsibleActionFail("host_paths must be the paths result of mailops.powermta.pmta_host_state")
        try:
            return unchanged_by_read(files, module_args.get("directories") or [], host_paths,
                                     {key: module_args.get(key) for key in ("mode", "owner", "group")})
        except (InstallError, UnicodeError, ValueError, TypeError):
            return False  # not provable here: the module decides on the host
