# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record-builder filters: fleet model collection and error wrapping."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.filter.dns_mail_records import FilterModule

FILTERS = FilterModule().filters()


def test_fleet_model_prefers_the_exported_fact_and_merges_layers_otherwise():
    hostvars = {
        "pmta1": {"powermta_effective_vmtas": [{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com"}],
                  "powermta_vmtas": [{"name": "ignored", "ip": "192.0.2.9", "hostname": "x.example.com"}],
                  "powermta_domains": [{"name": "example.com", "dmarc_policy": "none"}],
                  "powermta_host_domains": [{"name": "example.com", "dmarc_policy": "reject"}],
                  "powermta_dkim_public_keys": [{"domain": "example.com", "selector": "s1", "public_key_pem": "K"}]},
        "pmta2": {"powermta_vmtas": [{"name": "b", "ip": "192.0.2.2", "hostname": "b.example.com"},
                                     {"name": "c", "ip": "192.0.2.3", "hostname": "c.example.com"}],
                  "powermta_host_vmtas": [{"name": "c", "state": "absent"}]},
    }
    model = FILTERS["mail_fleet_model"](["pmta1", "pmta2"], hostvars)
    assert [(v["name"], v["inventory_host"]) for v in model["vmtas"]] == [("a", "pmta1"), ("b", "pmta2")]
    assert model["domains"] == [{"name": "example.com", "dmarc_policy": "reject"}]
    assert model["dkim_keys"] == [{"domain": "example.com", "selector": "s1", "public_key_pem": "K"}]


def test_builder_errors_become_filter_errors():
    with pytest.raises(AnsibleFilterError, match="dmarc_rua of example.com is required"):
        FILTERS["dmarc_record"]("example.com", "none", None)
    assert FILTERS["spf_records"](["192.0.2.1"], "example.com")[0]["values"] == ["v=spf1 ip4:192.0.2.1 -all"]
