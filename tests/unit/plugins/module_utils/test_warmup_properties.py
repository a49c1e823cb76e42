"""Property tests of the warm-up engine (hypothesis): random multi-step histories."""

import copy
import json

from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import plan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

IPS = ["203.0.113.11", "2001:db8::11"]
ISPS = ["gmail", "yahoo", "other"]

schedules = st.fixed_dictionaries(
    {},
    optional={
        "default": st.lists(st.integers(1, 10**6), min_size=1, max_size=8, unique=True).map(sorted),
        "yahoo": st.lists(st.integers(1, 10**5), min_size=1, max_size=5, unique=True).map(sorted),
    },
)


@st.composite
def counters(draw):
    delivered = draw(st.integers(0, 3000))
    bounced = draw(st.integers(0, 400))
    return {
        "delivered": delivered,
        "bounced": bounced,
        "deferred": draw(st.integers(0, 800)),
        "complaints": draw(st.integers(0, 20)),
        "throttled": draw(st.integers(0, 50)),
    }


@st.composite
def steps(draw):
    result = []
    for _step in range(draw(st.integers(1, 6))):
        observations = {ip: {isp: draw(counters()) for isp in draw(st.sets(st.sampled_from(ISPS)))}
                        for ip in draw(st.sets(st.sampled_from(IPS)))}
        blocklisted = {ip: ["zen.dnsbl.test"] for ip in draw(st.sets(st.sampled_from(IPS), max_size=1))}
        hours = draw(st.sampled_from([1, 6, 24, 25, 48, 24 * 40]))
        result.append((observations, blocklisted, hours))
    return result


def run(schedule, history):
    import datetime

    now = datetime.datetime(2026, 5, 1, 6, tzinfo=datetime.UTC)
    state = {}
    outputs = []
    for observations, blocklisted, hours in history:
        now += datetime.timedelta(hours=hours)
        result = plan(copy.deepcopy(state), observations, blocklisted, now.isoformat(), schedule=schedule,
                      ips=IPS, isps=ISPS)
        outputs.append((state, result))
        state = result["state"]
    return outputs


def stages_for(schedule, isp):
    return schedule.get(isp, schedule.get("default", None))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, history=steps())
def test_limits_never_exceed_the_schedule(schedule, history):
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import DEFAULT_STAGES

    for _state, result in run(schedule, history):
        for d in result["decisions"]:
            stages = stages_for(schedule, d["isp"]) or list(DEFAULT_STAGES)
            assert d["daily_limit"] <= max(stages)
            # a stage's volume, or an approach level between two stages under a remembered ceiling
            approach = (d["ceiling"] is not None and d["stage"] < len(stages)
                        and stages[d["stage"] - 1] < d["daily_limit"] < min(stages[d["stage"]], d["ceiling"] + 1))
            assert d["daily_limit"] in set(stages) | {0} or approach
            assert 1 <= d["stage"] <= len(stages)
            assert (d["daily_limit"] == 0) == (d["action"] == "pause")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, history=steps())
def test_a_rollback_never_raises_a_limit_and_advance_moves_one_stage(schedule, history):
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import DEFAULT_STAGES, level_of

    for before, result in run(schedule, history):
        for d in result["decisions"]:
            stages = stages_for(schedule, d["isp"]) or list(DEFAULT_STAGES)
            old = before.get("ips", {}).get(d["ip"], {}).get(d["isp"]) if before else None
            old_stage = min(old["stage"], len(stages)) if old else 1
            old_limit = level_of(dict(old, status="warming"), stages) if old else stages[0]
            if d["action"] in ("rollback", "pause"):
                assert d["stage"] <= old_stage
                assert d["daily_limit"] <= old_limit
            elif d["action"] == "advance":
                # one stage up, or one approach step towards a remembered ceiling within the stage
                assert d["stage"] == old_stage + 1 or (d["stage"] == old_stage and d["daily_limit"] > old_limit)
                assert d["daily_limit"] > old_limit
            else:
                assert d["stage"] == old_stage


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules, history=steps())
def test_same_inputs_give_the_same_plan(schedule, history):
    first = run(schedule, history)
    second = run(copy.deepcopy(schedule), copy.deepcopy(history))
    first_results = [result for _state, result in first]
    second_results = [result for _state, result in second]
    assert json.dumps(first_results, sort_keys=True) == json.dumps(second_results, sort_keys=True)
