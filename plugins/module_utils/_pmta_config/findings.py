# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lint findings and results.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).
"""

from __future__ import annotations

# Codes PowerMTA itself reports as "Parse error in line N of FILE: ...".
PARSE_ERROR_CODES = frozenset({"syntax", "unknown-directive", "unknown-block", "unbalanced-block"})

# Error codes of the collection's own policy: PowerMTA itself loads such a
# config (an open relay works, sadly). A test double that mimics PowerMTA
# should refuse only the other errors (see Finding.refused_by_pmta).
POLICY_CODES = frozenset({"open-relay", "http-access-open", "auth-without-tls"})


class Finding:
    """One problem at ``file``:``line``: ``message`` says what, ``hint`` how to fix it.

    ``code`` is a stable identifier of the check (``unknown-directive``,
    ``bad-value``, ``open-relay``, …); ``severity`` is ``error`` or ``warning``.
    """

    __slots__ = ("file", "line", "message", "hint", "code", "severity")

    def __init__(self, file, line, message, hint="", code="", severity="error"):
        self.file = file
        self.line = line
        self.message = message
        self.hint = hint
        self.code = code
        self.severity = severity

    @property
    def refused_by_pmta(self):
        """True for an error PowerMTA itself is expected to refuse (not a policy error)."""
        return self.severity == "error" and self.code not in POLICY_CODES

    def format_pmta(self):
        """The line as PowerMTA prints it, e.g.
        ``Error in line 11 of /etc/pmta/config: argument missing``."""
        if self.severity == "warning":
            kind = "Warning"
        elif self.code in PARSE_ERROR_CODES:
            kind = "Parse error"
        else:
            kind = "Error"
        return "%s in line %d of %s: %s" % (kind, self.line, self.file, self.message)

    def format(self):
        """``file:line: severity: message (hint)`` for humans and Ansible messages."""
        text = "%s:%d: %s: %s [%s]" % (self.file, self.line, self.severity, self.message, self.code)
        if self.hint:
            text += " (hint: %s)" % self.hint
        return text

    def to_dict(self):
        return {
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "hint": self.hint,
            "code": self.code,
        }

    def sort_key(self):
        return (self.file, self.line, self.code)

    def __eq__(self, other):
        return isinstance(other, Finding) and all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __hash__(self):
        return hash((self.file, self.line, self.message, self.code))

    def __repr__(self):
        return "Finding(%r, %d, %r, code=%r, severity=%r)" % (
            self.file,
            self.line,
            self.message,
            self.code,
            self.severity,
        )

    __str__ = format


class LintResult:
    """Findings of one lint run: ``errors`` and ``warnings`` (lists of Finding)."""

    __slots__ = ("errors", "warnings", "tree")

    def __init__(self, errors=None, warnings=None, tree=None):
        self.errors = errors if errors is not None else []
        self.warnings = warnings if warnings is not None else []
        self.tree = tree

    @property
    def ok(self):
        """True when there are no errors (warnings do not count)."""
        return not self.errors

    @property
    def findings(self):
        return sorted(self.errors + self.warnings, key=Finding.sort_key)

    def to_dict(self):
        return {
            "ok": self.ok,
            "errors": [f.to_dict() for f in self.errors],
            "warnings": [f.to_dict() for f in self.warnings],
        }

    @property
    def refused_by_pmta(self):
        """True for an error PowerMTA itself is expected to refuse (not a policy error)."""
        return self.severity == "error" and self.code not in POLICY_CODES

    def format_pmta(self):
        """All findings, one per line, PowerMTA style (errors first)."""
        return "\n".join(f.format_pmta() for f in self.errors + self.warnings)

    def __repr__(self):
        return "LintResult(%d errors, %d warnings)" % (len(self.errors), len(self.warnings))
