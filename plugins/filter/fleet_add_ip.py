# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter for playbooks/add_ip.yml (plugins/module_utils/_fleet/add_ip.py decides)."""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.add_ip import add_ip_plan


def _fleet_add_ip(model, add_ip, play_hosts, require_warmup=True):
    """``mailops_fleet | mailops.powermta.fleet_add_ip(add_ip, ansible_play_hosts, add_ip_require_warmup)``."""
    return add_ip_plan(model or {}, add_ip, list(play_hosts), require_warmup)


class FilterModule:
    def filters(self):
        return {"fleet_add_ip": _fleet_add_ip}
