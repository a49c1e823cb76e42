# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render many role templates into a directory on the controller in one task call.

One call instead of one template task per file: the task's variables are prepared once, each
template is rendered with them (as ansible.builtin.template does) and written below root.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.plugin_utils._config_render import render_template, template_item

STAND_IN = "# stand-in for the host's file (owned by another role)\n"


def _inside(root: str, rel: str) -> str:
    path = os.path.normpath(os.path.join(root, rel))
    if os.path.isabs(rel) or not path.startswith(os.path.normpath(root) + os.sep):
        raise AnsibleActionFail(f"dest {rel!r} must be a relative path inside root")
    return path


def _write(path: str, data: bytes, mode: int) -> bool:
    """Write data to path (atomically) unless it already holds it; True when written."""
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                os.chmod(path, mode)
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".render-", dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("root", "templates", "stand_ins", "mode", "prefix"))

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        root = args.get("root")
        created = False
        if not root:
            # A fresh private staging directory (0700), saving a tempfile task per host.
            root = tempfile.mkdtemp(prefix=str(args.get("prefix") or "powermta-staging-"))
            created = True
        if not os.path.isabs(str(root)):
            raise AnsibleActionFail("root must be an absolute directory path on the controller")
        root = str(root)
        try:
            result.update(self._render(root, args, task_vars))
        except Exception:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            raise
        # path: the same key as ansible.builtin.tempfile's result, so the caller can register either.
        result.update(path=root, root=root)
        return result

    def _render(self, root, args, task_vars):
        try:
            mode = int(str(args.get("mode", "0600")), 8)
        except ValueError as exc:
            raise AnsibleActionFail(f"mode must be octal, e.g. '0600': {exc}") from exc
        templates = args.get("templates") or []
        stand_ins = args.get("stand_ins") or []
        if not isinstance(templates, list) or not isinstance(stand_ins, list):
            raise AnsibleActionFail("templates and stand_ins must be lists")

        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir]
        searchpath = [p for base in searchpath for p in (os.path.join(base, "templates"), base)]
        rendered = []
        written = []
        for index, entry in enumerate(templates):
            item = template_item(entry)
            if item is None:
                raise AnsibleActionFail(f"templates[{index}] must be a dict with src and dest, not {entry!r}")
            dest = _inside(root, str(item["dest"]))
            try:
                source = self._find_needle("templates", str(item["src"]))
            except AnsibleError as exc:
                raise AnsibleActionFail(to_text(exc)) from exc
            try:
                text = render_template(self._loader, self._templar, task_vars, item, source, searchpath)
            except AnsibleError as exc:
                raise AnsibleActionFail(f"rendering {item['src']} failed: {to_text(exc)}") from exc
            if _write(dest, to_bytes(text, errors="surrogate_or_strict"), mode):
                written.append(str(item["dest"]))
            rendered.append(str(item["dest"]))
        for index, item in enumerate(stand_ins):
            if isinstance(item, str):
                item = {"dest": item, "content": STAND_IN}
            if isinstance(item, dict) and item.get("path") and not item.get("dest"):
                item = dict(item, dest=item["path"])  # {path, content}, as warmup_plan returns its files
            if not isinstance(item, dict) or not item.get("dest"):
                raise AnsibleActionFail(f"stand_ins[{index}] must be a dict with dest and content, not {item!r}")
            dest = _inside(root, str(item["dest"]))
            if _write(dest, to_bytes(str(item.get("content", "")), errors="surrogate_or_strict"), mode):
                written.append(str(item["dest"]))
            rendered.append(str(item["dest"]))
        # The staging tree is scratch space on the controller, not a managed target: never "changed".
        return {"changed": False, "files": rendered, "written": written}
