# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The warm-up step's report (roles/warmup/tasks/report.yml): its rows decided here, the templates print them.

PRIVATE to the collection: no compatibility promise outside it. Plain Python, no Ansible imports.
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.derived import is_warming

ROW_KEYS = ("stage", "stages", "daily_limit", "action", "reason")


def warming_vmtas(vmtas):
    """The vMTAs that warm up (``_fleet_derived.is_warming``, the one definition), in list order."""
    return [vmta for vmta in vmtas or [] if is_warming(vmta)]


def report_rows(hosts, host_vars):
    """One row per host (sorted), warming vMTA and ISP group of each host's plan of this step.

    ``host_vars``: ``{host: {__warmup_plan, __warmup_warm_vmtas}}`` (a host without a plan gives no row);
    a row is ``{host, vmta, ip, isp, stage, stages, daily_limit, action, reason, step}``.
    """
    rows = []
    for host in sorted(hosts):
        variables = host_vars.get(host) or {}
        plan = variables.get("__warmup_plan")
        if not isinstance(plan, dict) or "decisions_by_ip" not in plan:
            continue
        for vmta in variables.get("__warmup_warm_vmtas") or []:
            for decision in plan["decisions_by_ip"].get(str(vmta["ip"])) or []:
                row = {"host": host, "vmta": vmta["name"], "ip": decision["ip"], "isp": decision["isp"]}
                row.update({key: decision[key] for key in ROW_KEYS})
                row["step"] = plan["state"]["updated_at"]
                rows.append(row)
    return rows
