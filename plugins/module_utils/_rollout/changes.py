# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which steps of a role changed a host, or in check mode would change it.

The rolling playbooks (playbooks/host_tuning.yml, playbooks/powermta.yml) first run their role in check mode
on every host at once, then roll out, canary first, only the hosts where a step would change something: a
no-op run then costs one parallel pass instead of one pass per batch. A step counts as a change when its
registered result is changed, or when check mode kept it from running (a module without check mode, or a
command: Ansible skips those with a message naming check mode), since the real run would then run it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# The messages Ansible gives a result it skipped because of check mode (ansible.builtin.command, modules
# without check mode support, action plugins without it); a skip for a false `when` has none of them.
CHECK_MODE_SKIPS = ("not in check mode", "does not support check mode")


def would_change(result) -> bool:
    """True when one registered task result (a loop's included) changed or was only skipped for check mode."""
    if isinstance(result, bool):
        return result  # a decision the role made itself (e.g. reload or restart), passed as a flag
    if not isinstance(result, Mapping):
        return False
    if result.get("changed"):
        return True
    if result.get("skipped") and any(text in str(result.get("msg", "")) for text in CHECK_MODE_SKIPS):
        return True
    return any(would_change(item) for item in result.get("results") or [] if isinstance(item, Mapping))


def changed_steps(results: Mapping) -> list[str]:
    """The names of the steps, {name: registered result or flag}, that changed or would change, sorted."""
    if not isinstance(results, Mapping):
        kind = "a string" if isinstance(results, str) else "a list" if isinstance(results, Sequence) else "%s" % (
            type(results).__name__)
        raise TypeError("rollout_changes expects a mapping of step name to registered result, got %s" % kind)
    return sorted(str(name) for name, result in results.items() if would_change(result))
