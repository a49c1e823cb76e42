# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling roles' record of what a run changed or would change (module_utils/_rollout/changes.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._rollout import changes


def rollout_changes(value):
    """{step: registered result or flag} -> the names of the steps that changed, or in check mode would."""
    try:
        return changes.changed_steps(value)
    except TypeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"rollout_changes": rollout_changes}
