"""Retiring vMTAs in the fleet model (plugins/module_utils/_fleet/retire.py, playbooks/retire_ip.yml)."""

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import build_fleet_model
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.retire import retire_vmtas

MK = {"name": "mk-63", "ip": "203.0.113.63", "hostname": "mta63.example.com", "pool": "marketing"}
OLD = {"name": "rt-68", "ip": "203.0.113.68", "hostname": "mta68.example.com", "pool": "marketing", "retire": True}


def test_a_retiring_vmta_leaves_its_pool_and_reroutes_to_a_warm_peer_of_the_same_pool():
    warming = {"name": "mk-69", "ip": "203.0.113.69", "hostname": "mta69.example.com", "pool": "marketing",
               "warmup": True}
    other = {"name": "tx-62", "ip": "203.0.113.62", "hostname": "mta62.example.com", "pool": "transactional"}
    vmtas = retire_vmtas([dict(OLD, warmup=True), warming, other, MK])
    retiring = vmtas[0]
    assert "pool" not in retiring and "warmup" not in retiring
    assert retiring["retiring_from_pool"] == "marketing"
    assert retiring["reroute_to"] == "mk-63"  # the warm peer, not the warming one, not another pool's
    assert retiring["domains"] == [{"name": "*", "directives": {"reroute-to-virtual-mta": "mk-63"}}]
    assert vmtas[1:] == [warming, other, MK]


def test_a_retiring_vmta_without_a_peer_delivers_its_own_queue_and_keeps_its_domains():
    given = dict(OLD, domains=[{"name": "*", "directives": {"max-smtp-out": "2"}}])
    (retiring,) = retire_vmtas([given])
    assert retiring["reroute_to"] is None and retiring["retiring_from_pool"] == "marketing"
    assert retiring["domains"] == given["domains"]


def test_a_reroute_merges_into_the_star_domain_the_user_gave():
    given = dict(OLD, domains=[{"name": "*", "directives": {"max-smtp-out": "2"}}, {"name": "gmail.test"}])
    retiring = retire_vmtas([given, MK])[0]
    assert retiring["domains"][0] == {"name": "*",
                                      "directives": {"max-smtp-out": "2", "reroute-to-virtual-mta": "mk-63"}}
    assert given["domains"][0]["directives"] == {"max-smtp-out": "2"}  # the inventory's item is not changed


def test_two_retiring_vmtas_never_reroute_to_each_other():
    second = dict(OLD, name="rt-70", ip="203.0.113.70")
    assert [vmta["reroute_to"] for vmta in retire_vmtas([OLD, second])] == [None, None]


def test_the_fleet_model_marks_the_ip_retiring_and_the_string_yes_is_a_bool():
    fleet_vars = {"mf-n2": {"powermta_vmtas": [MK, dict(OLD, retire="yes")],
                            "powermta_pools": [{"name": "marketing"}]}}
    model, _problems = build_fleet_model(fleet_vars)
    ips = {ip["ip"]: ip for ip in model["ips"]}
    assert ips["203.0.113.68"]["retiring"] is True and ips["203.0.113.68"]["reroute_to"] == "mk-63"
    assert ips["203.0.113.68"]["pool"] is None and ips["203.0.113.68"]["retiring_from_pool"] == "marketing"
    assert ips["203.0.113.63"]["retiring"] is False and ips["203.0.113.63"]["pool"] == "marketing"


def test_retire_must_be_a_bool():
    fleet_vars = {"mf-n2": {"powermta_vmtas": [MK, dict(OLD, retire="soon")],
                            "powermta_pools": [{"name": "marketing"}]}}
    _model, problems = build_fleet_model(fleet_vars)
    assert any("retire" in problem and "rt-68" in problem for problem in problems), problems


def test_retiring_the_last_ip_of_a_pool_is_refused_by_the_preflight():
    fleet_vars = {"mf-n2": {"powermta_vmtas": [OLD], "powermta_pools": [{"name": "marketing"}]}}
    _model, problems = build_fleet_model(fleet_vars)
    assert any("pool marketing has no vMTA" in problem for problem in problems), problems
