# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's ISP groups (one source for PowerMTA's ISP policies and the warm-up's classification)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.isp_groups import IspGroupError, isp_policies


def _isp_groups(overrides, include_other=False):
    """``powermta_isp_policies | mailops.powermta.isp_groups``: shipped groups merged with overrides by name."""
    try:
        return isp_policies(overrides or [], include_other=include_other)
    except IspGroupError as exc:
        raise AnsibleFilterError("%s (fix the ISP policy overrides: powermta_isp_policies)" % exc) from exc


class FilterModule:
    def filters(self):
        return {"isp_groups": _isp_groups}
