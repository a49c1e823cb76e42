from ansible_collections.mailops.powermta.plugins.module_utils._fleet.checks import fleet_problems


def view(**overrides):
    base = {
        "vmtas": [{"name": "tx-01", "ip": "203.0.113.10", "pool": "transactional"}],
        "pools": ["transactional"],
        "domains": [{"name": "example.com", "dkim_selectors": ["s2026a"]}],
        "dkim_sign": True,
        "dkim_key_source": "controller",
        "package_given": True,
        "license_given": True,
    }
    base.update(overrides)
    return base


def test_consistent_fleet_has_no_problems():
    other = view(vmtas=[{"name": "tx-02", "ip": "203.0.113.20", "pool": "transactional"}])
    assert fleet_problems({"pmta1": view(), "pmta2": other}) == []


def test_ip_on_two_hosts_names_both_owners():
    problems = fleet_problems({"pmta1": view(), "pmta2": view()})
    assert len(problems) == 1
    assert "203.0.113.10" in problems[0] and "pmta1/tx-01" in problems[0] and "pmta2/tx-01" in problems[0]
    assert "powermta_vmtas" in problems[0]


def test_ipv6_spellings_are_the_same_ip():
    a = view(vmtas=[{"name": "a", "ip": "2001:db8::10", "pool": "transactional"}])
    b = view(vmtas=[{"name": "b", "ip": "2001:DB8:0::10", "pool": "transactional"}])
    assert any("2001:db8::10" in p for p in fleet_problems({"h1": a, "h2": b}))


def test_unknown_pool_names_host_vmta_and_variable():
    (problem,) = fleet_problems({"pmta1": view(pools=["marketing"])})
    assert problem.startswith("pmta1: vMTA tx-01 is in pool 'transactional'")
    assert "powermta_pools" in problem and "marketing" in problem


def test_domain_without_selector_only_when_signing():
    unsigned = view(domains=[{"name": "example.net"}])
    (problem,) = fleet_problems({"pmta1": unsigned})
    assert "example.net" in problem and "powermta_dkim_sign" in problem
    assert fleet_problems({"pmta1": view(domains=[{"name": "example.net"}], dkim_sign=False)}) == []


def test_shared_selector_with_per_host_keys_is_refused():
    a = view(dkim_key_source="host")
    b = view(dkim_key_source="host", vmtas=[])
    (problem,) = fleet_problems({"pmta1": a, "pmta2": b})
    assert "s2026a" in problem and "powermta_dkim_key_source: controller" in problem


def test_missing_package_and_license_are_named():
    problems = fleet_problems({"pmta3": view(package_given=False, license_given=False)})
    assert any(p.startswith("pmta3: no PowerMTA package") for p in problems)
    assert any(p.startswith("pmta3: no PowerMTA license") and "powermta_license_src" in p for p in problems)
