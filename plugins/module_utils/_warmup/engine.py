# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adaptive warm-up engine: one plan step per source IP x ISP group.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only, and pure: the result depends only on the
arguments (``now`` is an argument, nothing reads the clock, the network or files).

Each step takes the previous state, what was observed since the last step
(from ``pmta_acct_stats``), the current DNSBL listings and the time, and
returns a new state and one decision per IP x ISP group:
``advance | hold | rollback | pause | done``. The rules, in order of precedence:

1. ``pause``    the IP is on a DNSBL: its daily limit is 0 (on entering the
                pause it also drops ``pause_rollback_stages``).
2. ``rollback`` re-warm: nothing was sent for ``idle_rewarm_days`` (SendGrid:
                an IP idle for more than 30 days must be warmed again), back to stage 1.
3. ``rollback`` throttling: at least ``throttle_min_events`` throttling replies
                and a throttled share of attempts >= ``throttle_rate_rollback``;
                ``rollback_stages`` down.
4. ``rollback`` spike: bounce or complaint rate at/over its rollback threshold
                (with at least ``min_sample`` messages); ``spike_rollback_stages`` down.
5. ``hold``     too little sent: nothing this step, or less than
                ``min_delivered_share`` of the stage's daily limit delivered.
6. ``hold``     borderline: a rate over its hold threshold, or any throttling.
7. ``hold``     the stage began less than ``min_stage_hours`` ago.
8. ``done``     the last stage was held cleanly; otherwise ``advance``.

Defaults and their sources are in ``DEFAULT_THRESHOLDS`` and docs/warmup.md.
"""

from __future__ import annotations

import copy
import datetime
import numbers

try:
    from ansible_collections.mailops.powermta.plugins.module_utils._fleet import isp_groups as _isp_groups

    from .state import (
        COUNTERS,
        HISTORY_LENGTH,
        STATE_VERSION,
        WarmupInputError,
        _empty_counters,
        _ip_sort_key,
        _is_count,
        format_time,
        level_of,
        normalize_blocklisted,
        normalize_counters,
        normalize_ip,
        normalize_observations,
        normalize_state,
        parse_time,
    )
except ImportError:  # loaded by path (test double, CLIs, the metrics collector)
    from _fleet import isp_groups as _isp_groups  # type: ignore[no-redef]

    from _warmup.state import (  # type: ignore[no-redef]
        COUNTERS,
        HISTORY_LENGTH,
        STATE_VERSION,
        WarmupInputError,
        _empty_counters,
        _ip_sort_key,
        _is_count,
        format_time,
        level_of,
        normalize_blocklisted,
        normalize_counters,
        normalize_ip,
        normalize_observations,
        normalize_state,
        parse_time,
    )

# Re-exported: callers import these from _warmup.
__all__ = [
    "ACTIONS", "COUNTERS", "DEFAULT_STAGES", "DEFAULT_THRESHOLDS", "HISTORY_LENGTH", "STATE_VERSION",
    "WarmupInputError", "format_time", "level_of", "normalize_blocklisted", "normalize_counters", "normalize_ip",
    "normalize_observations", "normalize_schedule", "normalize_state", "normalize_thresholds", "parse_time", "plan",
    "rates",
]

ACTIONS = ("advance", "hold", "rollback", "pause", "done")

# Daily volume per IP per ISP group, one stage per day at the quickest: the
# SparkPost Auto-Warmup stages (SparkPost/support-docs automated-ip-warmup.md,
# days 1-20), which lie between SendGrid's manual PDF schedule (50 ... 1,000,000
# by day 15) and its automated hourly caps. SparkPost applies them per IP over
# all ISPs; applying them per ISP group is our choice (MailerQ and Halon key
# schedules on IP x ISP too) and is conservative for any single provider.
# The schedule ends at 1,000,000/day: a pair that holds that cleanly is warm.
DEFAULT_STAGES = (
    200, 500, 1000, 2000, 5000, 10000, 20000, 40000, 50000, 75000,
    100000, 150000, 200000, 250000, 325000, 400000, 500000, 600000, 750000, 1000000,
)

DEFAULT_THRESHOLDS = {
    # SparkPost Auto-Warmup advances when "more than 90% of the traffic for that stage" was delivered.
    "min_delivered_share": 0.9,
    # One stage per day, as every published schedule (SendGrid, SparkPost) steps daily.
    "min_stage_hours": 24,
    # Rates from fewer messages than this are noise: they can hold but never roll back.
    "min_sample": 100,
    # SendBolt promotes below 3% bounces and demotes above 5%; SES reviews accounts at 5%.
    "bounce_rate_hold": 0.03,
    "bounce_rate_rollback": 0.05,
    # Gmail: keep spam rate under 0.1%, never reach 0.3%; Yahoo cites 0.3%; SendBolt 0.1%/0.3%.
    "complaint_rate_hold": 0.001,
    "complaint_rate_rollback": 0.003,
    # No ESP publishes a deferral threshold; SparkPost calls 421 deferrals normal during
    # warm-up, so deferrals alone only hold (our choice: a fifth of attempts).
    "deferral_rate_hold": 0.2,
    # KumoMTA's Gmail rule acts on 2 "unusual rate" hits an hour; we also require 1% of attempts.
    "throttle_min_events": 2,
    "throttle_rate_rollback": 0.01,
    "rollback_stages": 1,
    "spike_rollback_stages": 2,
    # SparkPost: when an ISP blocks you, pull back volume there, then ramp again.
    "pause_rollback_stages": 1,
    # SendGrid: an IP idle for more than 30 days must be warmed again.
    "idle_rewarm_days": 30,
    # Ceiling memory. SparkPost: when an ISP pushes back, pull back volume at that ISP for a
    # week, then ramp again: after a throttling rollback the pair stays below the throttled
    # level for this many days ...
    "ceiling_cooldown_days": 7,
    # ... and then approaches it in this many smaller steps instead of one stage (ours).
    "ceiling_approach_steps": 4,
}

_SHARE_KEYS = (
    "min_delivered_share", "bounce_rate_hold", "bounce_rate_rollback", "complaint_rate_hold",
    "complaint_rate_rollback", "deferral_rate_hold", "throttle_rate_rollback",
)
_COUNT_KEYS = ("min_sample", "throttle_min_events", "rollback_stages", "spike_rollback_stages",
               "pause_rollback_stages", "ceiling_approach_steps")
_HOUR_KEYS = ("min_stage_hours", "idle_rewarm_days", "ceiling_cooldown_days")


# ------------------------------------------------------------------ schedule, thresholds

def normalize_schedule(schedule, isps):
    """``{isp|'default': [daily volumes]}`` -> ``{isp: tuple}`` for every isp."""
    schedule = schedule or {}
    if not isinstance(schedule, dict):
        raise WarmupInputError(
            "schedule must be a dict of ISP group (or 'default') -> list of daily volumes, got %s"
            % type(schedule).__name__
        )
    checked = {}
    for key, stages in schedule.items():
        if (
            not isinstance(stages, (list, tuple))
            or not stages
            or not all(_is_count(s) and s > 0 for s in stages)
        ):
            raise WarmupInputError(
                "schedule[%s] must be a non-empty list of positive integers (messages per day), got %r"
                % (key, stages)
            )
        if any(stages[i + 1] <= stages[i] for i in range(len(stages) - 1)):
            raise WarmupInputError(
                "schedule[%s] must increase strictly from stage to stage, got %r" % (key, list(stages))
            )
        checked[key] = tuple(int(s) for s in stages)
    default = checked.get("default", DEFAULT_STAGES)
    return {isp: checked.get(isp, default) for isp in isps}


def normalize_thresholds(thresholds):
    result = dict(DEFAULT_THRESHOLDS)
    if thresholds is None:
        return result
    if not isinstance(thresholds, dict):
        raise WarmupInputError("thresholds must be a dict, got %s" % type(thresholds).__name__)
    for key, value in thresholds.items():
        if key not in DEFAULT_THRESHOLDS:
            raise WarmupInputError(
                "thresholds.%s is not a known threshold; known: %s" % (key, ", ".join(sorted(DEFAULT_THRESHOLDS)))
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise WarmupInputError("thresholds.%s must be a number, got %r" % (key, value))
        if key in _SHARE_KEYS and not 0 <= value <= 1:
            raise WarmupInputError("thresholds.%s is a share and must be between 0 and 1, got %r" % (key, value))
        if key in _COUNT_KEYS and (value < 0 or int(value) != value):
            raise WarmupInputError("thresholds.%s must be a whole number >= 0, got %r" % (key, value))
        if key in _HOUR_KEYS and value < 0:
            raise WarmupInputError("thresholds.%s must be >= 0, got %r" % (key, value))
        result[key] = int(value) if key in _COUNT_KEYS else value
    for kind in ("bounce", "complaint"):
        if result["%s_rate_hold" % kind] > result["%s_rate_rollback" % kind]:
            raise WarmupInputError(
                "thresholds.%s_rate_hold (%s) must not be above thresholds.%s_rate_rollback (%s)"
                % (kind, result["%s_rate_hold" % kind], kind, result["%s_rate_rollback" % kind])
            )
    if result["rollback_stages"] < 1 or result["spike_rollback_stages"] < 1:
        raise WarmupInputError("thresholds.rollback_stages and spike_rollback_stages must be at least 1")
    if result["ceiling_approach_steps"] < 1:
        raise WarmupInputError(
            "thresholds.ceiling_approach_steps must be at least 1 (1 = straight back to the throttled level)")
    return result


# ------------------------------------------------------------------ rules

def _rate(numerator, denominator):
    return float(numerator) / denominator if denominator else 0.0


def rates(counters):
    """Bounce and complaint rates per final outcome / delivery, deferral and
    throttle rates per attempt (final outcomes + transient failures)."""
    attempts = counters["sent"] + counters["deferred"]
    return {
        "bounce_rate": _rate(counters["bounced"], counters["sent"]),
        "complaint_rate": _rate(counters["complaints"], counters["delivered"]),
        "deferral_rate": _rate(counters["deferred"], attempts),
        "throttle_rate": _rate(counters["throttled"], attempts),
    }


def _pct(value):
    return "%.2f%%" % (value * 100)


def _outcome(action, stage, status, reason, new_stage, cap=None, ceiling=None):
    return {"action": action, "stage": stage, "status": status, "reason": reason, "new_stage": new_stage,
            "cap": cap, "ceiling": ceiling}


def _throttled_ceiling(pair, stages, level, now, limits):
    """Roll back after throttling and remember the throttled level as the ceiling.

    From an approach level the pair drops one approach step (it was clean there);
    from a stage it drops ``rollback_stages``. Either way it then stays below
    ``level`` for ``ceiling_cooldown_days`` and approaches it in
    ``ceiling_approach_steps`` steps (SparkPost: pull back at that ISP, then ramp again).
    """
    stage = pair["stage"]
    ceiling = pair.get("ceiling")
    if level > stages[stage - 1] and ceiling:  # at an approach level
        below = level - ceiling["step"]
        new_stage, cap = stage, (below if below > stages[stage - 1] else None)
    else:
        new_stage, cap = max(1, stage - limits["rollback_stages"]), None
    new_level = cap or stages[new_stage - 1]
    until = now + datetime.timedelta(days=limits["ceiling_cooldown_days"])
    step = max(1, -(-(level - new_level) // limits["ceiling_approach_steps"]))
    return new_stage, cap, {"limit": level, "until": format_time(until), "step": step}


def _step_up(pair, stages, level, now, totals_text):
    """Advance (one stage, or one approach step below a remembered ceiling), hold while cooling, or done."""
    stage, last = pair["stage"], len(stages)
    ceiling = pair.get("ceiling")
    if ceiling and level >= ceiling["limit"]:
        if now < parse_time(ceiling["until"], "ceiling.until"):
            return _outcome("hold", stage, "warming", "at the %d/day this ISP throttled: cooling until %s" % (
                ceiling["limit"], ceiling["until"]), False, pair.get("cap"), ceiling)
        ceiling = None  # held cleanly at the old ceiling: forget it
    if stage >= last:
        return _outcome("done", last, "done", "last stage (%d/day) held cleanly: warm" % stages[-1], False)
    following = stages[stage]
    if not ceiling or following < ceiling["limit"]:
        return _outcome("advance", stage + 1, "warming", "stage %d delivered cleanly (%s)" % (stage, totals_text),
                        True, None, ceiling)
    if now < parse_time(ceiling["until"], "ceiling.until"):
        return _outcome("hold", stage, "warming", "clean at %d/day; stays below the %d/day this ISP throttled "
                        "until %s" % (level, ceiling["limit"], ceiling["until"]), False, pair.get("cap"), ceiling)
    target = min(ceiling["limit"], level + ceiling["step"])
    if target >= following:
        return _outcome("advance", stage + 1, "warming", "approach done: back at stage %d (%d/day, throttled "
                        "before) (%s)" % (stage + 1, following, totals_text), True, None, ceiling)
    return _outcome("advance", stage, "warming", "approaching the %d/day this ISP throttled: %d/day (%s)" % (
        ceiling["limit"], target, totals_text), True, target, ceiling)


def _decide(pair, window, stages, listed_zones, now, limits):
    """One pair's outcome: action, stage, status, reason, whether a new stage (or
    level) begins, and the ceiling memory (``cap``, ``ceiling``) to keep."""
    stage = pair["stage"]
    totals = {k: pair["stage_totals"][k] + window[k] for k in COUNTERS}
    level = level_of(dict(pair, status="warming"), stages)
    ceiling = pair.get("ceiling")

    # 1. blocklisted
    if listed_zones:
        entering = pair["status"] != "paused"
        new_stage = max(1, stage - limits["pause_rollback_stages"]) if entering else stage
        return _outcome("pause", new_stage, "paused",
                        "listed on %s: sending paused%s" % (
                            ", ".join(listed_zones),
                            "; back to stage %d when delisted" % new_stage if entering else ""),
                        entering, None if entering else pair.get("cap"), ceiling)

    resumed = pair["status"] == "paused"
    if resumed:
        return _outcome("hold", stage, "warming",
                        "delisted: resuming at stage %d for at least %sh" % (stage, limits["min_stage_hours"]), True,
                        pair.get("cap"), ceiling)

    # 2. idle -> re-warm (an old ceiling says nothing about today's reputation)
    if window["sent"] == 0:
        last_activity = parse_time(pair["last_sent_at"] or pair["stage_started_at"], "last_sent_at")
        idle_days = (now - last_activity).total_seconds() / 86400.0
        if idle_days >= limits["idle_rewarm_days"] and (stage > 1 or pair["status"] == "done"):
            return _outcome("rollback", 1, "warming", "idle %.0f days (>= %s): re-warm from stage 1" % (
                idle_days, limits["idle_rewarm_days"]), True)

    # 3. throttling: roll back and remember the level as this ISP's ceiling
    window_rates = rates(window)
    if (window["throttled"] >= max(1, limits["throttle_min_events"])
            and window_rates["throttle_rate"] >= limits["throttle_rate_rollback"]):
        new_stage, cap, new_ceiling = _throttled_ceiling(pair, stages, level, now, limits)
        return _outcome("rollback", new_stage, "warming",
                        "throttled: %d throttling replies (%s of attempts >= %s) at %d/day; stays below it "
                        "until %s" % (window["throttled"], _pct(window_rates["throttle_rate"]),
                                      _pct(limits["throttle_rate_rollback"]), level, new_ceiling["until"]),
                        True, cap, new_ceiling)

    # 4. bounce / complaint spikes, on this step's traffic or, if small, the stage's
    sample = window if window["sent"] >= limits["min_sample"] else totals
    sample_rates = rates(sample)
    trusted = sample["sent"] >= limits["min_sample"]
    if trusted:
        spikes = []
        if sample_rates["bounce_rate"] >= limits["bounce_rate_rollback"]:
            spikes.append("bounce rate %s >= %s" % (
                _pct(sample_rates["bounce_rate"]), _pct(limits["bounce_rate_rollback"])))
        if sample["delivered"] and sample_rates["complaint_rate"] >= limits["complaint_rate_rollback"]:
            spikes.append("complaint rate %s >= %s" % (
                _pct(sample_rates["complaint_rate"]), _pct(limits["complaint_rate_rollback"])))
        if spikes:
            new_stage = max(1, stage - limits["spike_rollback_stages"])
            return _outcome("rollback", new_stage, "warming", "; ".join(spikes), True, None, ceiling)

    status = "done" if pair["status"] == "done" else "warming"
    keep = {"cap": pair.get("cap"), "ceiling": ceiling}
    # 5. too little sent
    if window["sent"] == 0:
        if status == "done":
            return _outcome("done", stage, status, "warm; nothing sent since the last step", False, **keep)
        return _outcome("hold", stage, status, "nothing sent since the last step", False, **keep)
    needed = limits["min_delivered_share"] * level
    if status != "done" and totals["delivered"] < needed:
        return _outcome("hold", stage, status, "delivered %d of the %d needed (%s of %d/day)" % (
            totals["delivered"], int(-(-needed // 1)), _pct(limits["min_delivered_share"]), level), False, **keep)

    # 6. borderline
    borderline = []
    if window["throttled"] or totals["throttled"]:
        borderline.append("%d throttling replies" % max(window["throttled"], totals["throttled"]))
    if not trusted:
        borderline.append("only %d messages with a final outcome (< %d) to judge rates" % (
            sample["sent"], limits["min_sample"]))
    else:
        if sample_rates["bounce_rate"] > limits["bounce_rate_hold"]:
            borderline.append("bounce rate %s > %s" % (
                _pct(sample_rates["bounce_rate"]), _pct(limits["bounce_rate_hold"])))
        if sample_rates["complaint_rate"] > limits["complaint_rate_hold"]:
            borderline.append("complaint rate %s > %s" % (
                _pct(sample_rates["complaint_rate"]), _pct(limits["complaint_rate_hold"])))
        if sample_rates["deferral_rate"] > limits["deferral_rate_hold"]:
            borderline.append("deferral rate %s > %s" % (
                _pct(sample_rates["deferral_rate"]), _pct(limits["deferral_rate_hold"])))
    if borderline:
        return _outcome("hold", stage, status, "borderline: " + "; ".join(borderline), False, **keep)

    # 7. minimum time in stage
    in_stage_hours = (now - parse_time(pair["stage_started_at"], "stage_started_at")).total_seconds() / 3600.0
    if status != "done" and in_stage_hours < limits["min_stage_hours"]:
        return _outcome("hold", stage, status, "clean, but stage %d began %.1fh ago (< %sh)" % (
            stage, in_stage_hours, limits["min_stage_hours"]), False, **keep)

    # 8. done, advance (a stage, or a step towards a remembered ceiling), or hold while cooling
    return _step_up(pair, stages, level, now, "%d delivered, bounce %s, complaints %s" % (
        totals["delivered"], _pct(sample_rates["bounce_rate"]), _pct(sample_rates["complaint_rate"])))


def plan(state=None, observations=None, blocklisted=None, now=None, schedule=None, thresholds=None,
         ips=None, isps=None, min_interval_hours=0):
    """One warm-up step. Returns ``{"state", "decisions", "replayed"}``.

    ``ips``: the warm-up IPs to plan (default: every IP in state, observations
    and blocklisted). ``isps``: the ISP group names (default: the shipped groups);
    groups seen only in state or observations are planned too, after them.
    ``min_interval_hours``: when the previous step is more recent than this and
    every pair is already known, nothing is planned: the state comes back
    unchanged with the previous decisions (``replayed`` true), so running a step
    twice changes nothing and counts no traffic twice.
    Inputs are validated before anything is computed.
    """
    if isinstance(min_interval_hours, bool) or not isinstance(min_interval_hours, numbers.Real) \
            or min_interval_hours < 0:
        raise WarmupInputError("min_interval_hours must be a number >= 0, got %r" % (min_interval_hours,))
    return _plan(state, observations, blocklisted, now, schedule, thresholds, ips, isps, min_interval_hours)


def _default_isps():
    return _isp_groups.group_names()


def _replay(old, planned_ips, all_isps, stages_by_isp, now_dt, min_interval_hours):
    """The previous decisions when the last step is too recent, else None."""
    if not old["updated_at"] or not min_interval_hours:
        return None
    age_hours = (now_dt - parse_time(old["updated_at"], "state.updated_at")).total_seconds() / 3600.0
    if age_hours >= min_interval_hours:
        return None
    decisions = []
    for ip in planned_ips:
        for isp in all_isps:
            pair = old["ips"].get(ip, {}).get(isp)
            if pair is None:
                return None  # a new IP or group must be planned now
            stages = stages_by_isp[isp]
            stage = min(pair["stage"], len(stages))
            action = pair.get("last_action") or "hold"
            decisions.append({
                "ip": ip, "isp": isp, "action": action, "stage": stage, "stages": len(stages),
                "daily_limit": level_of(pair, stages),
                "ceiling": (pair.get("ceiling") or {}).get("limit"),
                "previous_stage": stage, "reason": pair.get("last_reason") or "",
                "observed": _empty_counters(),
            })
    return decisions


def _plan(state, observations, blocklisted, now, schedule, thresholds, ips, isps, min_interval_hours=0):
    now_dt = parse_time(now, "now")
    old = normalize_state(state)
    window = normalize_observations(observations)
    listed = normalize_blocklisted(blocklisted)
    limits = normalize_thresholds(thresholds)
    if old["updated_at"]:
        previous = parse_time(old["updated_at"], "state.updated_at")
        if now_dt < previous:
            raise WarmupInputError(
                "now (%s) is before state.updated_at (%s): a step cannot go back in time; check the clock"
                % (format_time(now_dt), format_time(previous))
            )
    if ips is not None:
        if not isinstance(ips, (list, tuple)):
            raise WarmupInputError("ips must be a list of IP addresses")
        planned_ips = sorted({normalize_ip(ip, "ips") for ip in ips}, key=_ip_sort_key)
    else:
        planned_ips = sorted(set(old["ips"]) | set(window) | set(listed), key=_ip_sort_key)
    base_isps = list(isps) if isps is not None else _default_isps()
    if not all(isinstance(i, str) and i for i in base_isps):
        raise WarmupInputError("isps must be a list of ISP group names")
    extra = set()
    for ip in planned_ips:
        extra |= set(old["ips"].get(ip, {})) | set(window.get(ip, {}))
    all_isps = base_isps + sorted(extra - set(base_isps))
    stages_by_isp = normalize_schedule(schedule, all_isps)

    replayed = _replay(old, planned_ips, all_isps, stages_by_isp, now_dt, min_interval_hours)
    if replayed is not None:
        return {"state": old, "decisions": replayed, "replayed": True}

    new_state = {"version": STATE_VERSION, "updated_at": format_time(now_dt), "ips": copy.deepcopy(old["ips"])}
    decisions = []
    for ip in planned_ips:
        for isp in all_isps:
            stages = stages_by_isp[isp]
            pair = old["ips"].get(ip, {}).get(isp)
            if pair is None:
                pair = {"stage": 1, "status": "warming", "stage_started_at": format_time(now_dt),
                        "last_sent_at": None, "stage_totals": _empty_counters(), "history": []}
            pair = copy.deepcopy(pair)
            clamped = pair["stage"] > len(stages)
            if clamped:
                pair["stage"] = len(stages)
            counters = window.get(ip, {}).get(isp) or _empty_counters()
            outcome = _decide(pair, counters, stages, listed.get(ip), now_dt, limits)
            action, stage, status, reason = (outcome[k] for k in ("action", "stage", "status", "reason"))
            if clamped:
                reason = "schedule has %d stages now; %s" % (len(stages), reason)
            if outcome["new_stage"]:
                totals = _empty_counters()
                started = format_time(now_dt)
            else:
                totals = {k: pair["stage_totals"][k] + counters[k] for k in COUNTERS}
                started = pair["stage_started_at"]
            new_pair = {
                "stage": stage,
                "status": status,
                "stage_started_at": started,
                "last_sent_at": format_time(now_dt) if counters["sent"] else pair["last_sent_at"],
                "stage_totals": totals,
            }
            for key in ("cap", "ceiling"):
                if outcome[key] is not None:
                    new_pair[key] = outcome[key]
            daily_limit = 0 if action == "pause" else level_of(new_pair, stages)
            history = (pair["history"] + [{"at": format_time(now_dt), "action": action, "stage": stage,
                                           "limit": daily_limit}])
            new_pair.update(history=history[-HISTORY_LENGTH:], last_action=action, last_reason=reason)
            new_state["ips"].setdefault(ip, {})[isp] = new_pair
            decisions.append({
                "ip": ip,
                "isp": isp,
                "action": action,
                "stage": stage,
                "stages": len(stages),
                "daily_limit": daily_limit,
                "previous_stage": pair["stage"],
                "ceiling": (outcome["ceiling"] or {}).get("limit"),
                "reason": reason,
                "observed": counters,
            })
    return {"state": new_state, "decisions": decisions, "replayed": False}
