# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gathering the mail DNS inputs from every host of the fleet (pure function, no Ansible)."""

from __future__ import annotations

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_fleet as f


def host(name, domains=(), vmtas=(), keys=()):
    return {"host": name, "domains": list(domains), "vmtas": list(vmtas), "dkim_keys": list(keys)}


def test_domains_of_every_host_not_only_the_first():
    model = f.gather_mail_dns([
        host("pmta1", [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_policy": "none"}]),
        host("pmta2", [{"name": "example.net", "dkim_selectors": ["s9"]},
                       {"name": "Example.COM.", "dkim_selectors": ["s2", "s1"], "dmarc_policy": "none"}]),
        host("pmta3"),
    ])
    assert model["domains"] == [
        {"name": "example.com", "dkim_selectors": ["s1", "s2"], "dmarc_policy": "none"},
        {"name": "example.net", "dkim_selectors": ["s9"]},
    ]


def test_conflicting_domain_settings_name_both_hosts():
    with pytest.raises(f.FleetGatherError, match=r"example.com: dmarc_policy is 'none' on host pmta1 but "
                                                 r"'reject' on host pmta2"):
        f.gather_mail_dns([host("pmta1", [{"name": "example.com", "dmarc_policy": "none"}]),
                           host("pmta2", [{"name": "example.com", "dmarc_policy": "reject"}])])


def test_vmtas_and_keys_of_every_host():
    model = f.gather_mail_dns([
        host("pmta1", vmtas=[{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com"}],
             keys=[{"domain": "example.com", "selector": "s1", "public_key_pem": "-----K1-----\nAAA\n"}]),
        host("pmta2", vmtas=[{"name": "b", "ip": "2001:DB8::2", "hostname": "b.example.com"}],
             keys=[{"domain": "example.com", "selector": "s1", "public_key_pem": "-----K1-----\r\nAAA"},
                   {"domain": "example.net", "selector": "s9", "public_key_pem": "K9"}]),
    ])
    assert [(v["name"], v["inventory_host"]) for v in model["vmtas"]] == [("a", "pmta1"), ("b", "pmta2")]
    assert [(k["domain"], k["selector"]) for k in model["dkim_keys"]] == [("example.com", "s1"), ("example.net", "s9")]


def test_different_keys_for_one_selector_and_one_ip_with_two_names_fail():
    with pytest.raises(f.FleetGatherError, match="s1._domainkey.example.com has different public keys on hosts "
                                                 "pmta1 and pmta2"):
        f.gather_mail_dns([host("pmta1", keys=[{"domain": "example.com", "selector": "s1", "public_key_pem": "A"}]),
                           host("pmta2", keys=[{"domain": "example.com", "selector": "s1", "public_key_pem": "B"}])])
    with pytest.raises(f.FleetGatherError, match="IP 192.0.2.1 is vMTA b on host pmta1"):
        f.gather_mail_dns([host("pmta1", vmtas=[{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com"},
                                                {"name": "b", "ip": "192.0.2.1", "hostname": "b.example.com"}])])
    with pytest.raises(f.FleetGatherError, match="not an IP address"):
        f.gather_mail_dns([host("pmta1", vmtas=[{"name": "a", "ip": "nope", "hostname": "a.example.com"}])])
