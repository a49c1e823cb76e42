"""Which queues the warm-up step pauses and resumes (plugins/module_utils/_warmup/queues.py), from real plans."""

from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import plan
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.queues import queues_to_pause, queues_to_resume
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.render import render

ISPS = ["gmail", "yahoo", "other"]
SCHEDULE = {"default": [200, 500, 1000]}
# A pool with a warm sponsor (cold mode: reroute to it), a fresh pool of two (capped: reroute to the peer) and a
# warming vMTA alone (capped, nowhere to reroute).
VMTAS = [
    {"name": "mk-00", "ip": "192.0.2.20", "pool": "marketing"},
    {"name": "mk-01", "ip": "192.0.2.21", "pool": "marketing", "warmup": True},
    {"name": "nf-01", "ip": "198.51.100.1", "pool": "fresh", "warmup": True},
    {"name": "nf-02", "ip": "198.51.100.2", "pool": "fresh", "warmup": True},
    {"name": "solo", "ip": "198.51.100.9", "warmup": True},
]
WARMING_IPS = ["192.0.2.21", "198.51.100.1", "198.51.100.2", "198.51.100.9"]


def step(state, now, blocklisted=None):
    result = plan(state, {}, blocklisted or {}, now, schedule=SCHEDULE, ips=WARMING_IPS, isps=ISPS)
    files = render(VMTAS, result["decisions"], ISPS, result["state"]["updated_at"])
    return result, files


def test_a_listed_ip_with_nowhere_to_reroute_is_paused_the_others_are_rerouted():
    _result, files = step({}, "2026-05-01T06:00:00Z",
                          blocklisted={"192.0.2.21": ["zen.dnsbl.test"], "198.51.100.1": ["zen.dnsbl.test"],
                                       "198.51.100.9": ["zen.dnsbl.test"]})
    assert {f["vmta"]: f["reroute_to"] for f in files if f.get("paused")} == {
        "mk-01": "mk-00", "nf-01": "nf-02", "solo": None}
    assert queues_to_pause(files) == ["*/solo"]


def test_the_step_that_finds_it_delisted_resumes_it_once():
    listed, _files = step({}, "2026-05-01T06:00:00Z",
                          blocklisted={"198.51.100.9": ["zen.dnsbl.test"], "192.0.2.21": ["zen.dnsbl.test"]})
    assert {isp: pair["status"] for isp, pair in listed["state"]["ips"]["198.51.100.9"].items()} == dict.fromkeys(
        ISPS, "paused")
    delisted, files = step(listed["state"], "2026-05-02T06:00:00Z")
    assert queues_to_pause(files) == []
    # Both were paused at every group; the rerouted one's queues were never paused, resuming them is a no-op.
    assert queues_to_resume(files, VMTAS, listed["state"]) == ["*/mk-01", "*/solo"]
    # The next step: the previous state no longer has them paused.
    _again, files = step(delisted["state"], "2026-05-03T06:00:00Z")
    assert queues_to_resume(files, VMTAS, delisted["state"]) == []


def test_still_listed_or_paused_at_one_group_only_is_not_resumed():
    listed, _files = step({}, "2026-05-01T06:00:00Z", blocklisted={"198.51.100.9": ["zen.dnsbl.test"]})
    _still, files = step(listed["state"], "2026-05-02T06:00:00Z", blocklisted={"198.51.100.9": ["zen.dnsbl.test"]})
    assert queues_to_resume(files, VMTAS, listed["state"]) == []
    assert queues_to_pause(files) == ["*/solo"]
    partly = {"ips": {"198.51.100.9": {"gmail": {"status": "paused"}, "yahoo": {"status": "warming"}}}}
    _result, files = step({}, "2026-05-02T06:00:00Z")
    assert queues_to_resume(files, VMTAS, partly) == []
    assert queues_to_resume(files, VMTAS, {"ips": {"198.51.100.9": {"gmail": {}}}}) == []  # no status: not paused


def test_first_step_has_nothing_to_resume():
    _result, files = step({}, "2026-05-01T06:00:00Z")
    assert queues_to_resume(files, VMTAS, {}) == []
    assert queues_to_pause(files) == []
