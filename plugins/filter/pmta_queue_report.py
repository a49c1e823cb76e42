# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The incident report of playbooks/incident.yml (plugins/module_utils/_operations/incident.py decides)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._operations import incident


def pmta_queue_report(hosts, hostvars, action, selection, check_mode=False, result_var="incident_result"):
    """``ansible_play_hosts_all | mailops.powermta.pmta_queue_report(hostvars, action, selection, check_mode)``."""
    results = []
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        results.append((host, variables[result_var] if result_var in variables else None))
    try:
        return incident.report_lines(action, selection, results, check_mode)
    except TypeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"pmta_queue_report": pmta_queue_report}
