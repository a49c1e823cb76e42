# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the operator playbooks (incident.yml, drain_host.yml, retire_ip.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._operations import incident


def name_list(value):
    """``-e x=a,b`` or a YAML list -> ``['a', 'b']``: trimmed, empty items dropped, order kept, no duplicates."""
    try:
        return incident.name_list(value)
    except TypeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"name_list": name_list}
