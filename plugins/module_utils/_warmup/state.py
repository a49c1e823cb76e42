# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Warm-up engine inputs and state: parsing and validation (split from ``_warmup``).

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only, pure (no clock, network or files).
"""

from __future__ import annotations

import datetime
import ipaddress
import numbers

STATE_VERSION = 1
HISTORY_LENGTH = 10
_UTC = datetime.timezone.utc  # noqa: UP017 - modules may run on Python < 3.11
COUNTERS = ("sent", "delivered", "bounced", "deferred", "complaints", "throttled")


class WarmupInputError(ValueError):
    """Bad input: the message names the variable and the fix."""


# ------------------------------------------------------------------ parsing

def parse_time(value, name="now"):
    """ISO 8601 time -> aware UTC datetime; a naive time is taken as UTC."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError as exc:
            raise WarmupInputError(
                "%s must be an ISO 8601 time such as 2026-05-01T06:00:00Z, got %r" % (name, value)
            ) from exc
    else:
        raise WarmupInputError("%s must be an ISO 8601 time such as 2026-05-01T06:00:00Z, got %r" % (name, value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


def format_time(value):
    return value.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_ip(value, name):
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError as exc:
        raise WarmupInputError("%s: %r is not an IPv4 or IPv6 address" % (name, value)) from exc


def _ip_sort_key(ip):
    address = ipaddress.ip_address(ip)
    return (address.version, int(address))


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def normalize_counters(raw, name):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise WarmupInputError("%s must be a dict of counters (%s)" % (name, ", ".join(COUNTERS)))
    counters = {}
    for key in COUNTERS:
        value = raw.get(key, 0)
        if value is None:
            value = 0
        if not _is_count(value):
            raise WarmupInputError("%s.%s must be a whole number >= 0, got %r" % (name, key, value))
        counters[key] = int(value)
    if "sent" not in raw or raw.get("sent") is None:
        counters["sent"] = counters["delivered"] + counters["bounced"]
    if counters["delivered"] > counters["sent"]:
        raise WarmupInputError(
            "%s: delivered (%d) cannot exceed sent (%d); sent counts delivered + bounced"
            % (name, counters["delivered"], counters["sent"])
        )
    return counters


def normalize_observations(observations):
    if observations is None:
        return {}
    if not isinstance(observations, dict):
        raise WarmupInputError("observations must be a dict {ip: {isp: {sent, delivered, ...}}}")
    result = {}
    for raw_ip, per_isp in observations.items():
        ip = normalize_ip(raw_ip, "observations")
        if not isinstance(per_isp, dict):
            raise WarmupInputError("observations[%s] must be a dict {isp: counters}" % raw_ip)
        target = result.setdefault(ip, {})
        for isp, raw in per_isp.items():
            counters = normalize_counters(raw, "observations[%s][%s]" % (raw_ip, isp))
            if isp in target:  # the same IP written two ways: add up
                counters = {k: counters[k] + target[isp][k] for k in COUNTERS}
            target[str(isp)] = counters
    return result


def normalize_blocklisted(blocklisted):
    if blocklisted is None:
        return {}
    if not isinstance(blocklisted, dict):
        raise WarmupInputError("blocklisted must be a dict {ip: [zones]}")
    result = {}
    for raw_ip, zones in blocklisted.items():
        ip = normalize_ip(raw_ip, "blocklisted")
        if zones is None:
            zones = []
        if isinstance(zones, str):
            zones = [zones]
        if not isinstance(zones, (list, tuple)):
            raise WarmupInputError("blocklisted[%s] must be a list of zone names" % raw_ip)
        listed = sorted({str(z) for z in zones if z})
        if listed:
            result[ip] = sorted(set(result.get(ip, [])) | set(listed))
    return result


def _empty_counters():
    return dict.fromkeys(COUNTERS, 0)


def normalize_state(state):
    if not state:
        return {"version": STATE_VERSION, "updated_at": None, "ips": {}}
    if not isinstance(state, dict):
        raise WarmupInputError("state must be the dict a previous warmup_plan returned, or {} at first")
    if state.get("version") != STATE_VERSION:
        raise WarmupInputError(
            "state.version is %r; this engine reads version %d (restore pmta_warmup.fact.prev or start from {})"
            % (state.get("version"), STATE_VERSION)
        )
    ips = state.get("ips") or {}
    if not isinstance(ips, dict):
        raise WarmupInputError("state.ips must be a dict {ip: {isp: pair state}}")
    result = {"version": STATE_VERSION, "updated_at": state.get("updated_at"), "ips": {}}
    for raw_ip, per_isp in ips.items():
        ip = normalize_ip(raw_ip, "state.ips")
        if not isinstance(per_isp, dict):
            raise WarmupInputError("state.ips[%s] must be a dict {isp: pair state}" % raw_ip)
        for isp, pair in per_isp.items():
            name = "state.ips[%s][%s]" % (raw_ip, isp)
            if not isinstance(pair, dict):
                raise WarmupInputError("%s must be a dict" % name)
            stage = pair.get("stage")
            if not _is_count(stage) or stage < 1:
                raise WarmupInputError("%s.stage must be a whole number >= 1, got %r" % (name, stage))
            status = pair.get("status", "warming")
            if status not in ("warming", "paused", "done"):
                raise WarmupInputError("%s.status must be warming, paused or done, got %r" % (name, status))
            clean = {
                "stage": int(stage),
                "status": status,
                "stage_started_at": format_time(parse_time(pair.get("stage_started_at"), name + ".stage_started_at")),
                "last_sent_at": (
                    format_time(parse_time(pair["last_sent_at"], name + ".last_sent_at"))
                    if pair.get("last_sent_at") else None
                ),
                "stage_totals": normalize_counters(pair.get("stage_totals"), name + ".stage_totals"),
                "history": list(pair.get("history") or [])[-HISTORY_LENGTH:],
            }
            clean.update(_normalize_ceiling(pair, name))
            for key in ("last_action", "last_reason"):
                if isinstance(pair.get(key), str):
                    clean[key] = pair[key]
            result["ips"].setdefault(ip, {})[str(isp)] = clean
    return result


def _normalize_ceiling(pair, name):
    """The optional ceiling memory of a pair: ``cap`` (an approach level between two
    stages) and ``ceiling`` ({limit, until, step}: the level an ISP throttled)."""
    extra = {}
    cap = pair.get("cap")
    if cap is not None:
        if not _is_count(cap) or cap < 1:
            raise WarmupInputError("%s.cap must be a whole number >= 1 or absent, got %r" % (name, cap))
        extra["cap"] = int(cap)
    ceiling = pair.get("ceiling")
    if ceiling is not None:
        if not isinstance(ceiling, dict):
            raise WarmupInputError("%s.ceiling must be a dict {limit, until, step} or absent" % name)
        limit, step = ceiling.get("limit"), ceiling.get("step", 1)
        if not _is_count(limit) or limit < 1 or not _is_count(step) or step < 1:
            raise WarmupInputError(
                "%s.ceiling.limit and .step must be whole numbers >= 1, got %r / %r" % (name, limit, step))
        extra["ceiling"] = {
            "limit": int(limit),
            "until": format_time(parse_time(ceiling.get("until"), name + ".ceiling.until")),
            "step": int(step),
        }
    return extra


def level_of(pair, stages):
    """Messages per day the pair may send now: 0 while paused, the last stage once
    done, else its stage's volume, or its approach level (``cap``) when that lies
    between this stage and the next (after a throttled ceiling)."""
    if pair.get("status") == "paused":
        return 0
    if pair.get("status") == "done":
        return stages[-1]
    stage = min(max(int(pair["stage"]), 1), len(stages))
    base = stages[stage - 1]
    cap = pair.get("cap")
    if cap is not None and stage < len(stages) and base < cap < stages[stage]:
        return int(cap)
    return base
