"""One schema per item: roles/powermta/meta/argument_specs.yml declares exactly _fleet_items.SCHEMAS."""

from pathlib import Path

import pytest
import yaml
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_records as records
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.items import (
    LAYERS,
    SCHEMAS,
    check_item,
    spec_differences,
)

ROOT = Path(__file__).resolve().parents[4]
SPECS = yaml.safe_load((ROOT / "roles/powermta/meta/argument_specs.yml").read_text())["argument_specs"]
SPEC = SPECS["main"]["options"]


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_argument_spec_items_match_the_schema(kind):
    for variable in LAYERS[kind]:
        assert SPEC[variable]["type"] == "list" and SPEC[variable]["elements"] == "dict", variable
        assert spec_differences(kind, SPEC[variable]["options"]) == [], variable


def test_every_layered_list_of_the_spec_has_a_schema():
    described = {variable for variables in LAYERS.values() for variable in variables}
    item_lists = {name for name, spec in SPEC.items()
                  if spec.get("elements") == "dict" and "state" in spec.get("options", {})}
    assert item_lists == described


def test_a_drifted_spec_is_reported():
    options = dict(SPEC["powermta_domains"]["options"])
    options["bounce_mx"] = {"type": "str"}
    options["dkim"] = {"type": "bool"}
    del options["spf_ips"]
    assert spec_differences("domains", options) == [
        "domains: spf_ips is in _fleet_items.SCHEMAS (list) but not in the argument spec",
        "domains: dkim is in the argument spec but not in _fleet_items.SCHEMAS",
        "domains: bounce_mx is declared type=str elements=None, SCHEMAS says list (type=list elements=str)",
    ]


def test_bounce_mx_given_as_a_string_is_refused_by_name():
    _item, problems = check_item("domains", "powermta_domains", {"name": "example.com", "bounce_mx": "mx.example.com"})
    assert len(problems) == 1
    assert problems[0].startswith("powermta_domains item example.com: bounce_mx must be a list")


def test_bounce_mx_list_builds_the_mx():
    domain = {"name": "example.com", "bounce_domain": "bounces.example.com", "bounce_mx": ["mx1.example.com"],
              "dmarc_rua": "mailto:d@example.com"}
    item, problems = check_item("domains", "powermta_domains", domain)
    assert problems == []
    vmtas = [{"name": "v1", "ip": "192.0.2.10", "hostname": "v1.example.com"}]
    mx = [r for r in records.mail_records([item], vmtas, require_dkim=False) if r["type"] == "MX"]
    assert mx == [records.record("bounces.example.com", "MX", ["10 mx1.example.com."], records.DEFAULT_TTL)]


def test_one_exchange_as_a_string_is_one_exchange():
    assert records.mx_record("bounces.example.com", "mx1.example.com")["values"] == ["10 mx1.example.com."]


def test_spf_ips_are_checked_and_used():
    _item, problems = check_item("domains", "powermta_domains", {"name": "example.com", "spf_ips": ["192.0.2.300"]})
    assert problems == ["powermta_domains item example.com: spf_ips must list IP addresses (e.g. [203.0.113.10]), "
                        "not ['192.0.2.300']"]
    item, problems = check_item(
        "domains", "powermta_domains",
        {"name": "example.com", "spf_ips": [" 192.0.2.20 "], "dmarc_rua": "mailto:d@example.com"})
    assert problems == []
    vmtas = [{"name": "v1", "ip": "192.0.2.10", "hostname": "v1.example.com"}]
    spf = [r for r in records.mail_records([item], vmtas, require_dkim=False)
           if r["name"] == "example.com" and r["type"] == "TXT"]
    assert spf[0]["values"] == ["v=spf1 ip4:192.0.2.20 -all"]


def test_dmarc_subdomain_policy_is_checked():
    _item, problems = check_item("domains", "powermta_domains",
                                 {"name": "example.com", "dmarc_subdomain_policy": "strict"})
    assert problems == ["powermta_domains item example.com: dmarc_subdomain_policy must be one of none, quarantine, "
                        "reject, got 'strict'"]
