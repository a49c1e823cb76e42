# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Warm-up plan -> PowerMTA config fragments (``/etc/pmta/conf.d/warmup.d/<vmta>.conf``).

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only, pure: the same plan and vMTAs give the same text.

Two ways to cap a warming IP, chosen per vMTA from the fleet model:

``cold`` (its pool has at least one warm vMTA): PowerMTA's own warm-up (§10.7).
    The warming vMTA is not a member of the pool (the ``powermta`` role leaves it
    out, because a pool hands every member its round-robin share whatever its
    rate limit, §3.3.13). A warm member of the pool (its *sponsor*) names it with
    ``cold-virtual-mta`` (§3.3.12.4), and ``max-cold-virtual-mta-msg N/day`` per
    ISP group (§3.3.10.48) re-selects the first N messages a day per queue to it;
    the rest stays on the warm IP, so nothing waits for the cold IP. With MX
    rollup the rollup queue's value counts (§10.7 note): the ``powermta`` role's
    ``$group`` macros contain ``group.rollup``, so N is per ISP group; without
    rollup it is per recipient domain of the group. Several cold vMTAs of one
    sponsor are used round robin and each gets N (§3.3.12.4), so a sponsor uses
    the smallest limit of its cold vMTAs per group.
``capped`` (no warm vMTA in its pool: a new fleet, or no pool): rate limits.
    ``max-msg-rate N/d`` per queue (§3.3.10.33) per ISP group and a vMTA total
    ``max-smtp-msg-rate T/d`` (§3.3.12.2), T the sum of the day's limits, which is
    also the total for the long tail (``other`` is ``<domain *>``: one queue per
    recipient domain, so its per-queue limit alone has no total). The injector
    side gets the same daily total per node (``_transports``).

Pause (the IP on a blocklist): ``reroute-to-virtual-mta`` (§3.3.10.49) in the
paused vMTA's ``<domain *>`` moves its mail to the sponsor (cold) or to a
sending peer of its pool (capped), and a sponsor drops the paused vMTA from its
``cold-virtual-mta`` list. Resuming removes both. With no vMTA to reroute to,
the vMTA total drops to the smallest real rate, ``1/d`` for the whole IP (the
guide gives no rate that means "none": N must be non-zero, §3.3.10.33).
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.derived import (
    is_warming,  # the one definition of "warming"
)


class WarmupRenderError(ValueError):
    """Bad vMTA data; the message names the variable and the fix."""


def _macro(isp):
    return "*" if isp == "other" else "$" + isp


def _comment(text):
    return str(text).replace("#", "").replace("\n", " ")


def assign(vmtas):
    """``{warming vMTA name: (mode, sponsor or None)}`` and ``{sponsor: [cold vMTA names]}``.

    A warming vMTA whose pool has warm members is ``cold`` and gets a sponsor, the
    warm members taken round robin in name order; any other warming vMTA is ``capped``.
    """
    warm_by_pool, warming_by_pool = {}, {}
    for vmta in vmtas:
        pool = vmta.get("pool")
        target = warming_by_pool if is_warming(vmta) else warm_by_pool
        if pool:
            target.setdefault(pool, []).append(vmta["name"])
    modes, sponsored = {}, {}
    for vmta in vmtas:
        if not is_warming(vmta):
            continue
        pool = vmta.get("pool")
        warm = sorted(warm_by_pool.get(pool, [])) if pool else []
        if not warm:
            modes[vmta["name"]] = ("capped", None)
            continue
        index = sorted(warming_by_pool[pool]).index(vmta["name"])
        sponsor = warm[index % len(warm)]
        modes[vmta["name"]] = ("cold", sponsor)
        sponsored.setdefault(sponsor, []).append(vmta["name"])
    return modes, {name: sorted(colds) for name, colds in sponsored.items()}


def _check(vmtas):
    if not isinstance(vmtas, list):
        raise WarmupRenderError("vmtas must be a list of {name, ip, pool, warmup} (powermta_vmtas)")
    names = set()
    for index, vmta in enumerate(vmtas):
        if not isinstance(vmta, dict) or not vmta.get("name") or not vmta.get("ip"):
            raise WarmupRenderError("vmtas[%d] needs a name and an ip (powermta_vmtas), got %r" % (index, vmta))
        if vmta["name"] in names:
            raise WarmupRenderError("vMTA %s is listed twice in vmtas (powermta_vmtas)" % vmta["name"])
        names.add(vmta["name"])


def _limits(decisions, ip, isps):
    """``[(isp, decision)]`` in ``isps`` order (``other`` last) for one IP."""
    by_isp = {d["isp"]: d for d in decisions if d["ip"] == ip}
    order = [isp for isp in isps if isp != "other" and isp in by_isp]
    order += sorted(isp for isp in by_isp if isp not in isps and isp != "other")
    if "other" in by_isp:
        order.append("other")
    return [(isp, by_isp[isp]) for isp in order]


def _is_paused(rows):
    return bool(rows) and all(d["daily_limit"] == 0 for _isp, d in rows)


def _header(vmta, plan_time, state_path):
    return [
        "# Managed by Ansible (mailops.powermta.warmup): rewritten by every warm-up step.",
        "# Virtual MTA %s (%s), warm-up plan of %s; state: %s." % (vmta["name"], vmta["ip"], plan_time, state_path),
    ]


def _domain(isp, directive):
    return ["<domain %s>" % _macro(isp), "    " + directive, "</domain>"]


def _warming_file(vmta, rows, mode, sponsor, reroute_to, plan_time, state_path):
    lines = _header(vmta, plan_time, state_path)
    paused = _is_paused(rows)
    if mode == "cold":
        lines.append("# Cold vMTA of %s (§10.7): it re-selects the first N messages a day per queue to this IP; the "
                     "rest leaves through the warm IPs of pool %s. The limits below are a backstop for mail sent "
                     "here directly." % (sponsor, vmta.get("pool")))
    else:
        lines.append("# No warm vMTA in %s: per-queue limits (max-msg-rate, §3.3.10.33) and a total for the whole "
                     "IP (max-smtp-msg-rate, §3.3.12.2), the long tail included." % (
                         "pool " + vmta["pool"] if vmta.get("pool") else "its pool (none)"))
    if paused:
        reasons = "; ".join(sorted({_comment(d["reason"]) for _isp, d in rows}))
        lines.append("# PAUSED: %s" % reasons)
        if reroute_to:
            lines.append("# Everything queued or arriving here goes out through %s (reroute-to-virtual-mta, "
                         "§3.3.10.49) until the IP is delisted." % reroute_to)
            lines += [""] + _domain("other", "reroute-to-virtual-mta %s" % reroute_to)
            return "\n".join(lines) + "\n"
        lines.append("# No sending vMTA to reroute to: the whole IP is held to the smallest real rate (1/d in total; "
                     "a rate must be non-zero, §3.3.10.33), and the warm-up step stops it completely with "
                     "`pmta pause queue */%s` (§6.3.23) until it is delisted." % vmta["name"])
    total = sum(d["daily_limit"] for _isp, d in rows)
    if mode == "capped":
        if vmta.get("max_smtp_msg_rate") is not None:
            lines.append("# Total: the vMTA's own max-smtp-msg-rate %s (powermta_vmtas) applies; the warm-up total "
                         "would be %d/d." % (_comment(vmta["max_smtp_msg_rate"]), max(total, 1)))
        else:
            lines.append("max-smtp-msg-rate %d/d" % max(total, 1))
    for isp, decision in rows:
        lines.append("")
        lines.append("# %s: stage %d/%d, %s: %s" % (
            isp, decision["stage"], decision["stages"], decision["action"], _comment(decision["reason"])))
        limit = decision["daily_limit"]
        lines += _domain(isp, "max-msg-rate %d/d" % limit if limit > 0 else "max-msg-rate 1/d")
    return "\n".join(lines) + "\n"


def _sponsor_file(vmta, colds, rows_by_cold, isps, plan_time, state_path):
    lines = _header(vmta, plan_time, state_path)
    sending = [name for name in colds if not _is_paused(rows_by_cold[name])]
    paused = [name for name in colds if name not in sending]
    lines.append("# Warm vMTA sponsoring warming vMTAs of pool %s (§10.7): the first N messages a day per queue "
                 "(per ISP group with MX rollup) go to each cold vMTA, round robin (§3.3.12.4); the rest stays "
                 "here." % vmta.get("pool"))
    if paused:
        lines.append("# Paused (not re-selected while listed): %s" % ", ".join(paused))
    if not sending:
        lines.append("# No cold vMTA is sending now.")
        return "\n".join(lines) + "\n"
    for name in sending:
        lines.append("cold-virtual-mta %s" % name)
    groups = []
    for name in sending:
        for isp, _decision in rows_by_cold[name]:
            if isp not in groups:
                groups.append(isp)
    groups = [g for g in isps if g in groups and g != "other"] + sorted(
        g for g in groups if g not in isps and g != "other") + (["other"] if "other" in groups else [])
    for isp in groups:
        limits = {name: d["daily_limit"] for name in sending for group, d in rows_by_cold[name] if group == isp}
        count = min(limits.values()) if len(limits) == len(sending) else 0
        lines.append("")
        per_cold = ", ".join("%s %d/day" % (name, limit) for name, limit in sorted(limits.items()))
        lines.append("# %s: %s" % (isp, per_cold))
        # 0/day is the documented default and means "do not re-select" (§10.7)
        lines += _domain(isp, "max-cold-virtual-mta-msg %d/day" % count)
    return "\n".join(lines) + "\n"


def render(vmtas, decisions, isps, plan_time, state_path="/etc/ansible/facts.d/pmta_warmup.fact",
           conf_dir="/etc/pmta/conf.d/warmup.d"):
    """``[{vmta, kind, mode, sponsor, paused, content, path, install}]``: one file per warming
    vMTA (kind ``warming``, with ``reroute_to``: where a paused vMTA's mail goes, None when nowhere) and one
    per warm vMTA sponsoring cold ones (kind ``sponsor``).
    ``path`` is the file's path without the leading ``/`` (its place in a staging tree) and
    ``install`` the entry the ``powermta`` role's apply tasks take (``{path, secret, restart}``)."""
    _check(vmtas)
    files = _render(vmtas, decisions, isps, plan_time, state_path)
    for item in files:
        item["path"] = "%s/%s.conf" % (conf_dir.strip("/"), item["vmta"])
        # a reload is enough for rate and cold-vMTA settings; nothing here is a secret
        item["install"] = {"path": item["path"], "secret": False, "restart": False}
    return files


def _render(vmtas, decisions, isps, plan_time, state_path):
    modes, sponsored = assign(vmtas)
    by_name = {v["name"]: v for v in vmtas}
    rows = {name: _limits(decisions, str(by_name[name]["ip"]), list(isps)) for name in modes}
    files = []
    for vmta in vmtas:
        name = vmta["name"]
        if name in modes:
            mode, sponsor = modes[name]
            reroute_to = sponsor
            if mode == "capped" and vmta.get("pool"):
                peers = sorted(n for n, (m, _s) in modes.items() if n != name and m == "capped"
                               and by_name[n].get("pool") == vmta["pool"] and not _is_paused(rows[n]))
                reroute_to = peers[0] if peers else None
            files.append({"vmta": name, "kind": "warming", "mode": mode, "sponsor": sponsor,
                          "paused": _is_paused(rows[name]), "reroute_to": reroute_to,
                          "content": _warming_file(vmta, rows[name], mode, sponsor, reroute_to, plan_time,
                                                   state_path)})
        elif name in sponsored:
            colds = sponsored[name]
            files.append({"vmta": name, "kind": "sponsor", "mode": "cold", "sponsor": None, "paused": False,
                          "colds": colds,
                          "content": _sponsor_file(vmta, colds, {c: rows[c] for c in colds}, list(isps), plan_time,
                                                   state_path)})
    return files
