"""Unit tests of the warm-up engine: one test per rule, input validation, and state round trips."""

import json

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import (
    DEFAULT_STAGES,
    DEFAULT_THRESHOLDS,
    WarmupInputError,
    plan,
)

IP = "203.0.113.11"
IP2 = "203.0.113.12"
T0 = "2026-05-01T06:00:00Z"
T1 = "2026-05-02T06:00:00Z"
T2 = "2026-05-03T06:00:00Z"
SCHEDULE = {"default": [100, 200, 400, 800]}


def obs(delivered=0, bounced=0, deferred=0, complaints=0, throttled=0, sent=None):
    counters = {"delivered": delivered, "bounced": bounced, "deferred": deferred,
                "complaints": complaints, "throttled": throttled}
    if sent is not None:
        counters["sent"] = sent
    return counters


def step(state, observations=None, now=T1, blocklisted=None, isps=("gmail", "yahoo"), **kwargs):
    kwargs.setdefault("schedule", SCHEDULE)
    return plan(state=state, observations=observations or {}, blocklisted=blocklisted or {}, now=now,
                ips=[IP], isps=list(isps), **kwargs)


def decision(result, isp="gmail", ip=IP):
    return next(d for d in result["decisions"] if d["isp"] == isp and d["ip"] == ip)


def state_at(stage, isp="gmail", status="warming", started=T0, last_sent=T0, totals=None, isps=("gmail", "yahoo")):
    """A state with ``isp`` at ``stage`` (other groups at stage 1)."""
    pairs = {}
    for name in isps:
        pairs[name] = {
            "stage": stage if name == isp else 1,
            "status": status if name == isp else "warming",
            "stage_started_at": started,
            "last_sent_at": last_sent,
            "stage_totals": totals or obs(sent=0),
            "history": [],
        }
    return {"version": 1, "updated_at": started, "ips": {IP: pairs}}


# ------------------------------------------------------------------ first step

def test_first_step_starts_every_group_at_stage_one_and_holds():
    result = step({}, now=T0)
    assert [(d["isp"], d["action"], d["stage"], d["daily_limit"]) for d in result["decisions"]] == [
        ("gmail", "hold", 1, 100), ("yahoo", "hold", 1, 100)]
    assert result["state"]["ips"][IP]["gmail"]["stage_started_at"] == T0


def test_default_isps_and_schedule_come_from_the_published_data():
    result = plan({}, {}, {}, T0, ips=[IP])
    assert [d["isp"] for d in result["decisions"]] == ["gmail", "yahoo", "microsoft", "apple", "comcast", "other"]
    assert {d["daily_limit"] for d in result["decisions"]} == {DEFAULT_STAGES[0]}
    assert DEFAULT_STAGES[:5] == (200, 500, 1000, 2000, 5000)  # SparkPost Auto-Warmup days 1-5


# ------------------------------------------------------------------ advance

def test_advance_when_stage_delivered_cleanly_after_min_time():
    result = step(state_at(1), {IP: {"gmail": obs(delivered=99, bounced=1)}})
    d = decision(result)
    assert (d["action"], d["stage"], d["daily_limit"], d["previous_stage"]) == ("advance", 2, 200, 1)
    pair = result["state"]["ips"][IP]["gmail"]
    assert pair["stage_started_at"] == T1 and pair["stage_totals"]["delivered"] == 0
    assert pair["last_sent_at"] == T1


def test_delivered_counts_accumulate_over_steps_within_a_stage():
    first = step(state_at(1), {IP: {"gmail": obs(delivered=60)}}, now="2026-05-01T18:00:00Z")
    assert decision(first)["action"] == "hold"
    assert "delivered 60 of the 90 needed" in decision(first)["reason"]
    second = step(first["state"], {IP: {"gmail": obs(delivered=60)}}, now=T1)
    assert decision(second)["action"] == "advance"


# ------------------------------------------------------------------ hold

def test_hold_when_nothing_sent():
    d = decision(step(state_at(2), {}))
    assert (d["action"], d["stage"], d["daily_limit"]) == ("hold", 2, 200)
    assert d["reason"] == "nothing sent since the last step"


def test_hold_when_less_than_share_of_stage_delivered():
    d = decision(step(state_at(2), {IP: {"gmail": obs(delivered=170)}}))  # needs 0.9 * 200 = 180
    assert d["action"] == "hold" and "delivered 170 of the 180 needed" in d["reason"]


def test_hold_before_min_stage_hours():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=100)}}, now="2026-05-01T20:00:00Z"))
    assert d["action"] == "hold" and "began 14.0h ago" in d["reason"]


def test_hold_on_borderline_bounce_rate():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=96, bounced=4)}}))  # 4% : > 3%, < 5%
    assert d["action"] == "hold" and "bounce rate 4.00% > 3.00%" in d["reason"]


def test_hold_on_borderline_complaint_rate():
    d = decision(step(state_at(3), {IP: {"gmail": obs(delivered=1000, complaints=2)}}))  # 0.2%
    assert d["action"] == "hold" and "complaint rate 0.20% > 0.10%" in d["reason"]


def test_hold_on_high_deferral_rate():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=100, deferred=40)}}))  # 40/140
    assert d["action"] == "hold" and "deferral rate 28.57% > 20.00%" in d["reason"]


def test_hold_on_a_single_throttling_reply():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=100, deferred=1, throttled=1)}}))
    assert d["action"] == "hold" and "1 throttling replies" in d["reason"]


def test_hold_when_sample_too_small_to_judge_rates():
    result = step(state_at(1), {IP: {"gmail": obs(delivered=95)}}, thresholds={"min_sample": 500})
    d = decision(result)
    assert d["action"] == "hold" and "only 95 messages" in d["reason"]


def test_small_sample_spike_holds_instead_of_rolling_back():
    d = decision(step(state_at(3), {IP: {"gmail": obs(delivered=8, bounced=2)}}))  # 20% of 10
    assert d["action"] == "hold" and d["stage"] == 3


# ------------------------------------------------------------------ rollback

def test_rollback_one_stage_on_throttling_while_other_groups_advance():
    state = state_at(3)
    state["ips"][IP]["yahoo"]["stage"] = 2
    result = step(state, {IP: {"gmail": obs(delivered=400, deferred=30, throttled=30),
                               "yahoo": obs(delivered=200)}})
    gmail, yahoo = decision(result, "gmail"), decision(result, "yahoo")
    assert (gmail["action"], gmail["stage"], gmail["daily_limit"]) == ("rollback", 2, 200)
    assert gmail["reason"].startswith("throttled: 30 throttling replies")
    assert (yahoo["action"], yahoo["stage"]) == ("advance", 3)


def test_throttle_rollback_needs_min_events_and_rate():
    # 2 events but 2/10002 of attempts: under 1%, only a hold
    d = decision(step(state_at(3), {IP: {"gmail": obs(delivered=10000, deferred=2, throttled=2)}}))
    assert d["action"] == "hold"


def test_rollback_two_stages_on_bounce_spike():
    d = decision(step(state_at(4), {IP: {"gmail": obs(delivered=700, bounced=100)}}))  # 12.5%
    assert (d["action"], d["stage"], d["daily_limit"]) == ("rollback", 2, 200)
    assert "bounce rate 12.50% >= 5.00%" in d["reason"]


def test_rollback_on_complaint_spike():
    d = decision(step(state_at(3), {IP: {"gmail": obs(delivered=400, complaints=2)}}))  # 0.5%
    assert (d["action"], d["stage"]) == ("rollback", 1)
    assert "complaint rate 0.50% >= 0.30%" in d["reason"]


def test_spike_in_small_step_is_judged_on_the_stage_totals():
    totals = obs(delivered=150, bounced=0)
    d = decision(step(state_at(3, totals=totals), {IP: {"gmail": obs(delivered=20, bounced=30)}}))
    assert d["action"] == "rollback"  # 30 / 200 = 15% of the stage's traffic


def test_rollback_never_goes_below_stage_one():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=50, bounced=50)}}))
    assert (d["action"], d["stage"], d["daily_limit"]) == ("rollback", 1, 100)


def test_rollback_stage_counts_are_configurable():
    d = decision(step(state_at(4), {IP: {"gmail": obs(delivered=500, throttled=50, deferred=50)}},
                      thresholds={"rollback_stages": 3}))
    assert d["stage"] == 1


# ------------------------------------------------------------------ pause

def test_pause_on_blocklisting_sets_limit_zero_and_drops_a_stage_once():
    listed = {IP: ["zen.dnsbl.test"]}
    first = step(state_at(3), {IP: {"gmail": obs(delivered=400)}}, blocklisted=listed)
    d = decision(first)
    assert (d["action"], d["stage"], d["daily_limit"]) == ("pause", 2, 0)
    assert "listed on zen.dnsbl.test" in d["reason"]
    assert decision(first, "yahoo")["action"] == "pause"  # every group of the IP
    second = step(first["state"], {}, now=T2, blocklisted=listed)
    assert (decision(second)["action"], decision(second)["stage"]) == ("pause", 2)
    third = step(second["state"], {IP: {"gmail": obs(delivered=400)}}, now="2026-05-04T06:00:00Z")
    d = decision(third)
    assert (d["action"], d["stage"], d["daily_limit"]) == ("hold", 2, 200)
    assert d["reason"].startswith("delisted")
    assert third["state"]["ips"][IP]["gmail"]["status"] == "warming"


def test_empty_zone_list_is_not_a_listing():
    d = decision(step(state_at(1), {IP: {"gmail": obs(delivered=100)}}, blocklisted={IP: []}))
    assert d["action"] == "advance"


# ------------------------------------------------------------------ re-warm

def test_rewarm_after_idle_period():
    state = state_at(3, last_sent="2026-03-01T06:00:00Z", started="2026-03-01T06:00:00Z")
    d = decision(step(state, {}, now="2026-04-15T06:00:00Z"))
    assert (d["action"], d["stage"], d["daily_limit"]) == ("rollback", 1, 100)
    assert d["reason"].startswith("idle 45 days")


def test_short_idle_only_holds():
    state = state_at(3, last_sent="2026-03-01T06:00:00Z", started="2026-03-01T06:00:00Z")
    d = decision(step(state, {}, now="2026-03-20T06:00:00Z"))
    assert (d["action"], d["stage"]) == ("hold", 3)


def test_warm_pair_rewarms_after_idle_too():
    state = state_at(4, status="done", last_sent="2026-01-01T00:00:00Z", started="2026-01-01T00:00:00Z")
    d = decision(step(state, {}, now="2026-03-01T00:00:00Z"))
    assert (d["action"], d["stage"]) == ("rollback", 1)


# ------------------------------------------------------------------ done

def test_done_when_last_stage_held_cleanly():
    d = decision(step(state_at(4), {IP: {"gmail": obs(delivered=800)}}))
    assert (d["action"], d["stage"], d["daily_limit"]) == ("done", 4, 800)
    result = step(state_at(4), {IP: {"gmail": obs(delivered=800)}})
    assert result["state"]["ips"][IP]["gmail"]["status"] == "done"


def test_done_stays_done_and_still_rolls_back_on_throttling():
    done = step(state_at(4), {IP: {"gmail": obs(delivered=800)}})
    quiet = step(done["state"], {}, now=T2)
    assert decision(quiet)["action"] == "done"
    throttled = step(quiet["state"], {IP: {"gmail": obs(delivered=100, deferred=20, throttled=20)}},
                     now="2026-05-04T06:00:00Z")
    assert (decision(throttled)["action"], decision(throttled)["stage"]) == ("rollback", 3)


# ------------------------------------------------------------------ schedule and state

def test_schedule_per_isp_overrides_default():
    result = step({}, now=T0, schedule={"default": [100, 200], "yahoo": [50, 75, 150]})
    assert decision(result, "gmail")["daily_limit"] == 100
    assert (decision(result, "yahoo")["daily_limit"], decision(result, "yahoo")["stages"]) == (50, 3)


def test_shortened_schedule_clamps_stage():
    d = decision(step(state_at(4), {}, schedule={"default": [100, 200]}))
    assert (d["stage"], d["daily_limit"]) == (2, 200)
    assert d["reason"].startswith("schedule has 2 stages now")


def test_state_round_trips_through_json_and_ips_normalize():
    first = plan({}, {"2001:DB8::0:1": {"gmail": obs(delivered=5)}}, {}, T0, isps=["gmail"], schedule=SCHEDULE)
    assert first["decisions"][0]["ip"] == "2001:db8::1"
    again = plan(json.loads(json.dumps(first["state"])), {}, {}, T1, isps=["gmail"], schedule=SCHEDULE)
    assert again["decisions"][0]["ip"] == "2001:db8::1"


def test_ips_not_planned_keep_their_state():
    state = state_at(3)
    result = plan(state, {}, {}, T1, ips=[IP2], isps=["gmail"], schedule=SCHEDULE)
    assert result["state"]["ips"][IP] == state["ips"][IP]
    assert [d["ip"] for d in result["decisions"]] == [IP2]


def test_decisions_sorted_by_address_then_group_order():
    result = plan({}, {}, {}, T0, ips=["2001:db8::1", "203.0.113.9", "198.51.100.200"], isps=["yahoo", "gmail"])
    assert [(d["ip"], d["isp"]) for d in result["decisions"]] == [
        ("198.51.100.200", "yahoo"), ("198.51.100.200", "gmail"), ("203.0.113.9", "yahoo"),
        ("203.0.113.9", "gmail"), ("2001:db8::1", "yahoo"), ("2001:db8::1", "gmail")]


def test_history_is_bounded():
    state = {}
    for day in range(1, 15):
        state = plan(state, {}, {}, "2026-05-%02dT06:00:00Z" % day, ips=[IP], isps=["gmail"])["state"]
    assert len(state["ips"][IP]["gmail"]["history"]) == 10


def test_default_thresholds_are_the_documented_ones():
    assert DEFAULT_THRESHOLDS["min_delivered_share"] == 0.9
    assert DEFAULT_THRESHOLDS["complaint_rate_rollback"] == 0.003
    assert DEFAULT_THRESHOLDS["idle_rewarm_days"] == 30


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"now": "yesterday"}, "now must be an ISO 8601 time"),
        ({"observations": {"not-an-ip": {}}}, "observations: 'not-an-ip' is not an IPv4 or IPv6"),
        ({"observations": {IP: {"gmail": {"delivered": -1}}}}, r"observations\[203.0.113.11\]\[gmail\].delivered"),
        ({"observations": {IP: {"gmail": {"sent": 5, "delivered": 9}}}}, "delivered \\(9\\) cannot exceed sent"),
        ({"schedule": {"default": [100, 50]}}, r"schedule\[default\] must increase strictly"),
        ({"schedule": {"gmail": []}}, r"schedule\[gmail\] must be a non-empty list"),
        ({"thresholds": {"bounce_limit": 0.1}}, "thresholds.bounce_limit is not a known threshold"),
        ({"thresholds": {"bounce_rate_hold": 2}}, "thresholds.bounce_rate_hold is a share"),
        ({"thresholds": {"bounce_rate_hold": 0.2}}, "must not be above thresholds.bounce_rate_rollback"),
        ({"state": {"version": 9}}, "state.version is 9"),
        ({"blocklisted": {IP: 5}}, r"blocklisted\[203.0.113.11\] must be a list"),
    ],
)
def test_bad_input_names_the_variable(kwargs, message):
    args = {"state": {}, "observations": {}, "blocklisted": {}, "now": T0, "schedule": SCHEDULE}
    args.update(kwargs)
    with pytest.raises(WarmupInputError, match=message):
        plan(**args)


def test_step_cannot_go_back_in_time():
    with pytest.raises(WarmupInputError, match="before state.updated_at"):
        step(state_at(2, started=T2), {}, now=T1)


def test_naive_time_is_utc_and_inputs_are_not_mutated():
    state = state_at(1)
    snapshot = json.dumps(state, sort_keys=True)
    observations = {IP: {"gmail": obs(delivered=100)}}
    result = step(state, observations, now="2026-05-02T06:00:00")
    assert result["state"]["updated_at"] == T1
    assert json.dumps(state, sort_keys=True) == snapshot
    assert observations == {IP: {"gmail": obs(delivered=100)}}


# ------------------------------------------------------------------ repeated runs

def test_a_step_within_min_interval_replays_the_previous_plan():
    first = step(state_at(1), {IP: {"gmail": obs(delivered=100)}})
    again = step(first["state"], {IP: {"gmail": obs(delivered=500, throttled=50, deferred=50)}},
                 now="2026-05-02T06:30:00Z", min_interval_hours=1)
    assert again["replayed"] is True
    assert again["state"] == first["state"]

    def strip(decisions):
        return [{k: v for k, v in d.items() if k not in ("observed", "previous_stage")} for d in decisions]

    assert strip(again["decisions"]) == strip(first["decisions"])
    later = step(first["state"], {}, now="2026-05-02T07:00:00Z", min_interval_hours=1)
    assert later["replayed"] is False


def test_a_new_ip_is_planned_even_within_min_interval():
    first = step({}, now=T0)
    result = plan(first["state"], {}, {}, "2026-05-01T06:10:00Z", schedule=SCHEDULE, ips=[IP, IP2],
                  isps=["gmail", "yahoo"], min_interval_hours=1)
    assert result["replayed"] is False and {d["ip"] for d in result["decisions"]} == {IP, IP2}


def test_min_interval_must_be_a_non_negative_number():
    with pytest.raises(WarmupInputError, match="min_interval_hours must be a number >= 0"):
        step({}, now=T0, min_interval_hours=-1)
