# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling roles' record of what a run changed or would change (module_utils/_rollout/changes.py):
{step: registered result or flag} -> the names of the steps that changed, or in check mode would."""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._rollout.changes import changed_steps


class FilterModule:
    def filters(self):
        return {"rollout_changes": changed_steps}
