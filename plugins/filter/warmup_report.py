# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the warmup role (plugins/module_utils/_warmup/report.py decides)."""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._warmup import report as _warmup_report

PLAN_KEYS = ("__warmup_plan", "__warmup_warm_vmtas")


def _warmup_report_rows(hosts, hostvars):
    """``ansible_play_hosts | mailops.powermta.warmup_report_rows(hostvars)``."""
    plain = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        plain[host] = {key: variables[key] for key in PLAN_KEYS if key in variables}
    return _warmup_report.report_rows(list(hosts), plain)


def _warmup_report_steps(rows):
    """``__warmup_report | mailops.powermta.warmup_report_steps``."""
    return _warmup_report.report_steps(rows)


def _warming_vmtas(vmtas):
    """``warmup_vmtas | mailops.powermta.warming_vmtas``."""
    return _warmup_report.warming_vmtas(vmtas)


class FilterModule:
    def filters(self):
        return {"warmup_report_rows": _warmup_report_rows, "warmup_report_steps": _warmup_report_steps,
                "warming_vmtas": _warming_vmtas}
