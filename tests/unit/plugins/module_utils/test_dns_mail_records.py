# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mail record builders: pure logic, no DNS."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import dkim_key
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_records as b
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def pem_of(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa2048():
    return pem_of(rsa.generate_private_key(public_exponent=65537, key_size=2048))


VMTAS = [
    {"name": "a", "ip": "192.0.2.10", "hostname": "mta10.example.com", "inventory_host": "pmta1"},
    {"name": "b", "ip": "192.0.2.11", "hostname": "mta11.example.com", "inventory_host": "pmta1"},
    {"name": "c", "ip": "2001:db8::40", "hostname": "MTA40.example.net.", "inventory_host": "pmta2"},
]


def test_spf_collapses_adjacent_ips_and_never_uses_ptr():
    (record,) = b.spf_records("Example.COM.", ["192.0.2.10", "192.0.2.11", "2001:db8::40"])
    assert record == {"name": "example.com", "type": "TXT", "ttl": 3600, "shared": True,
                      "values": ["v=spf1 ip4:192.0.2.10/31 ip6:2001:db8::40 -all"]}
    with pytest.raises(b.RecordBuildError, match="ptr mechanism"):
        b.spf_records("example.com", ["192.0.2.1"], extra_terms=["ptr"])


def test_spf_splits_over_includes_and_counts_lookups():
    ips = ["203.0.113.%d" % n for n in range(0, 256, 2)]  # 128 non-adjacent addresses
    records = b.spf_records("example.com", ips, extra_terms=["include:_spf.example.net"])
    main, *parts = records
    assert main["values"][0].startswith("v=spf1 include:_spf.example.net include:_spf1.example.com ")
    assert main["values"][0].endswith(" -all")
    assert all(len(r["values"][0].encode()) <= b.SPF_MAX_LENGTH for r in records)
    published = {t for r in parts for t in r["values"][0].split() if t.startswith("ip4:")}
    assert published == {"ip4:%s" % ip for ip in ips}
    assert b.spf_lookup_count(main["values"][0].split()[1:]) == 1 + len(parts) <= 10


def test_spf_over_ten_lookups_is_refused():
    ips = ["203.0.113.%d" % n for n in range(0, 256, 2)] + ["198.51.100.%d" % n for n in range(0, 256, 2)]
    with pytest.raises(b.RecordBuildError, match="needs 11 DNS lookups"):
        b.spf_records("example.com", ips)


def test_dkim_record_from_rsa_and_ed25519(rsa2048):
    record = b.dkim_record("example.com", "s2026a", rsa2048)
    assert record["name"] == "s2026a._domainkey.example.com"
    value = record["values"][0]
    assert value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert len(value.encode()) > 255  # the module splits it, the builder gives the logical string
    assert dkim_key.key_info(rsa2048)[:2] == ("rsa", 2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed = b.dkim_record("example.com", "ed1", pem_of(ed_key))
    raw = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert ed["values"] == ["v=DKIM1; k=ed25519; p=%s" % base64.b64encode(raw).decode()]


def test_dkim_refuses_small_and_private_keys():
    small = pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(b.RecordBuildError, match="1024 bits"):
        b.dkim_record("example.com", "s", small, min_bits=2048)
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(b.RecordBuildError, match="PRIVATE key"):
        b.dkim_record("example.com", "s", private)


@pytest.mark.parametrize("policy", ["none", "quarantine", "reject"])
def test_dmarc_stages(policy):
    record = b.dmarc_record("example.com", policy, "dmarc@example.com", subdomain_policy="reject")
    assert record["values"] == ["v=DMARC1; p=%s; sp=reject; rua=mailto:dmarc@example.com" % policy]


def test_dmarc_requires_rua_and_a_known_policy():
    with pytest.raises(b.RecordBuildError, match="dmarc_rua of example.com is required"):
        b.dmarc_record("example.com", "none", None)
    with pytest.raises(b.RecordBuildError, match="none, quarantine, reject"):
        b.dmarc_record("example.com", "block", "mailto:d@example.com")


def test_address_and_ptr_records_including_ipv6_nibbles():
    assert b.address_records(VMTAS) == [
        {"name": "mta10.example.com", "type": "A", "ttl": 3600, "values": ["192.0.2.10"]},
        {"name": "mta11.example.com", "type": "A", "ttl": 3600, "values": ["192.0.2.11"]},
        {"name": "mta40.example.net", "type": "AAAA", "ttl": 3600, "values": ["2001:db8::40"]},
    ]
    ptrs = b.ptr_records(VMTAS)
    assert ptrs[0] == {"name": "10.2.0.192.in-addr.arpa", "type": "PTR", "ttl": 3600,
                       "values": ["mta10.example.com."]}
    assert ptrs[2]["name"] == "0.4.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    assert ptrs[2]["values"] == ["mta40.example.net."]


def test_one_ptr_per_ip():
    with pytest.raises(b.RecordBuildError, match="two hostnames"):
        b.ptr_records([{"name": "a", "ip": "192.0.2.1", "hostname": "a.example.com"},
                       {"name": "b", "ip": "192.0.2.1", "hostname": "b.example.com"}])


def test_mail_records_full_set(rsa2048):
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_policy": "quarantine",
                "dmarc_rua": "mailto:d@example.com", "bounce_domain": "bounces.example.com",
                "mta_sts_id": "2026a", "tls_rpt_rua": "tls@example.com"}]
    records = b.mail_records(domains, VMTAS, [{"domain": "example.com", "selector": "s1",
                                               "public_key_pem": rsa2048}])
    kinds = {(r["name"], r["type"]) for r in records}
    assert ("s1._domainkey.example.com", "TXT") in kinds and ("_dmarc.example.com", "TXT") in kinds
    assert ("_mta-sts.example.com", "TXT") in kinds and ("_smtp._tls.example.com", "TXT") in kinds
    assert ("mta40.example.net", "TXT") in kinds  # HELO SPF
    mx = next(r for r in records if r["type"] == "MX")
    assert mx["values"] == ["10 mta10.example.com.", "10 mta40.example.net."]  # first vMTA of each host
    assert records[0]["type"] in ("A", "AAAA")  # addresses first (BIND checks in-zone MX targets)


def test_mail_records_needs_the_dkim_key_unless_told_otherwise():
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_rua": "mailto:d@example.com"}]
    with pytest.raises(b.RecordBuildError, match="run the powermta role first"):
        b.mail_records(domains, VMTAS, [])
    assert not any("_domainkey" in r["name"] for r in b.mail_records(domains, VMTAS, [], require_dkim=False))


def test_hostname_equal_to_a_domain_clashes():
    domains = [{"name": "mta10.example.com", "dmarc_rua": "mailto:d@example.com"}]
    with pytest.raises(b.RecordBuildError, match="two records for mta10.example.com TXT"):
        b.mail_records(domains, VMTAS)


def test_verify_spec(rsa2048):
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_policy": "reject",
                "bounce_domain": "bounces.example.com"}]
    spec = b.verify_spec(domains, VMTAS, [{"domain": "example.com", "selector": "s1", "public_key_pem": rsa2048}])
    assert spec["domains"][0]["spf_ips"] == ["192.0.2.10", "192.0.2.11", "2001:db8::40"]
    assert spec["domains"][0]["dkim"] == [{"selector": "s1", "public_key": rsa2048}]
    assert spec["ips"][2] == {"ip": "2001:db8::40", "hostname": "mta40.example.net", "ptr": "publish"}


def test_ptr_verify_only_by_reverse_zone_ip_or_cidr(rsa2048):
    keys = [{"domain": "example.com", "selector": "s1", "public_key_pem": rsa2048}]
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_rua": "mailto:d@example.com"}]
    for verify_only in (["2.0.192.in-addr.arpa"], ["192.0.2.0/24"], ["192.0.2.10", "192.0.2.11."]):
        records = b.mail_records(domains, VMTAS, keys, ptr_verify_only=verify_only)
        ptrs = sorted(r["name"] for r in records if r["type"] == "PTR")
        assert ptrs == [b.reverse_name("2001:db8::40")], verify_only
        spec = b.verify_spec(domains, VMTAS, keys, ptr_verify_only=verify_only)
        assert [i["ptr"] for i in spec["ips"]] == ["verify", "verify", "publish"]
    assert not [r for r in b.mail_records(domains, VMTAS, keys, ptr="verify") if r["type"] == "PTR"]
    assert b.ptr_verify_names(VMTAS, "publish", ["8.b.d.0.1.0.0.2.ip6.arpa"]) == [b.reverse_name("2001:db8::40")]
    with pytest.raises(b.RecordBuildError, match="neither a reverse zone"):
        b.ptr_mode("192.0.2.10", "publish", ["example.com"])
    with pytest.raises(b.RecordBuildError, match="dns_ptr must be publish or verify"):
        b.ptr_mode("192.0.2.10", "maybe")


def test_txt_records_are_shared_others_are_not(rsa2048):
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_rua": "mailto:d@example.com",
                "bounce_domain": "bounces.example.com"}]
    records = b.mail_records(domains, VMTAS, [{"domain": "example.com", "selector": "s1", "public_key_pem": rsa2048}])
    assert {r["type"] for r in records if r.get("shared")} == {"TXT"}
    assert all(r.get("shared") for r in records if r["type"] == "TXT")


def _spf_ips_of(records, domain):
    """Every address the SPF of ``domain`` authorises, following its own _spf<n> includes."""
    by_name = {r["name"]: r for r in records if r["type"] == "TXT"}
    addresses, names = set(), [domain]
    while names:
        for term in by_name[names.pop()]["values"][0].split()[1:]:
            if term.startswith(("ip4:", "ip6:")):
                addresses |= {str(a) for a in ipaddress.ip_network(term[4:]).hosts()} \
                    if "/" in term else {str(ipaddress.ip_address(term[4:]))}
            elif term.startswith("include:") and term[8:] in by_name:
                names.append(term[8:])
    return addresses


def test_one_plan_the_verify_spec_checks_what_the_records_publish(rsa2048):
    """mail_plan: records, verify spec and PTR verify names from the same decisions; the filters' views agree."""
    many = [{"name": "v%d" % n, "ip": "198.51.100.%d" % n, "hostname": "mta%d.example.org" % n,
             "inventory_host": "pmta%d" % (n % 3)} for n in range(1, 120, 3)]
    vmtas = VMTAS + many
    keys = [{"domain": "example.com", "selector": "s1", "public_key_pem": rsa2048},
            {"domain": "example.net", "selector": "s2", "public_key": rsa2048}]
    domains = [{"name": "Example.com", "dkim_selectors": ["S1"], "dmarc_policy": "reject", "dmarc_rua": "d@example.com",
                "bounce_domain": "Bounces.Example.com."},
               {"name": "example.net", "dkim_selectors": ["s2", "s3"], "dmarc_rua": "d@example.net",
                "spf_ips": ["192.0.2.11", "2001:DB8::40"]}]
    plan = b.mail_plan(domains, vmtas, keys, require_dkim=False, ptr_verify_only=["198.51.100.0/28"])
    records, verify = plan["records"], plan["verify"]
    assert records == b.mail_records(domains, vmtas, keys, require_dkim=False, ptr_verify_only=["198.51.100.0/28"])
    assert verify == b.verify_spec(domains, vmtas, keys, ptr_verify_only=["198.51.100.0/28"])
    assert plan["ptr_verify_names"] == b.ptr_verify_names(vmtas, "publish", ["198.51.100.0/28"])
    for domain in verify["domains"]:
        # SPF: the verify spec's IPs are exactly those the published SPF (and its includes) authorises.
        assert _spf_ips_of(records, domain["name"]) == set(domain["spf_ips"]), domain["name"]
        # DKIM: a record for each selector with a key, the same key in the spec.
        for entry in domain["dkim"]:
            published = [r for r in records if r["name"] == "%s._domainkey.%s" % (entry["selector"], domain["name"])]
            assert bool(published) == ("public_key" in entry)
        # Bounce domain: the MX the spec checks is the one published.
        mx = [r["name"] for r in records if r["type"] == "MX" and r["name"].endswith(domain["name"])]
        assert mx == ([domain["bounce_domain"]] if "bounce_domain" in domain else [])
    assert [d["name"] for d in verify["domains"]] == ["example.com", "example.net"]
    assert verify["domains"][1]["spf_ips"] == ["192.0.2.11", "2001:db8::40"]
    assert [e["selector"] for e in verify["domains"][1]["dkim"]] == ["s2", "s3"]
    # PTR: a published PTR for each IP the spec marks publish; the verify-only ones are the excluded names.
    ptr_names = {r["name"] for r in records if r["type"] == "PTR"}
    assert ptr_names == {b.reverse_name(i["ip"]) for i in verify["ips"] if i["ptr"] == "publish"}
    assert set(plan["ptr_verify_names"]) == {b.reverse_name(i["ip"]) for i in verify["ips"] if i["ptr"] == "verify"}
    assert len(plan["ptr_verify_names"]) == 5  # 198.51.100.1, 4, 7, 10, 13


def test_the_plan_fails_as_the_records_do():
    domains = [{"name": "example.com", "dkim_selectors": ["s1"], "dmarc_rua": "mailto:d@example.com"}]
    with pytest.raises(b.RecordBuildError, match="run the powermta role first"):
        b.mail_plan(domains, VMTAS, [])
    with pytest.raises(b.RecordBuildError, match="SPF sending IP 'nope'"):
        b.mail_plan([dict(domains[0], spf_ips=["nope"])], VMTAS, require_dkim=False)
