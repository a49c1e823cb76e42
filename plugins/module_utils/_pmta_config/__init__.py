# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PowerMTA config grammar, directive schema and linter.

PRIVATE to the collection: no compatibility promise outside it.
Standard library and relative imports only: the PowerMTA test double copies
this package into its .deb and imports it standalone.

Stable API (used by the powermta role, the pmta_config_lint module, the CLI
and the test double):

- ``lint_text(text, path="/etc/pmta/config", include_root=None, fragment=False, scope="global",
  extra_directives=None, unknown_directives="error") -> LintResult``
- ``lint_path(path, ...) -> LintResult`` (follows ``include``, wildcards allowed; same keywords)
- ``LintResult``: ``.errors``/``.warnings`` (lists of ``Finding``), ``.ok``, ``.to_dict()``
- ``Finding(file, line, message, hint, code)`` with ``.format_pmta()`` →
  ``Error in line 11 of /etc/pmta/config: argument missing``
- ``parse_text(text, path, include_root=None) -> Block`` (the block tree with line numbers; a conditional
  pattern-list entry is followed by a child Block ``pattern-list`` with an empty argument, a ``* RESULT``
  line is a Directive named ``*``)
- ``Finding.refused_by_pmta``: False for the collection's policy errors
  (open relay, wide admin access) that PowerMTA itself would load
"""

from __future__ import annotations

from . import schema
from .findings import POLICY_CODES, Finding, LintResult
from .lint import lint_path, lint_text, lint_tree
from .parser import Block, Directive, parse_path, parse_text

__all__ = [
    "Block",
    "Directive",
    "Finding",
    "POLICY_CODES",
    "LintResult",
    "lint_path",
    "lint_text",
    "lint_tree",
    "parse_path",
    "parse_text",
    "schema",
]
