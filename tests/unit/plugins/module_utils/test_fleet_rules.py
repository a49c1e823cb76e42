"""The fleet rules of issue 20, checked through build_fleet_model (what every step that builds the model runs)."""

import copy

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import build_fleet_model
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.rules import (
    WIDEST_INJECTOR_PREFIX,
    later_role_problems,
    layer_conflict_problems,
)

BASE = {
    "powermta_package_src": "files/PowerMTA.deb",
    "powermta_license": "LICENSE",
    "powermta_default_listeners": [{"name": "0/0:25", "starttls": True}, {"name": "0/0:587", "starttls": True}],
    "powermta_domains": [{"name": "example.com", "dkim_selectors": ["s2026a"],
                          "bounce_domain": "bounces.example.com"}],
    "powermta_pools": [{"name": "transactional"}],
    "powermta_injectors": [{"name": "mumara", "password": "a-long-password-1", "networks": ["198.51.100.0/28"]}],
    "powermta_vmtas": [{"name": "tx-1", "ip": "203.0.113.10", "hostname": "mta10.example.com",
                        "pool": "transactional"}],
}


def problems_of(**changes):
    host_vars = copy.deepcopy(BASE)
    host_vars.update(copy.deepcopy(changes))
    return build_fleet_model({"pmta1": host_vars})[1]


def test_the_base_host_passes():
    assert problems_of() == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"powermta_domains": [{"name": "example.com", "dkim_selectors": ["s1"], "bounce_domain": "Example.COM."}]},
     "bounce_domain is the sending domain example.com itself"),
    ({"powermta_fbl_address": "fbl@example.com"}, "powermta_fbl_address fbl@example.com is the sending domain"),
    ({"powermta_bounce_domains": ["bounces.example.net"]}, "is outside the fleet's sending domains (example.com)"),
    ({"powermta_injectors": [{"name": "a", "password": "a-long-password-1", "networks": ["0.0.0.0/0"]}]},
     "is the whole Internet"),
    ({"powermta_injectors": [{"name": "a", "password": "a-long-password-1", "networks": ["10.0.0.0/15"]}]},
     "wider than /16"),
    ({"powermta_injectors": [{"name": "a", "password": "a-long-password-1", "networks": ["2001:db8::/47"]}]},
     "wider than /48"),
    ({"powermta_injectors": [{"name": "a", "password": "a-long-password-1", "networks": ["198.51.100.0/24"]},
                             {"name": "b", "password": "a-long-password-1", "networks": ["198.51.100.7"]}]},
     "items a and b: networks 198.51.100.0/24 and 198.51.100.7/32 overlap"),
    ({"powermta_pools": [{"name": "transactional"}, {"name": "tx-1"}]},
     "the name tx-1 is used by powermta_vmtas and powermta_pools"),
    ({"powermta_isp_policies": [{"name": "a", "domains": ["x.test y.test"]}]}, "is not one domain name"),
    ({"powermta_isp_policies": [{"name": "a", "mx_patterns": ["*"]}]}, "must be *.suffix"),
    ({"powermta_isp_policies": [{"name": "a", "domains": ["x.test"]}, {"name": "b", "domains": ["x.test"]}]},
     "domain x.test is also in ISP group a"),
    ({"powermta_http_mgmt_port": 25}, "port 25 is used by powermta_listeners item 0/0:25 and powermta_http_mgmt_port"),
    ({"powermta_http_mgmt_port": 9100}, "and node_exporter"),
    ({"powermta_vmtas": [{"name": "tx-1", "ip": "127.0.0.2", "hostname": "mta.example.com",
                          "pool": "transactional"}]}, "is a loopback address"),
    ({"powermta_dkim_key_dir": "dkim"}, "powermta_dkim_key_dir must be an absolute path"),
    ({"powermta_fbl_enabled": True}, "powermta_fbl_enabled needs powermta_fbl_address"),
    ({"powermta_injectors": [{"name": "mumara", "password": 35184372088831, "networks": ["198.51.100.0/28"]}]},
     "password is the number 35184372088831"),
])
def test_one_mistake_one_line_naming_host_and_variable(changes, expected):
    problems = problems_of(**changes)
    found = [problem for problem in problems if expected in problem]
    assert found and all(problem.startswith("pmta1: ") for problem in found), problems
    assert all("\n" not in problem for problem in problems), problems


def test_allowed_exceptions_pass():
    assert problems_of(powermta_allow_wide_injector_networks=True, powermta_injectors=[
        {"name": "a", "password": "a-long-password-1", "networks": ["10.0.0.0/8"]}]) == []
    assert problems_of(powermta_apex_mx_domains=["example.com"], powermta_fbl_address="fbl@example.com") == []
    assert problems_of(powermta_vmtas=[{"name": "tx-1", "ip": "203.0.113.10", "hostname": "mta10.example.com",
                                        "pool": "transactional", "max_smtp_msg_rate": 100}]) == []


def test_the_limit_is_one_constant():
    assert WIDEST_INJECTOR_PREFIX == {4: 16, 6: 48}


def test_a_list_set_at_two_levels_names_both_places_and_the_layer():
    [line] = layer_conflict_problems({("pmta1", "powermta_injectors"): ["group pmta_fleet", "host pmta1"]})
    assert line.startswith("pmta1: powermta_injectors is set in group pmta_fleet and in host pmta1")
    assert "powermta_host_injectors" in line


@pytest.mark.parametrize(("values", "expected"), [
    ({"dns_ttl": -300}, "pmta1: dns_ttl must be a number of seconds 0..2147483647 (e.g. 3600), got -300"),
    ({"dns_ttl": "an hour"}, "pmta1: dns_ttl must be a number of seconds"),
    ({"warmup_schedule": {"default": [5, 4]}}, "pmta1: warmup_schedule[default] must increase strictly"),
    ({"warmup_thresholds": {"nope": 1}}, "pmta1: warmup_thresholds.nope is not a known threshold"),
])
def test_later_roles_checks_name_the_inventory_variable(values, expected):
    assert any(problem.startswith(expected) for problem in later_role_problems("pmta1", values))


def test_later_roles_accept_their_defaults():
    assert later_role_problems("pmta1", {"dns_ttl": 3600, "warmup_schedule": {}, "warmup_thresholds": {}}) == []


@pytest.mark.parametrize(("values", "expected"), [
    ({"warmup_isps": []}, "pmta1: warmup_isps must be a non-empty list"),
    ({"warmup_isps": ["gmail", "gmail"]}, "pmta1: warmup_isps names gmail twice"),
    ({"warmup_acct_paths": "/var/log/pmta/acct.csv"}, "pmta1: warmup_acct_paths must be a non-empty list"),
    ({"dns_server": "192.0.2.53", "dns_key_name": "k"}, "pmta1: dns_server and dns_key_name set but dns_key_secret"),
    ({"monitoring_status_url": "http://localhost:8081/status"}, "pmta1: monitoring_status_url http://localhost:8081"),
    ({"monitoring_collector_interval": 3}, "pmta1: monitoring_collector_interval must be at least 10"),
    ({"powermta_package_src": "/srv/PowerMTA.rpm"}, "pmta1: powermta_package_src /srv/PowerMTA.rpm is not a .deb"),
])
def test_later_roles_own_checks_are_refused_by_inventory_variable(values, expected):
    assert any(problem.startswith(expected) for problem in later_role_problems("pmta1", values))


def test_a_vaulted_dns_secret_that_cannot_be_read_here_is_not_missing():
    values = {"dns_server": "192.0.2.53", "dns_key_name": "k"}
    assert later_role_problems("pmta1", values, set(values) | {"dns_key_secret"}) == []
    assert later_role_problems("pmta1", {"monitoring_status_url": "http://127.0.0.1:8080/status?format=json",
                                         "warmup_isps": ["gmail", "other"], "powermta_package_src": "a.deb"}) == []


def test_package_and_license_files_must_exist_on_the_controller():
    """The powermta role asserts `is file` for both before installing; with the controller's file test the
    preflight refuses a missing one first, naming the variable and the fix."""
    values = {"powermta_package_src": "/srv/pkg/PowerMTA-5.0r8.deb", "powermta_license_src": "/srv/pkg/license"}
    missing = later_role_problems("pmta1", values, is_file=lambda path: path.endswith(".deb"))
    assert missing == ["pmta1: powermta_license_src /srv/pkg/license is not a file on the controller (a relative "
                       "path is read from the directory ansible-playbook runs in): give the path of your license "
                       "file, e.g. \"{{ inventory_dir }}/files/pmta-license\""]
    assert later_role_problems("pmta1", values, is_file=lambda path: True) == []
    assert later_role_problems("pmta1", values) == []  # pure callers: no file test


def test_a_run_only_variable_in_the_inventory_is_refused():
    """powermta_dkim_fleet_checked: true in the inventory would switch off the powermta role's own DKIM check."""
    problems = later_role_problems("pmta1", {}, {"powermta_dkim_fleet_checked"})
    assert problems == ["pmta1: powermta_dkim_fleet_checked is set by the run, not the inventory "
                        "(playbooks/powermta.yml sets it after its fleet-wide DKIM key check passed; set in the "
                        "inventory it would skip the powermta role's own check): remove it from the inventory and "
                        "extra vars"]
    assert later_role_problems("pmta1", {}, set()) == []
    planning = later_role_problems("pmta1", {}, {"mailops_planning"})
    assert len(planning) == 1 and planning[0].startswith("pmta1: mailops_planning is set by the run, not the inventory")
