# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the operator playbooks (incident.yml, drain_host.yml, retire_ip.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def name_list(value):
    """``-e x=a,b`` or a YAML list -> ``['a', 'b']``: trimmed, empty items dropped, order kept, no duplicates."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise AnsibleFilterError("name_list expects a comma-separated string or a list, got %s" % type(value).__name__)
    names = [str(item).strip() for item in items if item is not None]
    return list(dict.fromkeys(name for name in names if name))


class FilterModule:
    def filters(self):
        return {"name_list": name_list}
