"""powermta_bounce_mailbox: where processed bounces and complaint reports go on to (issue 21)."""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.items import bounce_mailbox
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import build_fleet_model, wanted_variables

DOMAINS = [{"name": "example.com", "bounce_domain": "Bounces.Example.com."}]


def test_no_mailbox_is_the_default_and_discards():
    assert bounce_mailbox({}, DOMAINS) == ({}, [])
    assert bounce_mailbox(None, DOMAINS) == ({}, [])


@pytest.mark.parametrize("host, port, spec", [
    ("198.51.100.25", 25, "[198.51.100.25]:25"),
    ("2001:db8::25", 2525, "[IPv6:2001:db8::25]:2525"),
    ("mx.mailbox.example.com.", "587", "mx.mailbox.example.com:587"),
])
def test_smtp_hosts_value_per_guide_3_3_10_89(host, port, spec):
    mailbox, problems = bounce_mailbox({"host": host, "port": port, "bounce_address": "bounce@bounces.example.com"},
                                       DOMAINS, ["returns.example.org"], "fbl@fbl.example.com")
    assert problems == []
    assert mailbox["smtp_hosts"] == spec
    assert mailbox["domains"] == ["bounces.example.com", "returns.example.org", "fbl.example.com"]


def test_fbl_address_at_a_bounce_domain_is_routed_once():
    mailbox, problems = bounce_mailbox({"host": "192.0.2.7"}, DOMAINS, [], "fbl@bounces.example.com")
    assert problems == [] and mailbox["domains"] == ["bounces.example.com"] and mailbox["port"] == 25


@pytest.mark.parametrize("value, needle", [
    ("192.0.2.7", "must be a dict"),
    ({"host": ""}, "host must be the mailbox's IP address or host name"),
    ({"host": "not a host"}, "host must be"),
    ({"host": "192.0.2.7", "port": 0}, "port must be a TCP port"),
    ({"host": "192.0.2.7", "port": "smtp"}, "port must be a TCP port"),
    ({"host": "192.0.2.7", "user": "x"}, "unknown key user"),
    ({"host": "192.0.2.7", "bounce_address": "news@example.com"},
     "bounce_address news@example.com must be an address at a bounce domain (bounces.example.com)"),
])
def test_bad_mailbox_is_one_line_naming_the_variable_and_the_fix(value, needle):
    mailbox, problems = bounce_mailbox(value, DOMAINS)
    assert mailbox == {}
    assert any(needle in text and text.startswith("powermta_bounce_mailbox") for text in problems), problems


def test_a_mailbox_needs_a_bounce_domain():
    _mailbox, problems = bounce_mailbox({"host": "192.0.2.7"}, [{"name": "example.com"}])
    assert any("no bounce domain" in text for text in problems)


def test_the_fleet_model_carries_it_per_host_and_names_the_host():
    assert "powermta_bounce_mailbox" in wanted_variables()
    base = {"powermta_domains": DOMAINS, "powermta_fbl_address": "fbl@fbl.example.com",
            "powermta_bounce_mailbox": {"host": "198.51.100.25", "bounce_address": "bounce@bounces.example.com"}}
    model, problems = build_fleet_model({"pmta1": base})
    assert not [p for p in problems if "bounce_mailbox" in p]
    assert model["hosts"]["pmta1"]["bounce_mailbox"]["smtp_hosts"] == "[198.51.100.25]:25"
    bad = dict(base, powermta_bounce_mailbox={"host": "198.51.100.25", "port": 70000})
    _model, problems = build_fleet_model({"pmta1": bad})
    assert any(p.startswith("pmta1: powermta_bounce_mailbox: port") for p in problems), problems
