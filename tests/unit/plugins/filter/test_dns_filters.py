# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record-builder filters: fleet model collection and error wrapping."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.filter.dns import FilterModule

FILTERS = FilterModule().filters()


def test_builder_errors_become_filter_errors():
    with pytest.raises(AnsibleFilterError, match="dmarc_rua of example.com is required"):
        FILTERS["dns_dmarc_record"]("example.com", "none", None)
    assert FILTERS["dns_spf_records"](["192.0.2.1"], "example.com")[0]["values"] == ["v=spf1 ip4:192.0.2.1 -all"]


def test_dns_fleet_reads_the_fleet_model_and_the_keys_read_from_its_hosts():
    model = {
        "group": "pmta_fleet",
        "hosts": {"pmta1": {}, "pmta2": {}},
        "vmtas": [{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com", "inventory_host": "pmta1"},
                  {"name": "b", "ip": "2001:DB8::2", "hostname": "b.example.com", "inventory_host": "pmta2"}],
        "domains": [{"name": "example.com", "dmarc_policy": "none", "dkim_selectors": ["s1"],
                     "hosts": ["pmta1", "pmta2"], "fleet_dkim_selectors": ["s1", "s2"], "differs": {}}],
    }
    hostvars = {
        "pmta1": {"__dns_dkim_keys_read": [{"domain": "example.com", "selector": "s1", "public_key_pem": "K1"}],
                  # Read keys win over this run's facts for the same selector.
                  "powermta_dkim_public_keys": [{"domain": "example.com", "selector": "s1", "public_key_pem": "OLD"}]},
        "pmta2": {"powermta_dkim_public_keys": [{"domain": "example.com", "selector": "s2", "public_key_pem": "K2"}],
                  # Inventory layers are not merged again: the model is the one source of domains and vMTAs.
                  "powermta_host_vmtas": [{"name": "ignored", "ip": "192.0.2.9", "hostname": "x.example.com"}]},
    }
    fleet = FILTERS["dns_mail_fleet"](model, hostvars, read_keys_var="__dns_dkim_keys_read")
    assert fleet["domains"] == [{"name": "example.com", "dmarc_policy": "none", "dkim_selectors": ["s1", "s2"]}]
    assert [v["name"] for v in fleet["vmtas"]] == ["a", "b"]
    assert [(k["selector"], k["public_key_pem"]) for k in fleet["dkim_keys"]] == [("s1", "K1"), ("s2", "K2")]
    assert FILTERS["dns_mail_fleet"]({}, hostvars) == {"domains": [], "vmtas": [], "dkim_keys": []}
    # Without the argument, no role's variable is read: only the powermta role's exported facts.
    fleet = FILTERS["dns_mail_fleet"](model, hostvars)
    assert [(k["selector"], k["public_key_pem"]) for k in fleet["dkim_keys"]] == [("s1", "OLD"), ("s2", "K2")]


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["domains"][0].update(differs={"dmarc_policy": {"pmta1": "none", "pmta2": "reject"}}),
     "sending domain example.com: dmarc_policy differs between hosts \\(pmta1: 'none', pmta2: 'reject'\\)"),
    (lambda m: m["vmtas"][1].update(ip="192.0.2.1"),
     "IP 192.0.2.1 is vMTA a on host pmta1 .* and vMTA b on host pmta2 .*one PTR per IP"),
    (lambda m: m["vmtas"][1].update(ip="192.0.2.300"), "host pmta2: vMTA b has ip '192.0.2.300', not an IP address"),
    (lambda m: m.pop("domains"), "the fleet model has no domains list"),
])
def test_dns_fleet_refuses_what_dns_cannot_hold_once(change, message):
    model = {"hosts": {"pmta1": {}, "pmta2": {}},
             "vmtas": [{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com", "inventory_host": "pmta1"},
                       {"name": "b", "ip": "192.0.2.2", "hostname": "b.example.com", "inventory_host": "pmta2"}],
             "domains": [{"name": "example.com", "hosts": ["pmta1", "pmta2"], "differs": {}}]}
    change(model)
    with pytest.raises(AnsibleFilterError, match=message):
        FILTERS["dns_mail_fleet"](model, {})
