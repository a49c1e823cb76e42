"""playbooks/add_ip.yml's decisions (plugins/module_utils/_fleet/add_ip.py) on a real fleet model."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.add_ip import add_ip_plan, requested_ips
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import build_fleet_model
from test_fleet_model import BASE as FLEET_BASE  # the model tests' consistent host

BASE = dict(FLEET_BASE, powermta_pools=[{"name": "mk"}])


@pytest.fixture(scope="module")
def model():
    fleet = {
        "pmta1": dict(BASE, powermta_vmtas=[
            {"name": "mk-1", "ip": "203.0.113.10", "hostname": "mta10.example.com", "pool": "mk"},
            {"name": "mk-3", "ip": "203.0.113.12", "hostname": "mta12.example.com", "pool": "mk", "warmup": "yes"}]),
        "pmta2": dict(BASE, powermta_vmtas=[
            {"name": "mk-2", "ip": "2001:DB8::20", "hostname": "mta20.example.com", "pool": "mk", "warmup": True}]),
    }
    built, problems = build_fleet_model(fleet)
    assert problems == []
    return built


@pytest.mark.parametrize("given, expected", [
    ("203.0.113.12, 203.0.113.13,,203.0.113.12", ["203.0.113.12", "203.0.113.13"]),
    (["2001:DB8::20 ", ""], ["2001:db8::20"]),
    ("", []),
    (None, []),
])
def test_requested_ips_are_trimmed_lowered_and_once_each(given, expected):
    assert requested_ips(given) == expected


def test_a_warming_ip_in_the_inventory_goes_to_its_host_only(model):
    plan = add_ip_plan(model, "203.0.113.12", ["pmta1", "pmta2"])
    assert plan["problems"] == []
    assert [entry["vmta"] for entry in plan["found"]] == ["mk-3"]
    assert list(plan["hosts"]) == ["pmta1"]
    host = plan["hosts"]["pmta1"]
    assert [vmta["name"] for vmta in host["vmtas"]] == ["mk-3"]
    assert host["verify_ips"] == [{"ip": "203.0.113.12", "hostname": "mta12.example.com"}]
    assert host["warming"] is True


def test_an_ipv6_ip_matches_the_models_normalized_form(model):
    plan = add_ip_plan(model, "2001:DB8::20", ["pmta1", "pmta2"])
    assert plan["problems"] == [] and list(plan["hosts"]) == ["pmta2"]


def test_an_ip_missing_from_the_inventory_is_refused_with_the_fix(model):
    plan = add_ip_plan(model, "203.0.113.46", ["pmta1", "pmta2"])
    assert plan["problems"] == [
        "IP 203.0.113.46 is in no powermta_vmtas of the play hosts (pmta1, pmta2): add its vMTA to the host_vars of "
        "the host that carries it, e.g. {name: mk-eu-03, ip: 203.0.113.46, hostname: mtaNN.example.com, pool: POOL, "
        "warmup: true}"]
    assert plan["hosts"] == {}


def test_a_warm_ip_is_refused_unless_told_it_is_already_warm(model):
    plan = add_ip_plan(model, "203.0.113.10", ["pmta1", "pmta2"])
    assert plan["problems"] == [
        "pmta1/powermta_vmtas mk-1 (IP 203.0.113.10) has no warmup: true: a new IP must warm up; set warmup: true, "
        "or -e add_ip_require_warmup=false for an IP that is already warm"]
    plan = add_ip_plan(model, "203.0.113.10", ["pmta1", "pmta2"], require_warmup="false")
    assert plan["problems"] == [] and plan["hosts"]["pmta1"]["warming"] is False


def test_nothing_requested_is_a_problem(model):
    assert add_ip_plan(model, "", ["pmta1"])["problems"] == [
        "add_ip is empty: give the new IP(s), e.g. -e add_ip=203.0.113.12"]
