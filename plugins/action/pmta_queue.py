# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of pmta_queue: fleet names (isp, vmta, pool, ip) -> this host's queue patterns.

The resolution is a pure function over the fleet model (``_pmta_queue.resolve_selection``), run here so the
hosts get only their patterns, never the fleet model; a host with no selected queue is not contacted.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._operations.queue import QueueError, resolve_selection
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import plain

NAMES = ("isp", "vmta", "pool", "ip")


def _slim(fleet, host):
    """What the resolution reads: the fleet's vMTA names, IPs and pools, and this host's vMTAs and ISP groups
    (plain copies of only these, not of the whole model with its secrets)."""
    model = (fleet.get("hosts") or {}).get(host) or {}
    return {
        "vmtas": [{"name": plain(v.get("name")), "ip": plain(v.get("ip")), "pool": plain(v.get("pool"))}
                  for v in fleet.get("vmtas") or []],
        "hosts": {host: {"vmtas": plain(model.get("vmtas") or []),
                         "isp_policies": plain(model.get("isp_policies") or [])}} if model else {},
    }


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = dict(self._task.args)
        selection = {name: args.pop(name, None) for name in NAMES}
        fleet = args.pop("fleet", None)
        mx_rollup = args.pop("mx_rollup", None)
        host = task_vars.get("inventory_hostname")
        queue = args.get("queue") or []
        if isinstance(queue, str):
            queue = [queue]
        if any(selection.values()):
            if fleet is None:
                fleet = task_vars.get("mailops_fleet")
            if not isinstance(fleet, dict) or "hosts" not in fleet:
                raise AnsibleActionFail("pmta_queue on %s: isp/vmta/pool/ip need the fleet model: run "
                                        "mailops.powermta.fleet_model first (register: mailops_fleet) or pass "
                                        "fleet" % host)
            if mx_rollup is None:
                mx_rollup = self._templar.template(task_vars.get("powermta_mx_rollup", True))
            try:
                by_host = resolve_selection(_slim(fleet, host), queue=queue, mx_rollup=bool(mx_rollup), only=host,
                                            **{k: plain(v) for k, v in selection.items()})
            except QueueError as exc:
                raise AnsibleActionFail("pmta_queue on %s: %s" % (host, exc)) from exc
            queue = by_host.get(host, [])
            if not queue:
                result.update(changed=False, patterns=[], commands=[], queues=[], outputs=[],
                              msg="no queue of %s is selected (none of its vMTAs is named)" % host)
                return result
        args["queue"] = queue
        result.update(self._execute_module(module_name="mailops.powermta.pmta_queue", module_args=args,
                                           task_vars=task_vars))
        return result
