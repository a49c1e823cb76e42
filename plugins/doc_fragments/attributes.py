# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared module attributes, so every read-only module documents them the same way."""


class ModuleDocFragment:
    # Modules that only read (probes, linters, planners, DNS and DNSBL checks).
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: Nothing is changed, so there is nothing to diff.
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
    details: The module only reads; the same inputs give the same result.
"""
