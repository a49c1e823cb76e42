# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide inventory checks for the site preflight."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.checks import fleet_problems


def _fleet_problems(views):
    if not isinstance(views, dict):
        raise AnsibleFilterError("fleet_problems expects a dict of host -> fleet view, got %s" % type(views).__name__)
    return fleet_problems(views)


class FilterModule:
    def filters(self):
        return {"fleet_problems": _fleet_problems}
