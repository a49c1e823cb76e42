import copy

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.items import check_item, normalize_domain
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.layers import LayerError, merge_by_name
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import (
    build_fleet_model,
    host_problems,
    wanted_variables,
)

BASE = {
    "powermta_package_src": "files/PowerMTA.deb",
    "powermta_license": "LICENSE",
    "powermta_dkim_key_source": "controller",
    "powermta_dkim_controller_dir": "/srv/dkim",
    "powermta_default_listeners": [{"name": "0/0:25", "starttls": True}],
    "powermta_domains": [{"name": "example.com", "dkim_selectors": ["s2026a"]}],
    "powermta_pools": [{"name": "transactional"}],
    "powermta_injectors": [{"name": "mumara", "password": "a-long-password-1", "networks": ["198.51.100.0/28"]}],
}


def fleet(**hosts):
    """{host: extra vars} -> fleet_vars, each host with its own vMTA unless given."""
    out = {}
    for index, (name, extra) in enumerate(sorted(hosts.items())):
        host_vars = copy.deepcopy(BASE)
        host_vars["powermta_vmtas"] = [{"name": "tx-%d" % index, "ip": "203.0.113.%d" % (10 + index),
                                        "hostname": "mta%d.example.com" % index, "pool": "transactional"}]
        host_vars.update(copy.deepcopy(extra))
        out[name] = host_vars
    return out


def test_consistent_fleet_builds_the_model_once_for_every_host():
    model, problems = build_fleet_model(fleet(pmta1={}, pmta2={}))
    assert problems == []
    assert sorted(model["hosts"]) == ["pmta1", "pmta2"]
    assert [ip["ip"] for ip in model["ips"]] == ["203.0.113.10", "203.0.113.11"]
    assert [vmta["inventory_host"] for vmta in model["vmtas"]] == ["pmta1", "pmta2"]
    assert model["domains"][0]["name"] == "example.com" and model["domains"][0]["hosts"] == ["pmta1", "pmta2"]
    host = model["hosts"]["pmta1"]
    assert host["dkim_keys"] == [{"domain": "example.com", "selector": "s2026a", "bits": 2048,
                                  "path": "/etc/pmta/dkim/example.com/s2026a.pem"}]
    assert host["warmup_files"] == [{"src": "etc/pmta/conf.d/warmup.conf.j2", "dest": "etc/pmta/conf.d/warmup.conf",
                                     "name": ""}]


def test_domains_carry_what_one_dns_record_per_domain_needs():
    model, problems = build_fleet_model(fleet(
        pmta1={"powermta_host_domains": [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_policy": "none"}]},
        pmta2={"powermta_host_domains": [{"name": "example.com", "dkim_selectors": ["s2", "s1"],
                                          "dmarc_policy": "reject"}]},
        pmta3={}))
    (domain,) = model["domains"]
    assert domain["hosts"] == ["pmta1", "pmta2", "pmta3"]
    assert domain["fleet_dkim_selectors"] == ["s1", "s2", "s2026a"]  # every host's, first seen first
    assert domain["differs"] == {"dmarc_policy": {"pmta1": "none", "pmta2": "reject", "pmta3": None}}
    consistent, _problems = build_fleet_model(fleet(pmta1={}, pmta2={}))
    assert consistent["domains"][0]["differs"] == {} and consistent["domains"][0]["fleet_dkim_selectors"] == ["s2026a"]


def test_layers_merge_defaults_all_group_host_and_absent_removes():
    hosts = fleet(pmta1={
        "powermta_group_pools": [{"name": "marketing", "traffic": "marketing"}],
        "powermta_host_vmtas": [{"name": "tx-0", "state": "absent"},
                                {"name": "mk-0", "ip": "203.0.113.50", "hostname": "mta50.example.com",
                                 "pool": "marketing", "warmup": "yes"}],
        "powermta_host_pools": [{"name": "transactional", "state": "absent"}],
    })
    model, problems = build_fleet_model(hosts)
    assert problems == []
    host = model["hosts"]["pmta1"]
    assert [vmta["name"] for vmta in host["vmtas"]] == ["mk-0"]
    assert host["vmtas"][0]["warmup"] is True  # normalized to a bool
    assert [pool["name"] for pool in host["pools"]] == ["marketing"]
    assert host["warmup_files"][1]["dest"] == "etc/pmta/conf.d/warmup.d/mk-0.conf"


def test_domain_names_are_normalized_so_a_spelling_is_not_a_new_domain():
    hosts = fleet(pmta1={"powermta_host_domains": [{"name": "Example.COM.", "dmarc_policy": "reject"}]})
    model, problems = build_fleet_model(hosts)
    assert problems == []
    (domain,) = model["hosts"]["pmta1"]["domains"]
    assert domain["name"] == "example.com" and domain["dmarc_policy"] == "reject" and domain["dkim_selectors"]
    assert normalize_domain(" News.Example.com. ") == "news.example.com"


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"powermta_injectors": [{"name": "m", "password": "a-long-password-1", "networks": "198.51.100.7"}]},
         "pmta1: powermta_injectors item m: networks must be a list"),
        ({"powermta_domains": [{"name": "example.com", "dkim_selectors": "s2026a"}]},
         "powermta_domains item example.com: dkim_selectors must be a list"),
        ({"powermta_vmtas": [{"name": "a", "ip": "203.0.113.1", "hostname": "a.example.com", "pool": "transactional"},
                             {"name": "a", "ip": "203.0.113.2", "hostname": "b.example.com"}]},
         "pmta1: powermta_vmtas names a twice"),
        ({"powermta_domains": [{"name": "example.com", "dkim_selectors": ["s 1"]}]}, "DKIM selector 's 1'"),
        ({"powermta_domains": [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_policy": "block"}]},
         "dmarc_policy must be one of none, quarantine, reject"),
        ({"powermta_pools": [{"name": "transactional"}, {"name": "märketing"}]}, "the name must be ASCII"),
        ({"powermta_http_mgmt_port": 80800}, "powermta_http_mgmt_port must be a port number 0-65535, got 80800"),
        ({"powermta_spool_dirs": "/var/spool/pmta"}, "powermta_spool_dirs must be a non-empty list"),
        ({"host_tuning_host_sysctl": [{"name": "vm.swappiness", "value": -5}]},
         "pmta1: host_tuning_host_sysctl: vm.swappiness = -5 is out of range"),
        ({"powermta_vmtas": "tx-0"}, "pmta1: powermta_vmtas must be a list of dicts with a name"),
        ({"powermta_vmtas": [{"name": "x", "ip": "203.0.113.400", "hostname": "x.example.com"}]},
         "ip '203.0.113.400' is not an IP address"),
        ({"powermta_injectors": [{"name": "m", "password": "a-long-password-1", "networks": ["198.51.100.0/28"],
                                  "default_virtual_mta": "nowhere"}]}, "default_virtual_mta nowhere"),
        ({"powermta_default_listeners": [{"name": "0/0:25", "starttls": False}]}, "passwords would cross"),
        ({"powermta_pools": [{"name": "transactional", "directives": {"Max": 1}}]}, "directive Max cannot be written"),
        ({"powermta_lint_fail_on": "fatal"}, "powermta_lint_fail_on must be error or warning"),
    ],
)
def test_each_mistake_names_host_variable_and_fix(extra, expected):
    model, problems = build_fleet_model(fleet(pmta1=extra))
    assert any(expected in problem for problem in problems), problems


def test_settings_the_global_check_used_to_lump_together_are_reported_one_by_one():
    _model, problems = build_fleet_model(fleet(pmta1={"powermta_http_mgmt_port": 80800}))
    assert problems == ["pmta1: powermta_http_mgmt_port must be a port number 0-65535, got 80800"]


def test_all_problems_of_the_fleet_at_once_and_unreadable_variables_named():
    hosts = fleet(pmta1={"powermta_lint_fail_on": "x"}, pmta2={"powermta_http_mgmt_port": -1})
    _model, problems = build_fleet_model(hosts, unreadable={("pmta2", "powermta_injectors"): "'vault_x' is undefined"})
    assert problems[0] == "pmta2: powermta_injectors cannot be read: 'vault_x' is undefined"
    assert any(p.startswith("pmta1: powermta_lint_fail_on") for p in problems)
    assert any(p.startswith("pmta2: powermta_http_mgmt_port") for p in problems)


def test_ip_twice_on_one_host_is_named_once_per_host_and_across_hosts_by_owner():
    same_host = fleet(pmta1={"powermta_vmtas": [
        {"name": "a", "ip": "203.0.113.1", "hostname": "a.example.com", "pool": "transactional"},
        {"name": "b", "ip": "203.0.113.1", "hostname": "b.example.com", "pool": "transactional"}]})
    _model, problems = build_fleet_model(same_host)
    assert problems == ["pmta1: powermta_vmtas item b: several vMTAs use the same IP 203.0.113.1 (a and b); give "
                        "each vMTA its own IP"]
    across = fleet(pmta1={}, pmta2={"powermta_vmtas": [
        {"name": "x", "ip": "203.0.113.10", "hostname": "x.example.com", "pool": "transactional"}]})
    _model, problems = build_fleet_model(across)
    assert len(problems) == 1 and "IP 203.0.113.10 is used by pmta1/tx-0, pmta2/x" in problems[0]


def test_pool_without_members_in_the_whole_fleet_is_refused():
    _model, problems = build_fleet_model(fleet(pmta1={"powermta_pools": [{"name": "transactional"}, {"name": "idle"}]}))
    assert problems == ["pool idle has no vMTA on any host of pmta_fleet: give a vMTA pool: idle, or remove the "
                        "pool from powermta_pools (or mark it state: absent)"]


def test_passwords_left_out_on_purpose_are_not_checked():
    hosts = fleet(pmta1={"powermta_injectors": [{"name": "m", "networks": ["198.51.100.0/28"]}]})
    _model, with_secrets = build_fleet_model(hosts)
    assert any("password must have 12+" in p for p in with_secrets)
    assert build_fleet_model(hosts, secrets=False)[1] == []


def test_check_item_normalizes_types():
    item, problems = check_item("vmtas", "powermta_vmtas", {"name": "a", "ip": " 2001:DB8::0:1 ",
                                                            "hostname": "A.Example.com.", "max_smtp_out": "20"})
    assert problems == []
    assert item["ip"] == "2001:db8::1" and item["hostname"] == "a.example.com" and item["max_smtp_out"] == 20


def test_host_problems_check_ips_on_interfaces_and_fact_settings():
    problems = host_problems("pmta1", {"powermta_hostname": "localhost", "powermta_spool_dirs": ["/var/spool/pmta"]},
                             [{"name": "a", "ip": "203.0.113.10"}, {"name": "b", "ip": "192.0.2.99"}],
                             ["203.0.113.10", "fe80::1%eth0"])
    assert problems[0] == "pmta1: powermta_hostname must be a FQDN, got 'localhost'"
    assert problems[1].startswith("pmta1: powermta_vmtas item b: IP 192.0.2.99 is not configured on pmta1")
    assert len(problems) == 2


def test_only_the_variables_the_model_needs_are_read():
    names = wanted_variables()
    assert "powermta_host_vmtas" in names and "host_tuning_sysctl" in names
    assert not any(name.startswith(("ansible_", "dns_", "warmup_")) for name in names)


def test_merge_by_name_refuses_a_name_twice_in_one_layer():
    with pytest.raises(LayerError, match="names 'a' twice"):
        merge_by_name([{"name": "a"}, {"name": "a", "x": 1}], layer_names=["powermta_vmtas"])


def test_warmup_files_for_warming_vmtas_and_their_pool_members():
    hosts = fleet(pmta1={"powermta_pools": [{"name": "transactional"}, {"name": "marketing"}], "powermta_vmtas": [
        {"name": "tx", "ip": "203.0.113.1", "hostname": "a.example.com", "pool": "transactional"},
        {"name": "mk-warm", "ip": "203.0.113.2", "hostname": "b.example.com", "pool": "marketing"},
        {"name": "mk-new", "ip": "203.0.113.3", "hostname": "c.example.com", "pool": "marketing", "warmup": True}]})
    model, problems = build_fleet_model(hosts)
    assert problems == []
    assert [item["name"] for item in model["hosts"]["pmta1"]["warmup_files"]] == ["", "mk-warm", "mk-new"]


def test_throttle_patterns_of_isp_policies_are_checked():
    hosts = fleet(pmta1={"powermta_isp_policies": [
        {"name": "example_isp", "domains": ["example.net"], "throttle_patterns": ["rate #5", "ok 4\\.7\\.0"]}]})
    _model, problems = build_fleet_model(hosts)
    assert problems == ["pmta1: powermta_isp_policies item example_isp: throttle_patterns 'rate #5' may not hold # "
                        "or a newline (write \\x23)"]
