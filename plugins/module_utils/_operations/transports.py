# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Injector transports: which PowerMTA node x pool (or vMTA) an injector may use, and with what weight.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only (the filter ``mailops.powermta.injector_transports``
calls it on the controller; the tests call it directly).

The weight follows the warm-up: each source IP contributes its messages-per-day
capacity today, summed over ISP groups:

- an IP without warm-up (``warmup`` false) contributes its full rate: the
  vMTA's ``daily_capacity`` or, by default, what a fully warmed IP gets (the
  last stage of the warm-up schedule for every ISP group);
- a warming IP contributes its current stage's daily limit per ISP group, as
  recorded in the warm-up state (``/etc/ansible/facts.d/pmta_warmup.fact``);
  an ISP group not yet in the state counts as stage 1, a finished one at the
  last stage;
- a paused IP (``paused: true`` on the vMTA, or every ISP group paused in the
  warm-up state) contributes 0; a paused ISP group contributes 0;
- every IP of a drained node (``drained: true``: playbooks/drain_host.yml) contributes 0 and
  counts as paused.

A transport's capacity is the sum over its IPs; its ``weight`` is its share (in
percent, whole numbers that add up to 100 per pool or vMTA) of the capacity of
all transports with the same ``X-Virtual-MTA`` value, which is how an injector
spreads one campaign over several nodes.
"""

from __future__ import annotations

import csv
import io

try:
    from ansible_collections.mailops.powermta.plugins.module_utils._fleet import derived as _fleet_derived
    from ansible_collections.mailops.powermta.plugins.module_utils._fleet import isp_groups as _isp_groups
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import engine as _warmup
except ImportError:  # loaded by path (CLIs)
    from _fleet import derived as _fleet_derived  # type: ignore[no-redef]
    from _fleet import isp_groups as _isp_groups  # type: ignore[no-redef]
    from _warmup import engine as _warmup  # type: ignore[no-redef]

SCHEMA_VERSION = 1
TLS_MODES = ("starttls", "tls", "none")
CSV_FIELDS = (
    "injector", "id", "node", "host", "port", "username", "password", "tls", "x_virtual_mta", "kind",
    "weight", "daily_capacity", "hourly_capacity", "ips_total", "ips_warming", "ips_paused",
)


class TransportError(ValueError):
    """Bad inventory data; the message names the variable and the fix."""


def _require(condition, message):
    if not condition:
        raise TransportError(message)


def _state_of(raw_state, node_name):
    """The warm-up state of one node (the local fact), normalized; {} when the node has none."""
    if not raw_state:
        return {"ips": {}}
    if isinstance(raw_state, dict) and "ips" not in raw_state and isinstance(raw_state.get("state"), dict):
        raw_state = raw_state["state"]
    try:
        return _warmup.normalize_state(raw_state)
    except _warmup.WarmupInputError as exc:
        raise TransportError(
            "warm-up state of %s (ansible_local.pmta_warmup) is not usable: %s" % (node_name, exc)
        ) from exc


def ip_capacity(vmta, pairs, stages_by_isp, isps, full_capacity):
    """``(daily capacity, status, per-ISP detail)`` of one vMTA's source IP today.

    ``pairs`` is the warm-up state of that IP (``{isp: {stage, status}}``) or {}.
    """
    if vmta.get("paused"):
        return 0, "paused", {}
    if not _fleet_derived.is_warming(vmta):
        capacity = vmta.get("daily_capacity")
        return int(capacity) if capacity is not None else full_capacity, "warm", {}
    detail = {}
    statuses = []
    for isp in list(isps) + sorted(set(pairs) - set(isps)):
        stages = stages_by_isp.get(isp) or stages_by_isp.get("default") or _warmup.DEFAULT_STAGES
        pair = pairs.get(isp)
        if pair is None:
            status, limit = "warming", stages[0]
        else:
            status = pair["status"]
            stage = min(max(int(pair["stage"]), 1), len(stages))
            limit = _warmup.level_of(dict(pair, stage=stage), stages)  # approach levels count too
        detail[isp] = limit
        statuses.append(status)
    if statuses and all(s == "paused" for s in statuses):
        overall = "paused"
    elif statuses and all(s == "done" for s in statuses):
        overall = "warm"
    else:
        overall = "warming"
    return sum(detail.values()), overall, detail


def _percentages(capacities):
    """Whole-number shares of 100 (largest remainder), 0 for zero capacity."""
    total = sum(capacities)
    if total <= 0:
        return [0] * len(capacities)
    exact = [100.0 * c / total for c in capacities]
    shares = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: 100 - sum(shares)]:
        shares[i] += 1
    # a node with some capacity never rounds down to 0 (injectors read 0 as "do not use");
    # the point it gets comes from the largest share, so the sum stays 100
    for i, capacity in enumerate(capacities):
        if capacity > 0 and shares[i] == 0:
            shares[i] = 1
            largest = max(range(len(shares)), key=lambda j: (shares[j], -j))
            shares[largest] -= 1
    return shares


def _check_injector(injector, index):
    where = "powermta_injectors[%d]" % index
    _require(isinstance(injector, dict) and injector.get("name"),
             "%s must be a dict with a name (see docs/mumara.md)" % where)
    where = "powermta_injectors[%s]" % injector["name"]
    for key in ("pools", "vmtas"):
        value = injector.get(key) or []
        _require(isinstance(value, list) and all(isinstance(v, str) and v for v in value),
                 "%s.%s must be a list of names" % (where, key))
    return where


def _check_node(node):
    _require(isinstance(node, dict) and node.get("name"), "every node needs a name (inventory_hostname)")
    where = "node %s" % node["name"]
    _require(node.get("host"), "%s has no injection address: set powermta_injection_address or ansible_host" % where)
    port = node.get("port")
    _require(isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536,
             "%s: injection port must be 1-65535, got %r" % (where, port))
    _require(node.get("tls", "starttls") in TLS_MODES,
             "%s: tls must be one of %s, got %r" % (where, ", ".join(TLS_MODES), node.get("tls")))
    _require(isinstance(node.get("vmtas") or [], list), "%s: vmtas must be a list" % where)
    for vmta in node.get("vmtas") or []:
        _require(isinstance(vmta, dict) and vmta.get("name") and vmta.get("ip"),
                 "%s: every vMTA needs a name and an ip, got %r" % (where, vmta))
        capacity = vmta.get("daily_capacity")
        _require(capacity is None or (isinstance(capacity, int) and not isinstance(capacity, bool) and capacity >= 0),
                 "%s: vMTA %s daily_capacity must be a whole number >= 0" % (where, vmta["name"]))


def build_transports(injectors, nodes, schedule=None, isps=None, full_daily_capacity=None,
                     include_passwords=False):
    """One document per injector: ``{injector_name: document}``.

    ``nodes``: ``[{name, host, port, tls, drained, vmtas: [{name, ip, pool, warmup, paused,
    daily_capacity}], warmup_state}]``, one per PowerMTA host.
    ``schedule``: the warm-up schedule (``{isp|'default': [daily volumes]}``).
    Output order is stable (injector, then X-Virtual-MTA value, then node) so
    files rewritten from the same inputs do not change.
    """
    _require(isinstance(injectors, list), "powermta_injectors must be a list of dicts")
    _require(isinstance(nodes, list), "nodes must be a list")
    group_names = list(isps) if isps else _isp_groups.group_names()
    try:
        stages_by_isp = _warmup.normalize_schedule(schedule, group_names)
    except _warmup.WarmupInputError as exc:
        raise TransportError("warm-up schedule: %s" % exc) from exc
    stages_by_isp["default"] = _warmup.normalize_schedule(schedule, ["default"])["default"]
    if full_daily_capacity is None:
        full_daily_capacity = sum(stages_by_isp[isp][-1] for isp in group_names)
    _require(isinstance(full_daily_capacity, int) and full_daily_capacity >= 0,
             "injector_transports_full_daily_capacity must be a whole number >= 0")

    # Capacity of every vMTA on every node, computed once.
    per_node = []
    seen_names = set()
    for node in sorted(nodes, key=lambda n: str(n.get("name") if isinstance(n, dict) else "")):
        _check_node(node)
        _require(node["name"] not in seen_names, "node %s is listed twice" % node["name"])
        seen_names.add(node["name"])
        state = _state_of(node.get("warmup_state"), node["name"])
        vmtas = []
        for vmta in node.get("vmtas") or []:
            ip = _warmup.normalize_ip(vmta["ip"], "vmta %s ip" % vmta["name"])
            if node.get("drained"):
                capacity, status, detail = 0, "paused", {}  # the host is out of service (drain_host.yml)
            else:
                capacity, status, detail = ip_capacity(vmta, state["ips"].get(ip, {}), stages_by_isp, group_names,
                                                       full_daily_capacity)
            vmtas.append({"vmta": vmta["name"], "ip": ip, "pool": vmta.get("pool"), "status": status,
                          "daily_capacity": capacity, "per_isp": detail})
        per_node.append((node, vmtas))

    documents = {}
    for index, injector in enumerate(injectors):
        where = _check_injector(injector, index)
        # the powermta role names the <smtp-user> after the injector; auth: false injectors relay by network
        uses_auth = injector.get("auth", True) not in (False, "false", "no", 0)
        username = (injector.get("username") or injector.get("smtp_user") or injector["name"]) if uses_auth else None
        password = injector.get("password") if uses_auth and include_passwords else None
        if include_passwords and uses_auth:
            _require(password, "%s.password is empty but injector_transports_include_passwords is true: "
                               "set it from the vault" % where)
        transports = []
        targets = [("pool", name) for name in injector.get("pools") or []]
        targets += [("vmta", name) for name in injector.get("vmtas") or []]
        if not targets:
            # nothing listed: every pool of the fleet (X-Virtual-MTA may name any of them)
            targets = [("pool", name) for name in sorted({v["pool"] for _node, vmtas in per_node for v in vmtas
                                                          if v["pool"]})]
            _require(targets, "%s: no pool in the fleet (no vMTA has a pool); set pools or vmtas" % where)
        for kind, target in targets:
            group = []
            for node, vmtas in per_node:
                members = [v for v in vmtas if (v["pool"] == target if kind == "pool" else v["vmta"] == target)]
                if not members:
                    continue
                group.append({
                    "id": "%s/%s/%s" % (injector["name"], node["name"], target),
                    "node": node["name"],
                    "host": str(node["host"]),
                    "port": node["port"],
                    "username": username,
                    "tls": node.get("tls", "starttls"),
                    "x_virtual_mta": target,
                    "kind": kind,
                    "daily_capacity": sum(m["daily_capacity"] for m in members),
                    # per-node hourly cap for injectors that limit by the hour (Mumara): the day spread evenly
                    "hourly_capacity": -(-sum(m["daily_capacity"] for m in members) // 24),
                    "ips_total": len(members),
                    "ips_warming": sum(1 for m in members if m["status"] == "warming"),
                    "ips_paused": sum(1 for m in members if m["status"] == "paused"),
                    "ips": [{k: m[k] for k in ("vmta", "ip", "status", "daily_capacity")} for m in members],
                })
            _require(group, "%s allows %s %s, but no host in pmta_fleet has a vMTA %s"
                     % (where, kind, target, "in that pool" if kind == "pool" else "with that name"))
            for transport, weight in zip(group, _percentages([t["daily_capacity"] for t in group])):  # noqa: B905 - Python 3.8 targets
                transport["weight"] = weight
                if include_passwords and uses_auth:
                    transport["password"] = password
                transports.append(transport)
        documents[injector["name"]] = {
            "schema_version": SCHEMA_VERSION,
            "injector": injector["name"],
            "passwords_included": bool(include_passwords),
            "transports": transports,
        }
    return documents


def to_csv(document):
    """One row per transport; the ``ips`` detail is left out (it is in the JSON/YAML files)."""
    buffer = io.StringIO()
    fields = [f for f in CSV_FIELDS if f != "password" or document.get("passwords_included")]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for transport in document.get("transports", []):
        row = dict(transport, injector=document["injector"])
        writer.writerow(row)
    return buffer.getvalue()
