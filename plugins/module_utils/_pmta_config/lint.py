# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PowerMTA config linter: schema, value, structure, cross-reference and security checks.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

Every finding carries a stable ``code``; docs/config-lint.md lists them.
"""

from __future__ import annotations

import difflib
import os

from . import schema
from .findings import Finding, LintResult
from .guide_rules import GuideRules
from .parser import Block, Directive, parse_path, parse_text
from .values import checker, is_ip_or_cidr
from .whole_config import WholeConfigChecks

_VMTA_REFERENCES = {
    # directive: (what it may name, hint)
    "cold-virtual-mta": ("vmta", "define <virtual-mta %s> or fix the name"),
    "backoff-reroute-to-virtual-mta": ("vmta-or-pool", "define <virtual-mta %s> (or a pool) or fix the name"),
    "reroute-to-virtual-mta": ("vmta-or-pool", "define <virtual-mta %s> (or a pool) or fix the name"),
    "invalid-virtual-mta-fallback": ("vmta-or-pool", "define <virtual-mta %s> (or a pool) or fix the name"),
    "default-virtual-mta": ("vmta-or-pool", "define <virtual-mta %s> or <virtual-mta-pool %s>, or fix the name"),
}
_NAMED_REFERENCES = {
    # directive: (block tag it names, split on commas)
    "smtp-pattern-list": ("smtp-pattern-list", False),
    "pattern-list": ("pattern-list", False),
    "rewrite-list": ("rewrite-list", False),
    "use-proxy": ("proxy", True),
    "source-group": ("source-group", False),
    "suppression-lists": ("address-list", True),
}
_SCOPE_WORDS = {"global": "the global level"}
_MISS = object()
# Directives whose values feed the cross-reference checks.
_FACT_NAMES = frozenset(
    {
        "virtual-mta",
        "source",
        "smtp-listener",
        "domain-macro",
        "header",
        "mail-from",
        "rcpt-to",
        "*",
        "smtp-source-host",
    }
    | set(_VMTA_REFERENCES)
    | set(_NAMED_REFERENCES)
)
_VALUE_CACHE_SIZE = 65536


def _where(scope):
    return _SCOPE_WORDS.get(scope, "<%s>" % scope)


UNKNOWN_DIRECTIVE_SEVERITIES = ("error", "warning")


class _Linter(WholeConfigChecks):
    def __init__(self, fragment, extra_directives=None, unknown_directives="error"):
        if unknown_directives not in UNKNOWN_DIRECTIVE_SEVERITIES:
            raise ValueError("unknown_directives must be error or warning, got %r" % (unknown_directives,))
        self.fragment = fragment
        self.unknown_severity = unknown_directives
        self.errors = []
        self.warnings = []
        self.directives = schema.with_extra_directives(extra_directives) if extra_directives else schema.DIRECTIVES
        self.all_names = sorted(set(self.directives) - {"/", "*"})

    # -- reporting ------------------------------------------------------
    def error(self, node, message, hint, code):
        self.errors.append(Finding(node.file, node.line, message, hint, code, "error"))

    def warning(self, node, message, hint, code):
        self.warnings.append(Finding(node.file, node.line, message, hint, code, "warning"))

    # -- main pass ------------------------------------------------------
    def run(self, root):
        for finding in root.findings:
            (self.errors if finding.severity == "error" else self.warnings).append(finding)
        self.vmtas = {}
        self.pools = {}
        self.defined = {}  # block tag -> {name: block}
        self.macros = {}
        self.references = []  # (kind, name, node, scope_block)
        self.source_hosts = {}  # ip -> [(vmta name, directive)]
        self.forward_pattern_lists = []
        self.value_cache = {}
        self.domain_blocks = []  # every <domain>, nested ones too, in file order
        self._visit(root, True)
        self._cross_checks(root)
        self._security(root)
        GuideRules(self, root).run()
        self.errors.sort(key=Finding.sort_key)
        self.warnings.sort(key=Finding.sort_key)
        return LintResult(self.errors, self.warnings, root)

    def _visit(self, parent, known_scope):
        """Check the directives of ``parent`` in file order, descending into blocks as they come."""
        value_cache = self.value_cache
        directives = self.directives
        blocks_spec = schema.BLOCKS
        fact_names = _FACT_NAMES
        scope = parent.tag
        seen = {}
        for node in parent.children:
            if node.__class__ is Block:
                self._block(node, parent, blocks_spec)
                self._visit(node, node.tag in blocks_spec)
                continue
            if not known_scope:
                continue  # inside an unknown block: already reported once
            name = node.name
            by_scope = directives.get(name)
            spec = by_scope.get(scope) if by_scope is not None else None
            if spec is None:
                self._not_allowed(node, scope)
                continue
            value = node.value
            if value and value != '""':
                # Generated configs repeat the same values thousands of times.
                key = (spec.type, value)
                problem = value_cache.get(key, _MISS)
                if problem is _MISS:
                    problem = checker(spec.type)(value)
                    if len(value_cache) < _VALUE_CACHE_SIZE:
                        value_cache[key] = problem
                if problem is not None:
                    self._bad_value(node, spec, problem)
            elif not value and spec.type != "-" and not spec.optional:
                hint = "%s needs a value (%s)" % (name, schema.cite(spec.section))
                self.error(node, "argument missing", hint, "bad-value")
            if spec.status != "current":
                self._status(node, spec)
            if not spec.repeatable:
                first = seen.get(name)
                if first is None:
                    seen[name] = node
                elif spec.only_once:
                    self.error(
                        node,
                        "%s given twice in %s (first at %s line %d)"
                        % (name, _where(scope), os.path.basename(first.file), first.line),
                        "%s may be given only once per block: list all values in one line (%s)"
                        % (name, schema.cite(spec.section)),
                        "only-once",
                    )
                else:
                    self.warning(
                        node,
                        "duplicate %s in %s (first at %s line %d)"
                        % (name, _where(scope), os.path.basename(first.file), first.line),
                        "keep one %s; the values do not add up" % name,
                        "duplicate",
                    )
            if name in fact_names:
                self._facts(node, parent)

    def _bad_value(self, node, spec, problem):
        message, hint = problem
        if node.name == "/":
            self.error(
                node,
                "bad bounce category pattern: %s" % message,
                "write /REGEX/ category, the whole pattern on one line (§10.8)",
                "bad-value",
            )
            return
        if hint:
            cite = schema.cite(spec.section)
            if cite not in hint:  # a checker may cite the § itself
                hint += " (%s)" % cite
        self.error(node, "%s: %s" % (node.name, message), hint, "bad-value")

    def _status(self, node, spec):
        if spec.status == "newer":
            self.warning(node, "%s is newer than the v5.0 User's Guide" % node.name, spec.note, "newer")
        elif spec.status == "deprecated":
            self.warning(
                node,
                "%s is deprecated (%s)" % (node.name, schema.cite(spec.section)),
                "use %s instead" % spec.note,
                "deprecated",
            )
        else:
            self.warning(node, "%s is not in the v5.0 User's Guide" % node.name, spec.note, "legacy")

    def _block(self, block, parent, blocks_spec):
        if block.tag == "domain":
            self.domain_blocks.append(block)
        spec = blocks_spec.get(block.tag)
        if spec is None:
            if block.tag in schema.KNOWN_BLOCK_MISTAKES:
                hint = "PowerMTA has no <%s>; use %s" % (block.tag, schema.KNOWN_BLOCK_MISTAKES[block.tag])
            else:
                close = difflib.get_close_matches(block.tag, list(blocks_spec), n=1, cutoff=0.7)
                hint = "did you mean <%s>?" % close[0] if close else "see the User's Guide §3.3 for valid blocks"
            self.error(block, "unknown block <%s>" % block.tag, hint, "unknown-block")
            return
        if block.tag in schema.NEWER_BLOCKS:
            self.warning(block, "<%s> is newer than the v5.0 User's Guide" % block.tag, schema.NEWER_NOTE, "newer")
        if block.tag in schema.UNCERTAIN_BLOCKS:
            self.warning(block, "<%s> is not well documented" % block.tag, schema.UNCERTAIN_BLOCKS[block.tag], "legacy")
        if parent.tag not in spec.parents:
            allowed = ", ".join(_where(p) for p in sorted(spec.parents))
            self.error(
                block,
                "<%s> is not allowed in %s" % (block.tag, _where(parent.tag)),
                "put it in %s (%s)" % (allowed, schema.cite(spec.section)),
                "wrong-scope",
            )
        arg = block.arg
        kind = spec.argument
        if block.tag == "pattern-list" and parent.tag == "pattern-list":
            self._nested_pattern_list(block, parent)
            return
        if kind == "none":
            if arg:
                self.error(block, "<%s> takes no argument" % block.tag, "write <%s>" % block.tag, "bad-value")
        elif kind != "optional" and not arg:
            hint = "<%s> needs an argument (%s)" % (block.tag, schema.cite(spec.section))
            self.error(block, "argument missing", hint, "bad-value")
        elif kind == "name" and len(arg.split()) > 1:
            self.error(block, "<%s> takes one name, got %r" % (block.tag, arg), "remove the spaces", "bad-value")
        elif kind == "listener":
            problem = checker("listener")(arg)
            if problem:
                self.error(block, "<%s>: %s" % (block.tag, problem[0]), problem[1], "bad-value")
        elif kind == "domain" and arg:
            self._domain_tag(block)
        if not arg or kind in ("none", "domain"):
            return
        if kind == "name" or kind == "source" or block.tag == "address-list":
            defined = self.defined.setdefault(block.tag, {})
            first = defined.get(arg)
            if first is not None and block.tag in ("virtual-mta", "virtual-mta-pool"):
                self.warning(
                    block,
                    "<%s %s> defined twice (first at %s line %d)"
                    % (block.tag, arg, os.path.basename(first.file), first.line),
                    "merge the two blocks",
                    "duplicate",
                )
            elif first is None:
                defined[arg] = block
        if block.tag == "virtual-mta":
            self.vmtas.setdefault(arg, block)
        elif block.tag == "virtual-mta-pool":
            self.pools.setdefault(arg, block)
        elif block.tag == "acct-file" and arg.startswith("|") and len(arg) == 1:
            self.error(block, "argument missing", "write <acct-file |/path/to/program args>", "bad-value")

    def _nested_pattern_list(self, block, parent):
        """A conditional entry's sub-list (§3.3.14): unnamed, right after ``DIRECTIVE /re/ <pattern-list>``."""
        index = parent.children.index(block)
        opener = parent.children[index - 1] if index else None
        if opener is None or opener.__class__ is Block or not opener.value.endswith("<pattern-list>"):
            self.error(
                block,
                "nested <pattern-list> without a condition",
                "open it at the end of an entry: mail-from /REGEX/ <pattern-list> (§3.3.14)",
                "nested-pattern-list",
            )
        elif block.arg:
            self.error(
                block,
                "a nested <pattern-list> takes no name",
                "name only top-level pattern lists; call another with call-to:NAME (§3.3.14.4)",
                "nested-pattern-list",
            )

    def _domain_tag(self, block):
        parts = block.arg.split()
        if len(parts) > 1:
            self.warning(
                block,
                "several domains in one <domain> tag is undocumented",
                "define domain-macro NAME %s and use <domain $NAME>" % ",".join(parts),
                "undocumented",
            )
        for part in parts:
            if "$" in part:
                macro = part.split("$", 1)[1].split(".", 1)[0]
                self.references.append(("macro", macro, block, None))

    def _not_allowed(self, node, scope):
        name = node.name
        if name == "/":
            self.error(
                node,
                "pattern line outside <bounce-category-patterns>",
                "put /regex/ category lines inside <bounce-category-patterns>",
                "wrong-scope",
            )
            return
        specs = self.directives.get(name)
        scopes = sorted(specs) if specs else []
        if scopes:
            places = ", ".join(_where(s) for s in scopes)
            section = specs[scopes[0]].section
            hint = "%s belongs in %s (%s)" % (name, places, schema.cite(section))
            if name == "include":
                hint = (
                    "include works only at the global level and in <source>, <domain>, <virtual-mta>, "
                    "<smtp-pattern-list> (§3.3.1.31)"
                )
            if name in schema.BLOCKS and schema.BLOCKS[name].parents & {scope}:
                hint += "; to define one here, write <%s %s> … </%s>" % (name, node.value, name)
            self.error(node, "%s is not allowed in %s" % (name, _where(scope)), hint, "wrong-scope")
            return
        if name in schema.BLOCKS:
            hint = "%s is a block: write <%s %s> … </%s>" % (name, name, node.value, name)
        elif name in schema.KNOWN_MISTAKES:
            hint = "%s does not exist in PowerMTA; use %s" % (name, schema.KNOWN_MISTAKES[name])
        else:
            close = difflib.get_close_matches(name, self.all_names, n=3, cutoff=0.75)
            in_scope = [c for c in close if scope in self.directives.get(c, ())]
            close = in_scope or close
            if close:
                hint = "did you mean %s?" % " or ".join(close)
            else:
                hint = "remove it; PowerMTA refuses directives it does not know (User's Guide §14 lists them all)"
        if self.unknown_severity == "warning":
            hint += (
                "; if your PowerMTA build accepts it, declare it (powermta_lint_extra_directives, "
                "the module's extra_directives, --extra-directive)"
            )
            self.warning(node, "unknown directive %s" % name, hint, "unknown-directive")
            return
        self.error(node, "unknown directive %s" % name, hint, "unknown-directive")

    # -- facts for cross-references ------------------------------------
    def _facts(self, node, parent):
        name = node.name
        value = node.value
        if not value or value == '""':
            return  # "" clears an inherited value: it names nothing
        if name == "virtual-mta" and parent.tag == "virtual-mta-pool":
            self.references.append(("vmta", value, node, parent))
        elif name in _VMTA_REFERENCES:
            first = value.split()[0]
            if name == "default-virtual-mta" and first == "by-smtp-source-ip":
                return
            self.references.append((_VMTA_REFERENCES[name][0], first, node, parent))
        elif name in _NAMED_REFERENCES:
            tag, is_list = _NAMED_REFERENCES[name]
            names = value.split(",") if is_list else [value.split()[0]]
            for item in names:
                if item.strip():
                    self.references.append((tag, item.strip(), node, parent))
            if name == "pattern-list" and parent.tag == "source":
                # §3.3.7.39: the pattern list must precede the <source> that uses it.
                if names[0] not in self.defined.get("pattern-list", ()):
                    self.forward_pattern_lists.append((names[0], node))
        elif name == "source" and parent.tag in ("smtp-user", "smtp-listener"):
            self.references.append(("source", value.split()[0], node, parent))
        elif name == "smtp-listener":
            for part in value.split()[1:]:
                if part.startswith("source="):
                    self.references.append(("source", part[7:], node, parent))
        elif name == "domain-macro":
            parts = value.split(None, 1)
            self.macros.setdefault(parts[0], node)
        elif name in ("header", "mail-from", "rcpt-to", "*") and parent.tag == "pattern-list":
            self._pattern_result(node, parent)
        elif name == "smtp-source-host" and parent.tag == "virtual-mta":
            address = value.split()[0]
            if is_ip_or_cidr(address):
                self.source_hosts.setdefault(address, []).append((parent.arg, node))

    def _pattern_result(self, node, parent):
        """References in a pattern-list RESULT: virtual-mta=NAME (among comma-separated settings), call-to:LIST."""
        value = node.value
        if node.name == "*":
            result = value
        else:
            end = value.rfind("/")
            result = value[end + 1 :].strip() if end > 0 else ""
        lowered = result.lower()
        if lowered.startswith("call-to:"):
            target = result.split(":", 1)[1].strip()
            if target:
                self.references.append(("pattern-list", target.split()[0], node, parent))
            return
        for item in result.split(","):
            key, _sep, target = item.strip().partition("=")
            if key.lower() == "virtual-mta" and target.strip():
                self.references.append(("vmta-or-pool", target.strip(), node, parent))

    # -- whole-config checks -------------------------------------------
    def _undefined(self, node, message, hint, code="undefined-reference"):
        if self.fragment or self.unfollowed:
            self.warning(node, message + " (not found in the files read)", hint, code)
        else:
            self.error(node, message, hint, code)

    def _cross_checks(self, root):
        self.unfollowed = bool(root.includes and root.includes.unfollowed) or any(
            finding.code == "include-missing" for finding in root.findings
        )
        defined = self.defined
        for kind, name, node, _scope in self.references:
            if kind == "vmta":
                if name not in self.vmtas:
                    hint = "define <virtual-mta %s> or fix the name" % name
                    if name in self.pools:
                        hint = "%s is a pool; pools cannot contain pools, list its vMTAs" % name
                    self._undefined(node, "virtual-mta %s is not defined" % name, hint)
            elif kind in ("vmta-or-pool",):
                if name not in self.vmtas and name not in self.pools:
                    label = "virtual MTA" if node.name != "default-virtual-mta" else "virtual MTA or pool"
                    hint_format = _VMTA_REFERENCES.get(node.name, ("", "define <virtual-mta %s> or fix the name"))[1]
                    self._undefined(
                        node,
                        "%s %s is not defined" % (label, name),
                        hint_format.replace("%s", name),
                    )
            elif kind == "macro":
                if name not in self.macros:
                    self._undefined(
                        node,
                        "domain macro $%s is not defined" % name,
                        "add domain-macro %s domain1,domain2 at the global level (§3.3.1.33.4)" % name,
                    )
            elif kind == "address-list":
                if name not in defined.get("address-list", ()) and name not in defined.get("suppression-list", ()):
                    self._undefined(
                        node, "address list %s is not defined" % name, "define <address-list %s> (§10.16)" % name
                    )
            elif name not in defined.get(kind, ()):
                self._undefined(node, "%s %s is not defined" % (kind, name), "define <%s %s>" % (kind, name))
        for name, node in self.forward_pattern_lists:
            later = defined.get("pattern-list", {}).get(name)
            if later is not None:
                # §3.3.7.39 says "must precede": an error, not a style warning.
                self.error(
                    node,
                    "pattern-list %s is used before it is defined (%s line %d)"
                    % (name, os.path.basename(later.file), later.line),
                    "move <pattern-list %s> above the <source> that uses it (§3.3.7.39)" % name,
                    "order",
                )
        self._macro_checks()
        self._cold_vmta_checks(root)
        self._pool_overlap()
        self._shared_source_ips()
        if not self.fragment and not self.unfollowed:
            self._unreachable_vmtas(root)


def _check_scope(scope):
    if scope not in schema.ALL_SCOPES:
        raise ValueError("scope must be global or a block tag such as virtual-mta, got %r" % (scope,))


def lint_tree(root, fragment=False, extra_directives=None, unknown_directives="error"):
    """Lint an already parsed tree (see ``parse_text``); a tree parsed with a block scope is a fragment.

    ``extra_directives``: directives the operator's PowerMTA build accepts beyond the schema, a list of
    ``{"name": NAME, "scopes": [global, domain, ...]}`` (see ``schema.with_extra_directives``).
    ``unknown_directives``: ``"error"`` (default) or ``"warning"`` for a directive nobody declared.
    ValueError for a bad declaration or severity.
    """
    linter = _Linter(fragment or root.tag != "global", extra_directives, unknown_directives)
    return linter.run(root)


def lint_text(
    text,
    path="/etc/pmta/config",
    include_root=None,
    fragment=False,
    scope="global",
    extra_directives=None,
    unknown_directives="error",
):
    """Lint config ``text`` as if read from ``path``; return a LintResult.

    ``include_root``: see ``parse_text`` (``None`` = do not follow includes;
    then references to names that may live in included files are warnings).
    ``fragment=True`` lints a file meant to be included (no whole-config
    checks such as run-as-root, undefined names only warn).
    ``scope`` lints a fragment as if it sat inside that block (e.g.
    ``"virtual-mta"`` for a file included in ``<virtual-mta>``); implies
    ``fragment``. ValueError for an unknown scope. ``extra_directives`` and
    ``unknown_directives``: see ``lint_tree``.
    """
    _check_scope(scope)
    root = parse_text(text, path, include_root, scope)
    return lint_tree(root, fragment, extra_directives, unknown_directives)


def lint_path(
    path, include_root="/", fragment=False, scope="global", extra_directives=None, unknown_directives="error"
):
    """Lint the config file at ``path``, following its includes (wildcards allowed)."""
    _check_scope(scope)
    return lint_tree(parse_path(path, include_root, scope), fragment, extra_directives, unknown_directives)


__all__ = ["Directive", "Block", "lint_text", "lint_path", "lint_tree"]
