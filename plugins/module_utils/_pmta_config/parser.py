# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PowerMTA config file parser: blocks, directives, comments, includes.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only and relative imports only: the PowerMTA test double
copies this package into its .deb and imports it standalone.

Grammar (User's Guide v5.0 §3.1): one ``directive value`` per line,
``<tag arg>`` … ``</tag>`` blocks, ``#`` starts a comment that runs to the end
of the line (values cannot contain ``#``), ``include FILE`` (wildcards allowed)
pulls another file in at the point where it appears.

Inside ``<pattern-list>`` (§3.3.14) two more forms exist: a conditional entry
``mail-from /re/ <pattern-list>`` opens a nested, unnamed ``<pattern-list>``
block (parsed as the directive, value ``/re/ <pattern-list>``, followed by a
child Block with tag ``pattern-list`` and an empty argument, closed by the usual
``</pattern-list>``), and a fall-through line ``* RESULT`` (a Directive named
``*``).
"""

from __future__ import annotations

import glob
import os
import re

from . import schema
from .findings import Finding

# Tag names and directive names: letters, digits, "-", "_" and "." (tlsv1.2).
_OPEN_TAG = re.compile(r"<\s*([A-Za-z][\w.-]*)(?:\s+([^>]*?))?\s*>")
_CLOSE_TAG = re.compile(r"</\s*([A-Za-z][\w.-]*)(\s+[^>]*)?\s*>")
_NAME = re.compile(r"[A-Za-z][\w.-]*\Z")
_WILDCARD = re.compile(r"[*?\[]")

# Blocks inside which PowerMTA accepts ``include`` (§3.3.1.31, §3.3.7.70,
# §3.3.10.93, §3.3.12.10, §3.3.15.1), besides the global level.
INCLUDE_SCOPES = frozenset({"global", "source", "domain", "virtual-mta", "smtp-pattern-list"})

MAX_INCLUDE_DEPTH = 16

# "mail-from /re/ <pattern-list>": a conditional entry opening a nested list (§3.3.14).
NESTED_LIST_OPENER = "<pattern-list>"


class Directive:
    """One ``name value`` line."""

    __slots__ = ("name", "value", "file", "line")

    def __init__(self, name, value, file, line):
        self.name = name
        self.value = value
        self.file = file
        self.line = line

    @property
    def args(self):
        return self.value.split()

    def __repr__(self):
        return "Directive(%r, %r, %s:%d)" % (self.name, self.value, self.file, self.line)


class Block:
    """A ``<tag arg>`` … ``</tag>`` block; the root block has tag ``global``.

    ``children`` holds Directive and Block objects in file order, with the
    contents of included files spliced in where the ``include`` stood.
    """

    __slots__ = ("tag", "arg", "file", "line", "end_line", "children", "parent", "findings", "includes")

    def __init__(self, tag, arg, file, line, parent=None):
        self.tag = tag
        self.arg = arg
        self.file = file
        self.line = line
        self.end_line = None
        self.children = []
        self.parent = parent
        self.findings = None  # root only: parse findings
        self.includes = None  # root only: include bookkeeping

    def directives(self, name=None):
        return [c for c in self.children if isinstance(c, Directive) and (name is None or c.name == name)]

    def blocks(self, tag=None):
        return [c for c in self.children if isinstance(c, Block) and (tag is None or c.tag == tag)]

    def walk(self):
        """Yield (node, enclosing block) for every node below this block, depth first."""
        stack = [(self, iter(self.children))]
        while stack:
            block, children = stack[-1]
            for child in children:
                yield child, block
                if isinstance(child, Block):
                    stack.append((child, iter(child.children)))
                    break
            else:
                stack.pop()

    def to_dict(self):
        out = {"tag": self.tag, "arg": self.arg, "file": self.file, "line": self.line, "children": []}
        for child in self.children:
            if isinstance(child, Block):
                out["children"].append(child.to_dict())
            else:
                out["children"].append(
                    {"directive": child.name, "value": child.value, "file": child.file, "line": child.line}
                )
        return out

    def __repr__(self):
        return "Block(%r, %r, %s:%d, %d children)" % (self.tag, self.arg, self.file, self.line, len(self.children))


class IncludeInfo:
    """What happened to ``include`` lines, for the linter's cross-reference checks."""

    __slots__ = ("followed", "unfollowed")

    def __init__(self):
        self.followed = []  # resolved file paths that were read
        self.unfollowed = []  # (file, line, target) not read: URL, or no include_root


# Directives whose value holds a /REGEX/ (§3.3.14, §3.3.15, §10.8; "/" is a bounce-category line).
_REGEX_NAMES = frozenset({"reply", "mail-from", "rcpt-to", "header", "/"})
# A /REGEX/ wrapped over more lines than this is not joined any further.
_MAX_WRAPPED_LINES = 5

# Blocks whose lines need more than the "known name, value" fast path.
_SLOW_PATH_BLOCKS = frozenset({"bounce-category-patterns", "pattern-list"})


def _opened_regex(directive):
    """[directive, line, line] when ``directive`` is a /REGEX/ directive whose pattern does not end on its line."""
    if directive.__class__ is not Directive or directive.name not in _REGEX_NAMES:
        return None
    value = directive.value
    if directive.name == "header":
        value = value.split(None, 1)[1] if " " in value else ""
    if value[:1] == "/" and value.rfind("/") == 0 and value[-1:] != ">":
        return [directive, directive.line, directive.line]
    return None


def _continues(line, block):
    """True when ``line`` reads as the rest of a wrapped /REGEX/ rather than as a directive of ``block``."""
    if block.tag == "bounce-category-patterns":
        return line[0] != "/"
    return line[0] == "/" or line.split(None, 1)[0].lower() not in schema.DIRECTIVES


def _strip_comment(line):
    hash_at = line.find("#")
    if hash_at >= 0:
        line = line[:hash_at]
    return line.strip()


class _Parser:
    def __init__(self, include_root):
        self.include_root = include_root
        self.findings = []
        self.includes = IncludeInfo()
        self.fast_names = {}  # raw directive name -> lower case, for names already validated
        self.fast_tags = {}  # raw tag name -> lower case, for tags already parsed by the full path

    def error(self, file, line, message, hint="", code="syntax"):
        self.findings.append(Finding(file, line, message, hint, code, "error"))

    def warning(self, file, line, message, hint="", code="syntax"):
        self.findings.append(Finding(file, line, message, hint, code, "warning"))

    def parse(self, text, path, scope="global"):
        root = Block(scope, "", path, 0)
        if self.include_root in (None, "/"):
            real = os.path.abspath(path)
        else:
            real = os.path.abspath(os.path.join(self.include_root, path.lstrip("/")))
        self._parse_into(text, path, root, (real,))
        root.findings = self.findings
        root.includes = self.includes
        return root

    def _parse_into(self, text, path, block, chain):
        """Parse ``text`` (the file ``path``) into ``block``; return the innermost open block."""
        start_block = block
        fast_names = self.fast_names
        fast_tags = self.fast_tags
        if text.startswith("\ufeff"):
            text = text[1:]  # a UTF-8 byte order mark left by some editors
        wrapped = None  # [directive, first line, last line] of a /REGEX/ still open at the end of its line
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line[0] == "#":
                continue
            if "#" in line:
                line = _strip_comment(line)
                if not line:
                    continue
            if wrapped is not None:
                if line[0] != "<" and _continues(line, block) and wrapped[2] - wrapped[1] < _MAX_WRAPPED_LINES:
                    wrapped[0].value += " " + line
                    wrapped[2] = number
                    if "/" in line:
                        self._wrapped(wrapped)
                        wrapped = None
                    continue
                self._wrapped(wrapped)
                wrapped = None
            if line[0] == "<":
                # Fast paths for a lone well-formed tag with a tag name seen before.
                if line[-1] == ">" and line.count(">") == 1 and line.count("<") == 1:
                    if line[1] == "/":
                        tag = fast_tags.get(line[2:-1].strip())
                        if tag is not None and tag == block.tag and block is not start_block:
                            block.end_line = number
                            block = block.parent
                            continue
                    else:
                        head, _sep, arg = line[1:-1].strip().partition(" ")
                        tag = fast_tags.get(head)
                        if tag is not None:
                            new = Block(tag, arg.strip(), path, number, block)
                            block.children.append(new)
                            block = new
                            continue
                block = self._tag_line(line, path, number, block, start_block, chain)
                continue
            # Fast path for the common case: a known-good name seen before.
            parts = line.split(None, 1)
            name = fast_names.get(parts[0])
            if name is None or block.tag in _SLOW_PATH_BLOCKS:
                target, count = block, len(block.children)
                block = self._directive(line, path, number, block, chain)
                if len(target.children) > count:
                    wrapped = _opened_regex(target.children[count])
            else:
                directive = Directive(name, parts[1] if len(parts) > 1 else "", path, number)
                block.children.append(directive)
                if name in _REGEX_NAMES:
                    wrapped = _opened_regex(directive)
        if wrapped is not None:
            self._wrapped(wrapped)
        if block is not start_block:
            open_blocks = []
            while block is not start_block:
                open_blocks.append(block)
                block = block.parent
            for unclosed in open_blocks:
                self.error(
                    unclosed.file,
                    unclosed.line,
                    "<%s> is never closed" % unclosed.tag,
                    "add </%s> at the end of the block%s"
                    % (unclosed.tag, " (blocks must close in the file that opens them)" if len(chain) > 1 else ""),
                    "unbalanced-block",
                )
        return block

    def _wrapped(self, wrapped):
        """Report a /REGEX/ continued on the next lines once (the joined directive is checked as one)."""
        directive, first, last = wrapped
        if last > first:
            self.error(
                directive.file,
                first,
                "%s: the /REGEX/ is wrapped over lines %d-%d"
                % ("bounce category pattern" if directive.name == "/" else directive.name, first, last),
                "PowerMTA reads one directive per line (§3.1): put the whole pattern and what follows it on "
                "line %d" % first,
            )

    def _tag_line(self, line, path, number, block, start_block, chain):
        rest = line
        first = True
        while rest:
            if rest.startswith("</"):
                match = _CLOSE_TAG.match(rest)
                if not match:
                    self.error(path, number, "malformed closing tag %r" % rest, "write it as </tag>")
                    return block
                tag = match.group(1).lower()
                self.fast_tags[match.group(1)] = tag
                closing_arg = (match.group(2) or "").strip()
                if block is start_block:
                    self.error(
                        path,
                        number,
                        "</%s> without a matching <%s>" % (tag, tag),
                        "remove it or add the opening <%s ...> above" % tag,
                        "unbalanced-block",
                    )
                elif block.tag != tag:
                    self.error(
                        path,
                        number,
                        "</%s> closes <%s> opened at line %d" % (tag, block.tag, block.line),
                        "close the inner block with </%s> first" % block.tag,
                        "unbalanced-block",
                    )
                    # Recover: close up to a matching open block, if any.
                    probe = block
                    while probe is not start_block and probe.tag != tag:
                        probe = probe.parent
                    if probe is not start_block:
                        probe.end_line = number
                        block = probe.parent
                else:
                    # §3.3.19's example repeats the name: </domain-key-list NAME>. Only another name is suspect.
                    if closing_arg and closing_arg != block.arg:
                        self.warning(
                            path,
                            number,
                            "</%s %s> closes <%s %s>" % (tag, closing_arg, tag, block.arg),
                            "write just </%s>, or repeat the block's own name" % tag,
                            "syntax",
                        )
                    block.end_line = number
                    block = block.parent
                rest = rest[match.end() :].strip()
            elif rest.startswith("<"):
                match = _OPEN_TAG.match(rest)
                if not match:
                    self.error(
                        path, number, "malformed block tag %r" % rest, "write it as <tag argument> on its own line"
                    )
                    return block
                self.fast_tags[match.group(1)] = match.group(1).lower()
                new = Block(match.group(1).lower(), (match.group(2) or "").strip(), path, number, block)
                block.children.append(new)
                block = new
                rest = rest[match.end() :].strip()
            else:
                # Text after a tag on the same line: a directive, maybe followed by a closing tag.
                close_at = rest.find("</")
                directive_text = rest if close_at < 0 else rest[:close_at].strip()
                if directive_text:
                    block = self._directive(directive_text, path, number, block, chain)
                rest = "" if close_at < 0 else rest[close_at:]
            if rest and first:
                first = False
                self.warning(
                    path,
                    number,
                    "several tags or directives on one line",
                    "put each tag and directive on its own line, as every User's Guide example does",
                    "one-line-block",
                )
        return block

    def _directive(self, line, path, number, block, chain):
        """Add the directive on ``line`` to ``block``; return the block later lines go into."""
        parts = line.split(None, 1)
        name = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if name[0] == "/" or block.tag == "bounce-category-patterns":
            # Pattern lines such as "/regex/ category" in <bounce-category-patterns>.
            block.children.append(Directive("/", line, path, number))
            return block
        if block.tag == "pattern-list":
            if name == "*":
                block.children.append(Directive("*", value, path, number))
                return block
            if value[-1:] == ">" and value.lower().replace(" ", "").endswith(NESTED_LIST_OPENER):
                lowered = name.lower()
                cut = value.lower().rfind("<")
                condition = value[:cut].strip()
                block.children.append(Directive(lowered, condition + " " + NESTED_LIST_OPENER, path, number))
                nested = Block("pattern-list", "", path, number, block)
                block.children.append(nested)
                return nested
        if not _NAME.match(name):
            shown = name if len(name) <= 40 else name[:37] + "..."
            self.error(
                path,
                number,
                "line does not start with a directive name: %r" % shown,
                "a directive and its whole value must be on one line (no continuation lines); "
                "join it with the line above or remove it",
            )
            return block
        lowered = name.lower()
        if lowered != "include":
            self.fast_names[name] = lowered
        name = lowered
        if name == "include" and block.tag in INCLUDE_SCOPES:
            block.children.append(Directive(name, value, path, number))
            self._include(value, path, number, block, chain)
            return block
        block.children.append(Directive(name, value, path, number))
        return block

    def _include(self, target, path, number, block, chain):
        if not target:
            return  # reported as a missing argument by the linter
        if "://" in target or self.include_root is None:
            self.includes.unfollowed.append((path, number, target))
            return
        if self.include_root == "/":
            pattern = os.path.join(os.path.dirname(os.path.abspath(path)), target)
        elif os.path.isabs(target):
            pattern = os.path.join(self.include_root, target.lstrip("/"))
        else:
            pattern = os.path.join(self.include_root, os.path.dirname(path).lstrip("/"), target)
        if _WILDCARD.search(target):
            files = sorted(glob.glob(pattern))
        else:
            files = [pattern] if os.path.exists(pattern) else []
            if not files:
                self.error(
                    path,
                    number,
                    "included file %s does not exist" % target,
                    "create it or remove the include (a wildcard pattern may match no file)",
                    "include-missing",
                )
                return
        if len(chain) >= MAX_INCLUDE_DEPTH:
            self.error(path, number, "includes nested too deeply", "look for an include loop", "include-loop")
            return
        for file in files:
            real = os.path.abspath(file)
            if real in chain:
                self.error(
                    path, number, "include loop: %s includes itself" % target, "remove the include", "include-loop"
                )
                continue
            if os.path.isdir(file):
                continue
            try:
                with open(file, encoding="utf-8", errors="replace") as handle:
                    text = handle.read()
            except OSError as exc:
                message = "cannot read included file %s: %s" % (file, exc.strerror)
                self.error(path, number, message, "check its permissions", "include-missing")
                continue
            shown = self._shown_path(file)
            self.includes.followed.append(shown)
            self._parse_into(text, shown, block, chain + (real,))

    def _shown_path(self, file):
        """The path PowerMTA would print: the include_root prefix removed."""
        root = self.include_root
        if root and root != "/":
            rel = os.path.relpath(file, root)
            if not rel.startswith(".."):
                return "/" + rel
        return file


def parse_text(text, path="/etc/pmta/config", include_root=None, scope="global"):
    """Parse config ``text`` read from ``path``; return the root Block.

    ``include_root``: where included files are looked up. ``None`` does not
    follow includes (they are listed in ``root.includes.unfollowed``); ``"/"``
    reads them from the real file system; any other directory is used like a
    chroot (``include /etc/pmta/conf.d/*.conf`` reads
    ``<include_root>/etc/pmta/conf.d/*.conf``), for configs rendered into a
    staging tree. Relative include paths resolve against ``path``'s directory.
    ``scope``: the block the text sits in, for a fragment included inside a
    block (``"virtual-mta"`` for a file included in ``<virtual-mta>``); the
    root Block then has that tag.
    Parse problems are in ``root.findings``.
    """
    return _Parser(include_root).parse(text, path, scope)


def parse_path(path, include_root="/", scope="global"):
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    if include_root not in (None, "/"):
        rel = os.path.relpath(os.path.abspath(path), include_root)
        shown = path if rel.startswith("..") else "/" + rel
    else:
        shown = path
    return parse_text(text, shown, include_root, scope)
