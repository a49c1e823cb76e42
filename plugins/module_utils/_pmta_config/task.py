# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pmta_config_lint task, shared by the module (on a host) and its action plugin (on the controller).

run_lint() takes the validated parameters and returns (result, warnings): the result dict the task
returns (``failed`` and ``msg`` when it fails) and the warning lines Ansible prints.
"""

from __future__ import annotations

import os

from . import lint_path, lint_text, schema

MAX_LISTED = 20
SCOPES = schema.ALL_SCOPES

ARGUMENT_SPEC = dict(
    path=dict(type="path"),
    content=dict(type="str", no_log=True),
    filename=dict(type="str", default="/etc/pmta/config"),
    include_root=dict(type="path"),
    fragment=dict(type="bool", default=False),
    scope=dict(type="str", default="global"),
    fail_on=dict(type="str", choices=["error", "warning"], default="error"),
    extra_directives=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            name=dict(type="str", required=True),
            scopes=dict(type="list", elements="str", default=["global"]),
        ),
    ),
    unknown_directives=dict(type="str", choices=["error", "warning"], default="error"),
)
MUTUALLY_EXCLUSIVE = [("path", "content")]
REQUIRED_ONE_OF = [("path", "content")]


def _summary(result, fail_on):
    listed = result.errors + (result.warnings if fail_on == "warning" else [])
    lines = [finding.format() for finding in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        lines.append("... and %d more (see errors and lint_warnings)" % (len(listed) - MAX_LISTED))
    return "PowerMTA config check failed: %d error(s), %d warning(s):\n%s" % (
        len(result.errors),
        len(result.warnings),
        "\n".join(lines),
    )


def _failed(msg):
    return {"failed": True, "changed": False, "msg": msg}, []


def run_lint(params):
    if params["scope"] not in SCOPES:
        return _failed("scope: %r is not a PowerMTA block; use global or one of %s"
                       % (params["scope"], ", ".join(sorted(SCOPES - {"global"}))))
    extra = params["extra_directives"] or []
    try:
        schema.with_extra_directives(extra)
    except ValueError as exc:
        return _failed("extra_directives: %s" % exc)
    options = dict(
        fragment=params["fragment"],
        scope=params["scope"],
        extra_directives=extra,
        unknown_directives=params["unknown_directives"],
    )
    if params["path"] is not None:
        path = params["path"]
        if not os.path.isfile(path):
            return _failed("path: %s is not a readable file; give the main PowerMTA config file" % path)
        include_root = params["include_root"] or "/"
        if include_root != "/" and not os.path.isdir(include_root):
            return _failed("include_root: %s is not a directory" % include_root)
        try:
            result = lint_path(path, include_root=include_root, **options)
        except OSError as exc:
            return _failed("path: cannot read %s: %s" % (path, exc.strerror))
        main_file = result.tree.file
    else:
        include_root = params["include_root"]
        if include_root is not None and include_root != "/" and not os.path.isdir(include_root):
            return _failed("include_root: %s is not a directory" % include_root)
        main_file = params["filename"]
        result = lint_text(params["content"], main_file, include_root=include_root, **options)

    out = result.to_dict()
    # "warnings" is Ansible's own key (strings it prints); the dicts go to lint_warnings.
    out["lint_warnings"] = out.pop("warnings")
    out["files"] = [main_file] + list(result.tree.includes.followed)
    out["changed"] = False
    warnings = [finding.format() for finding in result.warnings[:MAX_LISTED]]
    if len(result.warnings) > MAX_LISTED:
        warnings.append("... and %d more PowerMTA config warnings (see lint_warnings)"
                        % (len(result.warnings) - MAX_LISTED))
    if bool(result.errors) or (params["fail_on"] == "warning" and bool(result.warnings)):
        out["failed"] = True
        out["msg"] = _summary(result, params["fail_on"])
    return out, warnings
