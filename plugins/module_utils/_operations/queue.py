# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PowerMTA's queue commands (v5.0 User's Guide §6.3) as plain Python: read, plan, run.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only (the module imports it on the host).

- ``resolve_selection``: fleet names (ISP group, vMTA, pool, IP) -> ``domain/vmta`` patterns per host, from
  the fleet model (``mailops_fleet``), once on the controller.
- ``parse_show_queues``: the text of ``pmta show queues`` in the layout §6.3.13 documents (header, dashes, one
  row per queue ``queue #rcpt kbytes conn st retry last error``, ``N of M matching queues.``).
- ``plan``: which commands bring the queues to the wanted state; nothing when they are there already.
- ``apply``: read, plan, run; the caller gives a ``run(argv) -> (rc, stdout, stderr)``.

Paused or not is read with the documented filter ``--paused={yes|no}`` (§6.3.13), not from the ``st``
column, whose values the guide does not list.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re

STATES = ("paused", "resumed", "retried", "deleted", "source_disabled", "source_enabled")
# §6.3.13: "By default, 20 domains are displayed" -- ask for enough and check the "N of M" line.
MAX_ITEMS = 100000
_QUEUE_RE = re.compile(r"^[A-Za-z0-9*._{}\[\]-]+(/[A-Za-z0-9*._{}-]+)?$")
_ROW_RE = re.compile(r"^(?P<queue>\S+/\S+)\s+(?P<rcpt>\d+)\s+(?P<kbytes>\d+(?:\.\d+)?)\s+(?P<conn>\d+)\b")
_COUNT_RE = re.compile(r"(\d+) of (\d+) matching queues")
_SCHEDULED_RE = re.compile(r"(\d+) of (\d+) matching queues scheduled")
_TIME_RE = re.compile(r"^(\d+[wdhms])+$")


class QueueError(Exception):
    """Bad input or an answer of pmta that cannot be read; the message says what and the fix."""


# ---------------------------------------------------------------- patterns
def check_pattern(pattern):
    """``domain[/vmta]`` as PowerMTA writes queue names (§6.3.13), ``*`` allowed in both parts."""
    if not isinstance(pattern, str) or not _QUEUE_RE.match(pattern):
        raise QueueError("queue %r is not domain[/vmta] (e.g. gmail.com/tx-01, */tx-01, gmail.rollup/*)" % (pattern,))
    return pattern


def split(pattern):
    """``domain[/vmta]`` -> (domain, vmta); an omitted vMTA matches every vMTA (§6.3.13: defaults to ``*``)."""
    domain, _slash, vmta = pattern.partition("/")
    return domain.lower(), vmta or "*"


def matches(pattern, queue):
    """Does the queue name ``domain/vmta`` fall under ``pattern`` (``*`` wildcards, domains case-insensitive)?"""
    p_domain, p_vmta = split(pattern)
    q_domain, q_vmta = split(queue)
    return fnmatch.fnmatchcase(q_domain, p_domain) and fnmatch.fnmatchcase(q_vmta, p_vmta)


def is_exact(pattern):
    domain, vmta = split(pattern)
    return "*" not in domain and "*" not in vmta


def check_interval(value, name="reenable_after"):
    """A TIME-INTERVAL (§3.2: ``1w2d12h``, ``300s``); a bare number is seconds."""
    text = str(value).strip().lower()
    if text.isdigit():
        return text + "s"
    if not _TIME_RE.match(text):
        raise QueueError("%s %r is not a time interval such as 30m, 1h or 1d12h" % (name, value))
    return text


# ---------------------------------------------------------------- fleet names -> patterns
def _as_list(value):
    if value in (None, ""):
        return []
    return [value] if isinstance(value, str) else list(value)


def isp_domains(policies, names, mx_rollup=True):
    """Queue domains of ISP groups: the group's recipient domains and its rollup queue ``NAME.rollup`` (§10.17,
    as the powermta role renders ``<mx-rollup-list>``). ``other`` is ``<domain *>`` minus the groups: no pattern
    names it, so it is refused."""
    by_name = {policy.get("name"): policy for policy in policies}
    domains = []
    for name in names:
        if name == "other":
            raise QueueError("isp other is every domain outside the ISP groups; no queue pattern selects it: name "
                             "its domains in queue instead")
        policy = by_name.get(name)
        if policy is None:
            raise QueueError("isp %s is not an ISP group of this fleet (known: %s)" % (
                name, ", ".join(sorted(n for n in by_name if n)) or "none"))
        found = [str(d).lower() for d in policy.get("domains") or []]
        if mx_rollup and policy.get("mx_patterns"):
            found.append("%s.rollup" % name)
        domains += [d for d in found if d not in domains]
    return domains


def resolve_selection(fleet, isp=None, vmta=None, pool=None, ip=None, queue=None, mx_rollup=True, only=None):
    """``{host: [pattern, ...]}`` for every host of the fleet model that has selected queues.

    Dimensions combine as AND (``isp: gmail, pool: marketing``: gmail's queues on the marketing vMTAs);
    several values of one dimension as OR. ``queue`` patterns are added as given on every host whose vMTAs
    they can name. A name that exists nowhere in the fleet is an error (a typo must not select nothing).
    ``only``: resolve for that host alone (what the action plugin does per host); names are still checked
    against the whole fleet.
    """
    isps, vmtas, pools, ips = _as_list(isp), _as_list(vmta), _as_list(pool), _as_list(ip)
    queues = [check_pattern(q) for q in _as_list(queue)]
    if not (isps or vmtas or pools or ips or queues):
        raise QueueError("choose the queues: give queue (e.g. '*/*' for all), or isp, vmta, pool or ip")
    try:
        ips = [str(ipaddress.ip_address(str(value).strip())) for value in ips]
    except ValueError as exc:
        raise QueueError("ip: %s" % exc) from exc
    hosts = fleet.get("hosts") or {}
    fleet_vmtas = fleet.get("vmtas") or []
    vmtas, pools, ips = set(vmtas), set(pools), set(ips)
    unknown = [("vmta", v) for v in sorted(vmtas - {x.get("name") for x in fleet_vmtas})]
    unknown += [("pool", p) for p in sorted(pools - {x.get("pool") for x in fleet_vmtas})]
    unknown += [("ip", a) for a in sorted(ips - {str(x.get("ip")) for x in fleet_vmtas})]
    if unknown:
        raise QueueError("; ".join("%s %s is on no host of the fleet" % item for item in unknown)
                         + ": check the name against powermta_vmtas / powermta_pools")
    selected_by_names = bool(vmtas or pools or ips)
    result = {}
    for host in sorted(hosts) if only is None else [only] if only in hosts else []:
        model = hosts[host]
        names = [v.get("name") for v in model.get("vmtas") or []]
        chosen = [v.get("name") for v in model.get("vmtas") or []
                  if (not vmtas or v.get("name") in vmtas) and (not pools or v.get("pool") in pools)
                  and (not ips or str(v.get("ip")) in ips)]
        patterns = []
        if isps or selected_by_names:
            if selected_by_names and not chosen:
                pass  # this host has none of the named vMTAs
            else:
                domains = isp_domains(model.get("isp_policies") or [], isps, mx_rollup) if isps else ["*"]
                # Every vMTA of the host chosen: one wildcard instead of one pattern per vMTA.
                parts = ["*"] if not selected_by_names or len(chosen) == len(names) else chosen
                patterns = ["%s/%s" % (domain, part) for part in parts for domain in domains]
        if queues:
            known = set(names)
            for pattern in queues:
                _domain, part = split(pattern)
                if "*" in part or part in known or part == "{default}":
                    patterns.append(pattern)
        if patterns:
            result[host] = list(dict.fromkeys(patterns))
    return result


# ---------------------------------------------------------------- reading pmta's answers
def parse_show_queues(text):
    """Rows of ``pmta show queues`` (§6.3.13) -> (``[{queue, domain, vmta, rcpt, kbytes, conn}]``, shown, total).

    A row starts with the queue name ``domain/vmta`` followed by the numeric #rcpt, kbytes and conn columns;
    the header, the dashes, the echoed pattern and the recipient events are not rows. ``shown``/``total``
    come from the ``N of M matching queues.`` line (None when absent).
    """
    rows = []
    for line in text.splitlines():
        match = _ROW_RE.match(line.strip())
        if not match:
            continue
        queue = match.group("queue")
        domain, _slash, vmta = queue.partition("/")
        rows.append({"queue": queue, "domain": domain, "vmta": vmta, "rcpt": int(match.group("rcpt")),
                     "kbytes": float(match.group("kbytes")), "conn": int(match.group("conn"))})
    count = _COUNT_RE.search(text)
    shown, total = (int(count.group(1)), int(count.group(2))) if count else (None, None)
    return rows, shown, total


def parse_disabled_sources(text):
    """``pmta show disabled sources`` (§6.3.35) -> {(ip, queue)}. The guide shows no sample output: a line that
    holds an IP address and a ``domain/vmta`` name counts, in either order; anything else is ignored."""
    found = set()
    for line in text.splitlines():
        words = line.split()
        address = queue = None
        for word in words:
            try:
                parsed = str(ipaddress.ip_address(word))
            except ValueError:
                parsed = None
            if parsed:
                address = address or parsed
            elif "/" in word and queue is None and _QUEUE_RE.match(word):
                queue = word
        if address and queue:
            found.add((address, queue))
    return found


def read_queues(run, pmta="pmta", pattern="*/*"):
    """``{queue: {rcpt, kbytes, conn, paused}}`` of the queues matching ``pattern``, from two documented calls:
    ``show queues --paused=yes`` and ``--paused=no`` (§6.3.13)."""
    queues = {}
    for paused in ("yes", "no"):
        argv = [pmta, "show", "queues", "--paused=%s" % paused, "--no-rcpt-events", "--maxitems=%d" % MAX_ITEMS,
                pattern]
        rc, out, err = run(argv)
        if rc != 0:
            raise QueueError("`%s` failed (rc %d): %s" % (" ".join(argv), rc, (err or out).strip()[:300]))
        rows, shown, total = parse_show_queues(out)
        if shown is not None and total is not None and shown < total:
            raise QueueError("`%s` listed %d of %d queues; raise MAX_ITEMS" % (" ".join(argv), shown, total))
        for row in rows:
            queues[row["queue"]] = dict(row, paused=paused == "yes")
    return queues


# ---------------------------------------------------------------- what to do
def plan(state, patterns, queues, disabled=None, source_ip=None, reenable_after=None, retry_recipients=False):
    """``[{argv, pattern, queues: [names], reason}]`` (argv without the leading ``pmta``), in pattern order.

    - paused: a pattern with a running matching queue; an exact pattern whose queue is not (yet) listed too,
      so mail that arrives later waits (§6.3.23 names the queue, not its current mail);
    - resumed: a pattern with a paused matching queue;
    - retried: a pattern with queued recipients (``schedule``, §6.3.10);
    - deleted: a pattern with queued recipients (``delete --queue=``, §6.3.22);
    - source_disabled / source_enabled: per pattern, unless ``show disabled sources`` already agrees (§6.3.33-35).
    """
    steps = []
    disabled = disabled or set()
    for pattern in patterns:
        matching = sorted(name for name in queues if matches(pattern, name))
        if state == "paused":
            running = [q for q in matching if not queues[q]["paused"]]
            if running or (is_exact(pattern) and not matching):
                steps.append({"argv": ["pause", "queue", pattern], "pattern": pattern,
                              "queues": running or [pattern], "reason": "running" if running else "not listed yet"})
        elif state == "resumed":
            paused = [q for q in matching if queues[q]["paused"]]
            if paused:
                steps.append({"argv": ["resume", "queue", pattern], "pattern": pattern, "queues": paused,
                              "reason": "paused"})
        elif state in ("retried", "deleted"):
            loaded = [q for q in matching if queues[q]["rcpt"] > 0]
            if not loaded:
                continue
            if state == "retried":
                argv = ["schedule"] + (["--retry-recipients"] if retry_recipients else []) + [pattern]
            else:
                argv = ["delete", "--queue=%s" % pattern]
            steps.append({"argv": argv, "pattern": pattern, "queues": loaded, "reason": "recipients queued"})
        elif state in ("source_disabled", "source_enabled"):
            listed = {queue for address, queue in disabled if address == source_ip and matches(pattern, queue)}
            if state == "source_disabled":
                if pattern in listed or (not is_exact(pattern) and matching and set(matching) <= listed):
                    continue
                argv = ["disable", "source"] + (["--reenable-after=%s" % reenable_after] if reenable_after else [])
                steps.append({"argv": argv + [source_ip, pattern], "pattern": pattern,
                              "queues": matching or [pattern], "reason": "source enabled"})
            elif listed:
                steps.append({"argv": ["enable", "source", source_ip, pattern], "pattern": pattern,
                              "queues": sorted(listed), "reason": "source disabled"})
        else:
            raise QueueError("state %r is not one of %s" % (state, ", ".join(STATES)))
    return steps


def summary(queues, patterns):
    """The selected queues and their sizes, for the report: ``[{queue, rcpt, kbytes, paused}]``."""
    return [{"queue": name, "rcpt": row["rcpt"], "kbytes": row["kbytes"], "paused": row["paused"]}
            for name, row in sorted(queues.items()) if any(matches(p, name) for p in patterns)]


def apply(run, state, patterns, pmta="pmta", check_mode=False, source_ip=None, reenable_after=None,
          retry_recipients=False):
    """Read, plan and (unless check mode) run. Returns a dict for the module's result."""
    for pattern in patterns:
        check_pattern(pattern)
    if state in ("source_disabled", "source_enabled"):
        if not source_ip:
            raise QueueError("state %s needs source_ip (the IP to %s toward the queues)" % (
                state, "disable" if state == "source_disabled" else "enable"))
        try:
            source_ip = str(ipaddress.ip_address(str(source_ip).strip()))
        except ValueError as exc:
            raise QueueError("source_ip: %s" % exc) from exc
    if reenable_after is not None:
        reenable_after = check_interval(reenable_after)
    before = read_queues(run, pmta)
    disabled = set()
    if state in ("source_disabled", "source_enabled"):
        rc, out, err = run([pmta, "show", "disabled", "sources"])
        if rc != 0:
            raise QueueError("`pmta show disabled sources` failed (rc %d): %s" % (rc, (err or out).strip()[:300]))
        disabled = parse_disabled_sources(out)
    steps = plan(state, patterns, before, disabled, source_ip, reenable_after, retry_recipients)
    result = {"changed": bool(steps), "commands": [" ".join([pmta] + step["argv"]) for step in steps],
              "queues": summary(before, patterns), "patterns": list(patterns), "outputs": []}
    if state == "deleted":
        result["deleted"] = [{"queue": q, "rcpt": before[q]["rcpt"], "kbytes": before[q]["kbytes"]}
                             for step in steps for q in step["queues"]]
    if check_mode or not steps:
        return result
    for step in steps:
        argv = [pmta] + step["argv"]
        rc, out, err = run(argv)
        if rc != 0:
            raise QueueError("`%s` failed (rc %d): %s" % (" ".join(argv), rc, (err or out).strip()[:300]))
        result["outputs"].append(out.strip())
    after = read_queues(run, pmta)
    result["queues_after"] = summary(after, patterns)
    return result


def diff(state, steps_result):
    """``{before, after}`` text: the commands that change the host."""
    return {"before": "", "after": "".join("%s\n" % command for command in steps_result["commands"]),
            "after_header": "pmta commands (%s)" % state}
