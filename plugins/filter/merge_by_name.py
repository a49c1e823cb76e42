# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for layered inventory data."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.layers import LayerError, merge_by_name


def _merge_by_name(first, *others, key="name"):
    """``defaults | mailops.powermta.merge_by_name(group, host)``."""
    try:
        return merge_by_name(first, *others, key=key)
    except LayerError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"merge_by_name": _merge_by_name}
