# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The warm-up step's report (roles/warmup/tasks/report.yml): its rows decided here, the templates print them.

PRIVATE to the collection: no compatibility promise outside it. Plain Python, no Ansible imports.
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.derived import is_warming

ROW_KEYS = ("stage", "stages", "daily_limit", "action", "reason")
PLAN_LINE = "%s %s %s: stage %d/%d, %d/d, %s: %s"


def warming_vmtas(vmtas):
    """The vMTAs that warm up (``_fleet_derived.is_warming``, the one definition), in list order."""
    return [vmta for vmta in vmtas or [] if is_warming(vmta)]


def _vmta_decisions(warm_vmtas, decisions_by_ip):
    """``(vmta, decision)`` per warming vMTA (list order) and ISP group of its IP (the plan's order)."""
    for vmta in warm_vmtas or []:
        for decision in (decisions_by_ip or {}).get(str(vmta["ip"])) or []:
            yield vmta, decision


def plan_lines(warm_vmtas, decisions_by_ip):
    """One line per warming vMTA and ISP group of one host's plan, as the warm-up step shows it:
    ``<vmta> <ip> <isp>: stage <n>/<stages>, <limit>/d, <action>: <reason>``."""
    return [PLAN_LINE % (vmta["name"], decision["ip"], decision["isp"], decision["stage"], decision["stages"],
                         decision["daily_limit"], decision["action"], decision["reason"])
            for vmta, decision in _vmta_decisions(warm_vmtas, decisions_by_ip)]


def report_steps(rows):
    """The plan times of the report's rows, each once, in row order (compared without case, as Jinja's unique)."""
    steps = {}
    for row in rows or []:
        step = row["step"]
        steps.setdefault(step.lower() if isinstance(step, str) else step, step)
    return list(steps.values())


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
        for vmta, decision in _vmta_decisions(variables.get("__warmup_warm_vmtas"), plan["decisions_by_ip"]):
            row = {"host": host, "vmta": vmta["name"], "ip": decision["ip"], "isp": decision["isp"]}
            row.update({key: decision[key] for key in ROW_KEYS})
            row["step"] = plan["state"]["updated_at"]
            rows.append(row)
    return rows
