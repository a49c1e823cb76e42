"""The derived facts the powermta templates print: each rule decided once, in _fleet_derived."""

import copy

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.derived import (
    auth_default_virtual_mta,
    derive,
    inbound,
    is_warming,
    pool_members,
    starttls_offered,
    warmup_includes,
    with_item_defaults,
)
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import build_fleet_model, wanted_variables
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.render import assign
from test_fleet_model import BASE as FLEET_BASE  # the model tests' consistent host

VMTAS = [
    {"name": "tx-1", "pool": "tx"},
    {"name": "tx-2", "pool": "tx", "warmup": True},
    {"name": "mk-1", "pool": "mk", "warmup": True},
    {"name": "mk-2", "pool": "mk", "warmup": True},
    {"name": "lone", "warmup": True},
    {"name": "plain"},
]
POOLS = [{"name": "tx"}, {"name": "mk"}, {"name": "empty"}]


@pytest.mark.parametrize("value, warming", [
    (True, True), (False, False), (None, False), ("yes", True), ("no", False), ("True", True), ("off", False),
    (1, True), (0, False),
])
def test_warming_is_one_reading_of_the_warmup_flag(value, warming):
    assert is_warming({"name": "v", "warmup": value}) is warming


def test_a_vmta_without_warmup_is_warm():
    assert is_warming({"name": "v"}) is False


def test_warming_vmtas_and_their_warm_pool_peers_include_a_warmup_file():
    includes = warmup_includes(VMTAS)
    assert includes == {"tx-1": "sponsor", "tx-2": "warming", "mk-1": "warming", "mk-2": "warming",
                        "lone": "warming"}
    assert list(includes) == ["tx-1", "tx-2", "mk-1", "mk-2", "lone"]  # list order, as the blocks are printed


def test_every_sponsor_the_warmup_engine_picks_has_an_include():
    modes, sponsored = assign(VMTAS)
    includes = warmup_includes(VMTAS)
    assert set(sponsored) <= {name for name, kind in includes.items() if kind == "sponsor"}
    assert {name for name, kind in includes.items() if kind == "warming"} == set(modes)


def test_a_warming_vmta_beside_warm_ones_is_no_pool_member():
    assert pool_members(POOLS, VMTAS) == {"tx": ["tx-1"], "mk": ["mk-1", "mk-2"], "empty": []}


def test_pool_members_keep_list_order():
    vmtas = [{"name": "b", "pool": "p"}, {"name": "a", "pool": "p"}, {"name": "c", "pool": "p", "warmup": "yes"}]
    assert pool_members([{"name": "p"}], vmtas) == {"p": ["b", "a"]}


def test_starttls_is_offered_unless_every_listener_says_no():
    assert starttls_offered([{"name": "0/0:25"}]) is True
    assert starttls_offered([{"name": "0/0:25", "starttls": False}, {"name": "0/0:587", "starttls": True}]) is True
    assert starttls_offered([{"name": "0/0:25", "starttls": False}]) is False
    assert starttls_offered([]) is False


def test_item_defaults_are_made_explicit_once():
    assert with_item_defaults("listeners", {"name": "l"}) == {"name": "l", "starttls": True}
    assert with_item_defaults("listeners", {"name": "l", "starttls": "no"})["starttls"] is False
    injector = with_item_defaults("injectors", {"name": "i", "auth": False})
    assert injector == {"name": "i", "auth": False, "process_x_virtual_mta": True}
    assert with_item_defaults("vmtas", {"name": "v"}) == {"name": "v"}


def test_inbound_unites_bounce_domains_without_case_and_adds_the_fbl_address():
    settings = {"powermta_inbound_enabled": True, "powermta_bounce_domains": ["b.example.net", "B.example.com"],
                "powermta_fbl_address": "fbl@fbl.example.com"}
    domains = [{"name": "example.com", "bounce_domain": "b.example.com"}, {"name": "example.org"}]
    found = inbound(settings, domains, {"domains": ["b.example.com"], "smtp_hosts": "[192.0.2.1]:25"})
    assert found["bounce_domains"] == ["b.example.com", "b.example.net"]
    assert found["domains"] == ["b.example.com", "b.example.net", "fbl.example.com"]
    assert found["relay_fbl_address"] is True
    assert found["fbl_address"] == "fbl@fbl.example.com"
    assert found["mailbox"]["smtp_hosts"] == "[192.0.2.1]:25"


def test_an_fbl_address_at_a_bounce_domain_needs_no_relay_address():
    settings = {"powermta_fbl_address": "fbl@b.example.com"}
    found = inbound(settings, [{"name": "example.com", "bounce_domain": "b.example.com"}], {})
    assert found["relay_fbl_address"] is False
    assert found["domains"] == ["b.example.com"]


def test_inbound_disabled_accepts_nothing_and_forgets_the_mailbox():
    settings = {"powermta_inbound_enabled": "false", "powermta_bounce_domains": ["b.example.net"],
                "powermta_fbl_address": "fbl@fbl.example.com"}
    found = inbound(settings, [{"name": "example.com", "bounce_domain": "b.example.com"}], {"domains": ["x"]})
    assert found == {"enabled": False, "bounce_domains": [], "fbl_address": "", "relay_fbl_address": False,
                     "domains": [], "mailbox": {}}


@pytest.mark.parametrize("settings, injectors, expected", [
    ({"powermta_auth_default_virtual_mta": "lone"}, [{"name": "i", "default_virtual_mta": "tx-1"}], "lone"),
    ({}, [{"name": "i"}, {"name": "j", "default_virtual_mta": "tx-1"}], "tx-1"),
    ({}, [{"name": "i"}], "tx"),  # the first pool (powermta_pools order) with a vMTA; "empty" has none
    ({"powermta_auth_source_directives": {"default-virtual-mta": "x"}}, [{"name": "i"}], ""),
])
def test_auth_default_virtual_mta(settings, injectors, expected):
    assert auth_default_virtual_mta(settings, injectors, [{"name": "empty"}] + POOLS, VMTAS) == expected


def test_auth_default_falls_back_to_the_first_vmta_then_to_nothing():
    assert auth_default_virtual_mta({}, [], [], [{"name": "only"}]) == "only"
    assert auth_default_virtual_mta({}, [], [], []) == ""


def test_derive_uses_the_role_defaults_for_settings_not_given():
    model = {"vmtas": VMTAS, "pools": POOLS, "listeners": [{"name": "0/0:25"}], "injectors": [{"name": "i"}],
             "domains": [{"name": "example.com", "bounce_domain": "b.example.com"}], "bounce_mailbox": {}}
    derived = derive({"powermta_fbl_address": None}, model)
    assert derived["inbound"]["bounce_domains"] == ["b.example.com"]
    assert derived["inbound"]["fbl_address"] == ""
    assert derived["starttls"] is True
    assert derived["authenticating"] is True
    assert derived["auth_default_virtual_mta"] == "tx"


def test_an_injector_without_auth_needs_no_auth_source():
    model = {"vmtas": [], "pools": [], "listeners": [], "injectors": [{"name": "i", "auth": False}], "domains": []}
    assert derive({}, model)["authenticating"] is False


MODEL_VMTAS = [
    {"name": "tx-1", "ip": "203.0.113.10", "hostname": "mta10.example.com", "pool": "tx"},
    {"name": "tx-2", "ip": "203.0.113.11", "hostname": "mta11.example.com", "pool": "tx", "warmup": "yes"},
]
BASE = dict(FLEET_BASE, powermta_default_listeners=[{"name": "0/0:25"}], powermta_pools=[{"name": "tx"}],
            powermta_domains=[{"name": "example.com", "dkim_selectors": ["s2026a"], "bounce_domain": "b.example.com"}],
            powermta_vmtas=MODEL_VMTAS)


def test_the_model_carries_the_derived_facts_of_each_host():
    model, problems = build_fleet_model({"pmta1": copy.deepcopy(BASE)})
    assert problems == []
    host = model["hosts"]["pmta1"]
    assert host["warmup_includes"] == {"tx-1": "sponsor", "tx-2": "warming"}
    assert [item["name"] for item in host["warmup_files"]] == ["", "tx-1", "tx-2"]
    assert host["pool_members"] == {"tx": ["tx-1"]}
    assert host["listeners"] == [{"name": "0/0:25", "starttls": True}]
    assert host["injectors"][0]["auth"] is True
    assert host["starttls"] is True
    assert host["inbound"]["domains"] == ["b.example.com"]
    assert host["auth_default_virtual_mta"] == "tx"
    assert [ip["warmup"] for ip in model["ips"]] == [False, True]


def test_the_model_reads_the_settings_it_derives_from():
    assert {"powermta_inbound_enabled", "powermta_bounce_domains", "powermta_fbl_address",
            "powermta_auth_default_virtual_mta", "powermta_auth_source_directives"} <= set(wanted_variables())
