# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight, on the controller: render every host's complete PowerMTA config as the powermta role does
(roles/powermta/tasks/lint.yml: the same templates, the same render function, the role's defaults and vars
over the host's inventory and the fleet model) and lint it with the role's linter (module_utils/_pmta_config).

Each error is one line naming the host, the inventory variable and item that produced it (found from the
enclosing block of the rendered line: ``<virtual-mta NAME>`` is the vMTA item NAME, local.conf is
``powermta_extra_config``...), the finding and its fix.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import yaml
from ansible.errors import AnsibleError
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config import lint_path
from ansible_collections.mailops.powermta.plugins.plugin_utils._config_render import (
    compile_once,
    render_template,
    template_item,
)
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import trusted

ROLE = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "roles", "powermta"))
ROLE_VARS = os.path.join(ROLE, "vars", "main.yml")
TEMPLATES = os.path.join(ROLE, "templates")

# Directives outside any block, by the variable that renders them (the templates print them from these).
TOP_LEVEL = {
    "host-name": "powermta_hostname", "postmaster": "powermta_postmaster", "log-file": "powermta_log_file",
    "log-rotate": "powermta_log_rotate", "total-max-smtp-out": "powermta_total_max_smtp_out",
    "http-access": "powermta_http_access", "http-redirect-to-https": "powermta_http_redirect_to_https",
    "domain-key": "powermta_domains (dkim_selectors) / powermta_dkim_key_dir", "run-as-root": "powermta_run_as_root",
    "http-mgmt-port": "powermta_http_mgmt_port", "smtp-listener": "powermta_listeners",
}
# Outermost blocks: (variable, whether the block's argument names the item).
BLOCKS = {
    "virtual-mta": ("powermta_vmtas", True), "virtual-mta-pool": ("powermta_pools", True),
    "smtp-listener": ("powermta_listeners", True), "smtp-user": ("powermta_injectors", True),
    "acct-file": ("powermta_acct_files", True), "spool": ("powermta_spool_dirs", True),
    "mx-rollup-list": ("powermta_isp_policies (mx_patterns)", False),
    "bounce-processor": ("powermta_domains (bounce_domain) / powermta_bounce_domains", False),
    "feedback-loop-processor": ("powermta_fbl_address", False),
}


def _load_role_vars():
    with open(ROLE_VARS, encoding="utf-8") as handle:
        return trusted(yaml.safe_load(handle) or {})


def _enclosing(lines, number):
    """The stack of (block, argument) open at line ``number`` (1-based) of a rendered file."""
    stack = []
    for text in lines[:number]:
        stripped = text.strip()
        if stripped.startswith("</"):
            if stack:
                stack.pop()
        elif stripped.startswith("<") and stripped.endswith(">"):
            name, _space, arg = stripped[1:-1].partition(" ")
            stack.append((name.lower(), arg.strip()))
    return stack


def _source_origin(arg, model):
    for injector in model.get("injectors", []):
        if arg in (injector.get("networks") or []):
            return "powermta_injectors item %s (network %s)" % (injector.get("name"), arg)
    if arg == "{auth}":
        return "powermta_auth_source_directives"
    return "powermta_sources item %s" % arg


def origin(rel, lines, number, model):
    """Which inventory variable and item rendered line ``number`` of file ``rel`` (relative to /)."""
    if rel == "etc/pmta/conf.d/local.conf":
        header = next((i for i, text in enumerate(lines, 1) if text.startswith("# powermta_extra_config")), 2)
        return "powermta_extra_config line %d" % (number - header)
    if rel.startswith("etc/pmta/conf.d/warmup"):
        return "the warm-up include %s (warmup role)" % rel
    stack = _enclosing(lines, number)
    if number <= len(lines) and lines[number - 1].strip().startswith("</") and not stack:
        stack = _enclosing(lines, number - 1)
    if not stack:
        words = lines[number - 1].split() if 0 < number <= len(lines) else []
        directive = words[0].lower() if words else ""
        if directive in TOP_LEVEL:
            return TOP_LEVEL[directive]
        return "the rendered line %r" % (lines[number - 1].strip() if 0 < number <= len(lines) else "")
    name, arg = stack[0]
    inner = "".join(", <%s %s>" % (block, value) if value else ", <%s>" % block for block, value in stack[1:])
    if name == "source":
        return _source_origin(arg, model) + inner
    if name == "domain":
        if rel.endswith("isp-policies.conf"):
            where = ("powermta_domain_defaults" if arg == "*" else "powermta_isp_policies item %s" % arg.lstrip("$"))
        else:
            where = "powermta_bounce_mailbox (domain %s)" % arg
        return where + inner
    if name == "smtp-pattern-list":
        if arg == "generic-replies":
            return "powermta_generic_reply_patterns"
        return "powermta_isp_policies item %s (throttle_patterns/reply_patterns)" % arg[:-len("-replies")]
    if name in BLOCKS:
        variable, named = BLOCKS[name]
        return ("%s item %s" % (variable, arg) if named and arg else variable) + inner
    return "<%s %s>" % (name, arg) + inner


def _host_scope(templar, host, raw, defaults, role_vars, host_model):
    """The variables the role's templates see on ``host``: role defaults < inventory (and extra vars) < role
    vars, with this host's part of the fleet model as mailops_fleet."""
    scope = dict(defaults)
    scope.update(raw)
    scope["mailops_fleet"] = {"hosts": {host: host_model}}
    scope["inventory_hostname"] = host
    if "powermta_hostname" not in raw and "fqdn" not in (raw.get("ansible_facts") or {}):
        # No facts before any host is contacted: the name the render tool uses (only a name is checked here).
        scope["powermta_hostname"] = "%s.example.com" % host
    scope.update(role_vars)
    # The role's vars are views of the model: resolved once per host, not at every use in the templates.
    templar.available_variables = scope
    for name in role_vars:
        scope[name] = templar.template(role_vars[name])
    return scope


def render_tree(loader, templar, scope, root):
    """Render the role's files for one host below root, as lint.yml does; {rel: lines}."""
    templar.available_variables = scope
    host_templar = templar
    host_model = scope["mailops_fleet"]["hosts"][scope["inventory_hostname"]]
    files = list(host_templar.template(scope["__powermta_config_files"])) + list(host_model["warmup_files"])
    rendered = {}
    for entry in files:
        item = template_item(entry)
        source = os.path.join(TEMPLATES, item["src"])
        text = render_template(loader, host_templar, scope, item, source, [TEMPLATES], reuse=True)
        dest = os.path.join(root, item["dest"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w", encoding="utf-8") as handle:
            handle.write(text)
        rendered[item["dest"]] = text.splitlines()
    return rendered


def _lint_options(host_templar, scope):
    def read(name, fallback):
        try:
            return host_templar.template(scope.get(name, fallback))
        except AnsibleError:
            return fallback
    return (read("powermta_lint_fail_on", "error"), read("powermta_lint_extra_directives", []) or [],
            read("powermta_lint_unknown_directives", "error"))


_STATE = {}


def config_problems(loader, templar, hostvars, model, defaults):
    """One line per lint error (and warning, where the host's powermta_lint_fail_on is warning) of every host's
    rendered config, naming the host, the variable and item, the finding and its fix."""
    # One templar for every host: each template is compiled once (compile_once), then only rendered per host.
    # Serial on purpose: worker processes forked from Ansible's (threaded) worker can deadlock on a held lock.
    templar = compile_once(templar.copy_with_new_env(searchpath=[TEMPLATES, os.path.join(TEMPLATES, "etc", "pmta")]))
    work = tempfile.mkdtemp(prefix="mailops-preflight-")
    _STATE.update(loader=loader, templar=templar, hostvars=hostvars, model=model, defaults=defaults,
                  role_vars=_load_role_vars(), work=work)
    try:
        return [line for host in model["hosts"] for line in _host_problems(host)]
    finally:
        _STATE.clear()
        shutil.rmtree(work, ignore_errors=True)


def _host_problems(host):
    """The problem lines of one host's rendered and linted config."""
    templar = _STATE["templar"]
    host_model = _STATE["model"]["hosts"][host]
    raw = _STATE["hostvars"].raw_get(host)
    try:
        scope = _host_scope(templar, host, raw, _STATE["defaults"], _STATE["role_vars"], host_model)
    except AnsibleError as exc:
        return ["%s: the PowerMTA config cannot be rendered: %s" % (host, _first_line(exc))]
    root = os.path.join(_STATE["work"], host)
    try:
        rendered = render_tree(_STATE["loader"], templar, scope, root)
    except AnsibleError as exc:
        message = _first_line(exc)
        if "ansible_facts" in message:
            return []  # a setting read from facts: the role renders it on the host, after facts
        return ["%s: the PowerMTA config cannot be rendered: %s" % (host, message)]
    templar.available_variables = scope
    fail_on, extra, unknown = _lint_options(templar, scope)
    try:
        result = lint_path(os.path.join(root, "etc/pmta/config"), include_root=root,
                           extra_directives=extra, unknown_directives=unknown)
    except (OSError, ValueError) as exc:
        return ["%s: the PowerMTA config cannot be linted: %s" % (host, exc)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    findings = result.errors + (result.warnings if fail_on == "warning" else [])
    return [_line(host, finding, root, rendered, host_model) for finding in findings]


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _line(host, finding, root, rendered, host_model):
    path = str(finding.file)
    rel = os.path.relpath(path, root) if path.startswith(root + os.sep) else path.lstrip("/")
    lines = rendered.get(rel, [])
    where = origin(rel, lines, finding.line, host_model)
    text = lines[finding.line - 1].strip() if 0 < finding.line <= len(lines) else ""
    fix = finding.hint or "change the value so that PowerMTA accepts it"
    return "%s: %s: %r: %s [%s] (fix: %s; rendered /%s line %d)" % (
        host, where, text, finding.message, finding.code, fix, rel, finding.line)
