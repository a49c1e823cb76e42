# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: render one role template as ansible.builtin.template does (the powermta role's render
path, shared by the pmta_config_render action and the preflight's render of every host's config)."""

from __future__ import annotations

import os
from collections import ChainMap

from ansible._internal._templating import _template_vars
from ansible.template import trust_as_template


def template_item(item):
    """The {src, dest, ...} form of a templates entry: a path P renders P.j2 to P; None when malformed."""
    if isinstance(item, str):
        item = {"path": item}
    if isinstance(item, dict) and item.get("path") and not item.get("dest"):
        # Templates mirror their destination: path P renders P.j2 (or src when given) to P.
        item = dict(item, src=item.get("src") or f"{item['path']}.j2", dest=item["path"])
    if not isinstance(item, dict) or not item.get("src") or not item.get("dest"):
        return None
    return item


def render_template(loader, templar, task_vars, item, source, searchpath, reuse=False):
    """The text of template ``source`` (the file found for item['src']) rendered with ``task_vars`` plus
    ``item`` (as in a loop) and Ansible's template variables, with the template module's Jinja options.

    With ``reuse``, ``templar`` (whose search path already holds the template's directory) renders it with
    these variables instead of a fresh copy (a fresh copy is a fresh Jinja environment that compiles every
    template again: the preflight renders many hosts with one, see ``compile_once``)."""
    own = {"item": item}  # as in a loop: per-file data (e.g. the vMTA of a warm-up include)
    own.update(_template_vars.generate_ansible_template_vars(
        path=str(item["src"]), fullpath=source, dest_path="/" + str(item["dest"]),
        include_ansible_managed="ansible_managed" not in task_vars))
    # The file's own variables over the task's, without copying the task's (one render per file of each host).
    template_vars = ChainMap(own, task_vars)
    if reuse:
        file_templar = templar
        file_templar.available_variables = template_vars
    else:
        file_templar = templar.copy_with_new_env(
            searchpath=list(searchpath) + [os.path.dirname(source)], available_variables=template_vars)
    data = trust_as_template(loader.get_text_file_contents(source))
    text = file_templar.template(data, escape_backslashes=False,
                                 overrides={"trim_blocks": True, "lstrip_blocks": False})
    return text if text is not None else ""


def compile_once(templar):
    """Make ``templar`` compile each distinct template text once (the same text, the same options): rendering
    the same role templates for every host of a fleet then costs the render only. Only this templar (its own
    engine instance) is changed."""
    engine = templar._engine  # pylint: disable=protected-access
    compile_template = engine._compile_template  # pylint: disable=protected-access
    cache = {}

    def cached(template, options):
        key = (str.__str__(template), repr(options))
        if key not in cache:
            cache[key] = compile_template(template, options)
        return cache[key]

    engine._compile_template = cached  # pylint: disable=protected-access
    return templar
