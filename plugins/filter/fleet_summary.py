# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for playbooks/lab_summary.yml: its tables, decided in module_utils/_fleet/summary.py."""

from __future__ import annotations

import time

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._fleet import summary

HOST_KEYS = ("ansible_host", "ansible_local", "warmup_schedule", "__summary_units_state", "__summary_metrics",
             "__summary_acct")


def _plain_hosts(hostvars, hosts):
    """``{host: {key: value}}`` of the keys the tables read (hostvars are lazy: read each key once)."""
    out = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        out[host] = {key: variables[key] for key in HOST_KEYS if key in variables}
    return out


def _fleet_summary(model, vmtas):
    """``__summary_model | mailops.powermta.fleet_summary(__summary_fleet.vmtas)`` -> {ips, warming, pools}."""
    return summary.fleet_overview(model or {}, vmtas or [])


def _fleet_summary_hosts(hosts, hostvars):
    """``ansible_play_hosts_all | mailops.powermta.fleet_summary_hosts(hostvars)`` -> HOSTS rows."""
    return summary.host_rows(hosts, _plain_hosts(hostvars, hosts), time.time())


def _fleet_summary_dns(records, changes):
    """``records | mailops.powermta.fleet_summary_dns(dns_records check-mode changes)``."""
    return summary.dns_rows(records or [], changes or [])


def _fleet_summary_mail(hosts, hostvars, sinks=None, injected=None):
    """``ansible_play_hosts_all | mailops.powermta.fleet_summary_mail(hostvars, sinks, injected)``."""
    plain = _plain_hosts(hostvars, hosts)
    stats = [item for host in hosts for item in (plain[host].get("__summary_acct") or {}).get("stats") or []]
    return summary.mail_table(stats, sinks or {}, injected or {})


def _fleet_summary_mailbox(compare_json, login_json=None):
    """``__summary_mailbox.stdout | mailops.powermta.fleet_summary_mailbox(lookup('file', lab_mailbox_file))``."""
    try:
        return summary.mailbox_table(compare_json, login_json)
    except ValueError as exc:
        raise AnsibleFilterError("fleet_summary_mailbox: not JSON: %s" % exc) from exc


def _fleet_summary_warmup(hosts, hostvars, vmtas, isps):
    """``ansible_play_hosts_all | mailops.powermta.fleet_summary_warmup(hostvars, vmtas, isps)``."""
    return summary.warmup_rows(hosts, _plain_hosts(hostvars, hosts), vmtas or [], list(isps))


class FilterModule:
    def filters(self):
        return {
            "fleet_summary": _fleet_summary,
            "fleet_summary_hosts": _fleet_summary_hosts,
            "fleet_summary_dns": _fleet_summary_dns,
            "fleet_summary_mail": _fleet_summary_mail,
            "fleet_summary_mailbox": _fleet_summary_mailbox,
            "fleet_summary_warmup": _fleet_summary_warmup,
        }
