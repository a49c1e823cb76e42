# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tables of playbooks/lab_summary.yml, decided here; its templates only print them.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. Inputs are the fleet model (``mailops.powermta.fleet_model``), the
``dns_mail_fleet`` view of it, and what the play read from each host (one dict of variables per host).
"""

from __future__ import annotations

import json

from .derived import is_warming

DEFAULT_ISPS = ("gmail", "yahoo", "microsoft", "apple", "comcast", "other")
UNITS_UNKNOWN = "?"
COUNTERS = ("delivered", "deferred", "bounced", "complaints")


def as_count(value):
    """A counter as Jinja's ``int`` filter reads it (a number, a numeric string, else 0)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def fleet_overview(model, vmtas):
    """``{ips, warming, pools}``: the IPS and POOLS tables and the headline counts.

    ``ips``: one row per vMTA (``vmtas`` of ``dns_mail_fleet``, each with its ``inventory_host``), ``warmup``
    printed as yes or -. ``pools``: every pool of the model's hosts, once each (first host's item wins), with
    the vMTAs of the whole fleet in it.
    """
    ips = [{"ip": vmta.get("ip"), "name": vmta["name"], "host": vmta.get("inventory_host"),
            "pool": vmta.get("pool", "-"), "hostname": vmta.get("hostname", "-"),
            "warmup": "yes" if is_warming(vmta) else "-"} for vmta in vmtas]
    pools, seen = [], set()
    for host in (model.get("hosts") or {}).values():
        for pool in host.get("pools") or []:
            if pool["name"] in seen:
                continue
            seen.add(pool["name"])
            members = [vmta["name"] for vmta in vmtas if vmta.get("pool") == pool["name"]]
            pools.append({"name": pool["name"], "traffic": pool.get("traffic", "-"),
                          "region": pool.get("region", "-"), "vmtas": ", ".join(members) or "(none)"})
    return {"ips": ips, "warming": sum(1 for vmta in vmtas if is_warming(vmta)), "pools": pools}


def host_rows(hosts, host_vars, now):
    """The HOSTS table: ``[{host, address, units: [3 states], metrics}]``.

    ``host_vars``: ``{host: {ansible_host, __summary_units_state, __summary_metrics}}``; ``now``: epoch seconds.
    """
    rows = []
    for host in hosts:
        variables = host_vars.get(host) or {}
        units = list((variables.get("__summary_units_state") or {}).get("stdout_lines") or [])
        units += [UNITS_UNKNOWN] * 3
        metrics = (variables.get("__summary_metrics") or {}).get("stat") or {}
        age = "%d s old" % int(now - metrics["mtime"]) if metrics.get("exists") else "missing"
        rows.append({"host": host, "address": variables.get("ansible_host", host), "units": units[:3],
                     "metrics": age})
    return rows


def dns_rows(records, changes):
    """``{rows, wanted, as_wanted}``: each record the fleet wants, ``published`` or ``DIFFERS`` on the server.

    ``changes``: what ``mailops.powermta.dns_records`` in check mode would change (``[{name, type}]``).
    """
    differing = ["%s %s" % (change["name"], change["type"]) for change in changes]
    rows = []
    for record in records:
        name = record["name"][:-1] if record["name"].endswith(".") else record["name"]
        state = "DIFFERS" if "%s. %s" % (name, record["type"]) in differing else "published"
        rows.append({"name": name, "type": record["type"], "state": state, "values": list(record["values"])})
    return {"rows": rows, "wanted": len(rows), "as_wanted": len(rows) - len(differing)}


def mail_table(acct_stats, sinks, injected):
    """The MAIL table: accounting per ISP group x IP beside the lab's ISP sinks.

    ``acct_stats``: every host's ``pmta_acct_stats`` rows (``{isp, ip, delivered, deferred, bounced,
    complaints}``), summed per ISP group and IP. ``sinks``: ``{isp: {ip: {accepted, deferred, rejected}}}``;
    an IP the sinks saw but no accounting file has is listed when the campaign injected through it
    (``injected``: ``{ip: {isp: count}}``). A row agrees when delivered = accepted and bounced = rejected.
    Returns ``{rows, agree, differ, sinks}``, rows sorted by ISP group then IP.
    """
    totals = {}
    for item in acct_stats:
        key = "%s %s" % (item["isp"], item["ip"])
        row = totals.setdefault(key, dict({"isp": item["isp"], "ip": item["ip"]}, **dict.fromkeys(COUNTERS, 0)))
        for counter in COUNTERS:
            row[counter] += as_count(item.get(counter))
    keys = list(totals)
    for isp, per_ip in sinks.items():
        for ip in per_ip:
            key = "%s %s" % (isp, ip)
            if key not in keys and ip in injected:
                keys.append(key)
    rows, agree, differ = [], 0, 0
    for key in sorted(keys):
        isp, ip = key.split(" ")[0], key.split(" ")[1]
        row = dict(totals.get(key) or dict({"isp": isp, "ip": ip}, **dict.fromkeys(COUNTERS, 0)))
        sink = (sinks.get(row["isp"]) or {}).get(row["ip"])
        if sink is None:
            verdict = "-"
        elif sink.get("accepted") == row["delivered"] and sink.get("rejected") == row["bounced"]:
            verdict = "yes"
            agree += 1
        else:
            verdict = "NO"
            differ += 1
        row.update(injected=(injected.get(row["ip"]) or {}).get(row["isp"], "-"),
                   accepted=sink["accepted"] if sink else "-", sink_deferred=sink["deferred"] if sink else "-",
                   rejected=sink["rejected"] if sink else "-", agree=verdict)
        rows.append(row)
    return {"rows": rows, "agree": agree, "differ": differ, "sinks": bool(sinks)}


def _sorted_as_dictsort(mapping):
    """Items by key, compared without case (Jinja's dictsort)."""
    return sorted(mapping.items(), key=lambda item: item[0].lower() if isinstance(item[0], str) else item[0])


def mailbox_table(compare_json, login_json):
    """The MAILBOX table: ``tests/testbed/lab_mailbox.py compare`` beside the injector mailbox's login.

    ``compare_json``: the command's output (``{groups: {isp: {mailbox_dsns, mailbox_arf, suppressed, duplicates,
    sink_bounces, sink_complaints, agree}}, agree, missing, unexpected}``, or ``{error}``; empty: ``{}``);
    ``login_json``: the lab's mailbox file (``{host, port, user, ...}``; empty: ``{}``). Returns ``{login: {host,
    port, user}}`` ("?" when unknown) and either ``error`` or ``rows`` (by ISP group, ``suppressed`` "-" when the
    suppression CSV was not read), ``agree``, ``missing`` and ``unexpected``.
    """
    result = json.loads(compare_json or "{}")
    login = json.loads(login_json or "{}")
    table = {"login": {key: login.get(key, "?") for key in ("host", "port", "user")}}
    if "error" in result:
        table["error"] = result["error"]
        return table
    table["rows"] = [dict(row, isp=isp, suppressed=row.get("suppressed", "-"))
                     for isp, row in _sorted_as_dictsort(result.get("groups", {}))]
    table.update(agree=bool(result.get("agree", False)), missing=result.get("missing", {}),
                 unexpected=result.get("unexpected", {}))
    return table


def _warmup_cell(pair, stages):
    if pair is None:
        return "-"
    if pair["status"] == "done":
        return "done"
    stage = pair["stage"]
    if pair["status"] == "paused":
        limit = "paused"
    elif len(stages) >= stage:
        try:
            limit = "%s/d" % stages[stage - 1]
        except IndexError:
            limit = ""
    else:
        limit = ""
    return "%d %s" % (stage, limit)


def warmup_rows(hosts, host_vars, vmtas, isps):
    """The WARM-UP table: one row per IP in each host's warm-up state, one cell per ISP group of ``isps``.

    ``host_vars``: ``{host: {ansible_local, warmup_schedule}}``. A cell is ``-`` (no state), ``done``, or the
    stage with its daily limit from that host's ``warmup_schedule`` (``paused`` when paused).
    """
    rows = []
    for host in hosts:
        variables = host_vars.get(host) or {}
        state = (variables.get("ansible_local") or {}).get("pmta_warmup") or {}
        schedule = variables.get("warmup_schedule") or {}
        for ip, per_isp in (state.get("ips") or {}).items():
            names = [vmta["name"] for vmta in vmtas if vmta.get("ip") == ip]
            cells = [_warmup_cell(per_isp.get(isp), schedule.get(isp, schedule.get("default", []))) for isp in isps]
            rows.append({"ip": ip, "vmta": names[0] if names else "?", "cells": cells})
    return rows
