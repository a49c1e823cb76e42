# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator playbooks' names and the incident report (playbooks/incident.yml), decided here; the play prints.

PRIVATE to the collection: no compatibility promise outside it. Plain Python, no Ansible imports.
"""

from __future__ import annotations

# The selectors of playbooks/incident.yml (incident_isp, incident_ip, ...), in the report's order.
SELECTORS = ("isp", "ip", "pool", "vmta", "queue")
QUEUE_LINE = "  %-40s %6d rcpt %8.1f kB  %s"


def name_list(value):
    """``-e x=a,b`` or a YAML list -> ``['a', 'b']``: trimmed, empty items dropped, order kept, no duplicates."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise TypeError("name_list expects a comma-separated string or a list, got %s" % type(value).__name__)
    names = [str(item).strip() for item in items if item is not None]
    return list(dict.fromkeys(name for name in names if name))


def report_lines(action, selection, results, check_mode=False):
    """The incident report: a header, then per host (in ``results`` order) that acted on queues, its totals, one
    line per queue after the action and the pmta commands run.

    ``selection``: ``{isp, ip, pool, vmta, queue}``, each the value given (a name or a comma-separated list) or
    None when not given; ``results``: ``[(host, mailops.powermta.pmta_queue result or None)]``.
    """
    given = ["%s %s" % (kind, ",".join(name_list(selection[kind])))
             for kind in SELECTORS if (selection or {}).get(kind) is not None]
    lines = ["incident: %s %s" % (action, ", ".join(given))]
    for host, result in results:
        result = result or {}
        if not result.get("patterns"):
            continue  # not selected (incident_hosts), or nothing of it matched
        after = result["queues_after"] if "queues_after" in result else result.get("queues", [])
        lines.append("%s: %s; %d queue(s), %d recipient(s), %.1f kB%s" % (
            host, "changed" if result.get("changed") else "already so", len(after),
            sum(queue["rcpt"] for queue in after), sum(queue["kbytes"] for queue in after),
            " (check mode)" if check_mode else ""))
        for queue in after:
            lines.append(QUEUE_LINE % (queue["queue"], queue["rcpt"], queue["kbytes"],
                                       "paused" if queue["paused"] else "running"))
        lines += ["  ran: " + command for command in result.get("commands", [])]
    return lines
