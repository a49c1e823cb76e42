# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_verify logic over fixed zone data (the real-server path is in tests/integration)."""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

import dns.message
import dns.name
import dns.rrset
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import mail_records as builders
from ansible_collections.mailops.powermta.plugins.module_utils._dns import verify as v
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class FakeLookup:
    """Zone data as {(name, type): [values]}; TXT values are logical strings."""

    def __init__(self, data):
        self.data = {(n.rstrip(".").lower(), t): vals for (n, t), vals in data.items()}

    def _get(self, name, rdtype):
        return self.data.get((str(name).rstrip(".").lower(), rdtype), [])

    def txt(self, name):
        return list(self._get(name, "TXT"))

    def addresses(self, name):
        return [ipaddress.ip_address(a) for t in ("A", "AAAA") for a in self._get(name, t)]

    def rrset(self, name, rdtype):
        values = self._get(name, rdtype)
        if rdtype == "MX":
            return [SimpleNamespace(exchange=SimpleNamespace(to_text=lambda x=x: x)) for x in values]
        if rdtype == "PTR":
            return [SimpleNamespace(target=SimpleNamespace(to_text=lambda x=x: x)) for x in values]
        if rdtype == "CNAME":
            return [SimpleNamespace(rdtype=5) for _value in values]
        return values


def test_spf_evaluation_follows_include_a_mx_and_redirect():
    lookup = FakeLookup({
        ("example.com", "TXT"): ["v=spf1 ip4:192.0.2.0/28 include:_spf.example.com mx a:relay.example.com -all"],
        ("_spf.example.com", "TXT"): ["v=spf1 ip6:2001:db8::/64 -all"],
        ("example.com", "MX"): ["mx1.example.com."],
        ("mx1.example.com", "A"): ["198.51.100.7"],
        ("relay.example.com", "A"): ["203.0.113.9"],
        ("example.net", "TXT"): ["v=spf1 redirect=example.com"],
    })

    def check(ip, domain="example.com"):
        return v.SpfEvaluator(lookup).check(ip, domain)

    assert check("192.0.2.5") == "pass"
    assert check("2001:db8::40") == "pass"
    assert check("198.51.100.7") == "pass"
    assert check("203.0.113.9") == "pass"
    assert check("203.0.113.10") == "fail"
    assert check("192.0.2.5", "example.net") == "pass"
    assert v.count_spf_lookups(lookup, "example.com") == 3
    assert v.count_spf_lookups(lookup, "example.net") == 4


def test_spf_more_than_ten_lookups_is_permerror():
    data = {("example.com", "TXT"): ["v=spf1 " + " ".join("include:i%d.example.com" % n for n in range(11)) + " -all"]}
    data.update({("i%d.example.com" % n, "TXT"): ["v=spf1 -all"] for n in range(11)})
    lookup = FakeLookup(data)
    with pytest.raises(v.SpfPermError, match="more than 10"):
        v.SpfEvaluator(lookup).check("192.0.2.1", "example.com")
    verifier = v.Verifier(lookup)
    verifier.verify_spf("example.com", ["192.0.2.1"])
    results = {c["check"]: c for c in verifier.checks}
    assert results["spf_lookups"]["ok"] is False and "11 DNS lookups" in results["spf_lookups"]["detail"]
    assert results["spf_authorizes_ip"]["ok"] is False


def test_two_spf_records_fail():
    lookup = FakeLookup({("example.com", "TXT"): ["v=spf1 -all", "v=spf1 ip4:192.0.2.1 -all", "other"]})
    checks, failed = v.verify(lookup, [{"name": "example.com", "spf_ips": ["192.0.2.1"]}])
    assert [c["check"] for c in failed] == ["spf_record", "dmarc_policy"]
    assert "2 SPF" in failed[0]["detail"]


def test_dkim_dmarc_ptr_fcrdns():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    dkim_value = builders.dkim_record("example.com", "s1", pem)["values"][0]
    lookup = FakeLookup({
        ("example.com", "TXT"): ["v=spf1 ip4:192.0.2.10 -all"],
        ("s1._domainkey.example.com", "TXT"): [dkim_value],
        ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:d@example.com"],
        ("10.2.0.192.in-addr.arpa", "PTR"): ["mta10.example.com."],
        ("mta10.example.com", "A"): ["192.0.2.10"],
        ("mta10.example.com", "TXT"): ["v=spf1 a -all"],
        ("11.2.0.192.in-addr.arpa", "PTR"): ["mta11.example.com."],
        ("mta11.example.com", "A"): ["192.0.2.99"],
    })
    domain = {"name": "example.com", "spf_ips": ["192.0.2.10"], "dmarc_policy": "quarantine",
              "dkim": [{"selector": "s1", "public_key": pem}]}
    checks, failed = v.verify(lookup, [domain], [{"ip": "192.0.2.10", "hostname": "mta10.example.com"}])
    assert failed == [], failed
    assert {c["check"] for c in checks} == {"spf_record", "spf_lookups", "spf_authorizes_ip", "dkim_key",
                                            "dmarc_policy", "ptr", "fcrdns", "helo_spf"}

    stricter = dict(domain, dmarc_policy="reject", dkim=[{"selector": "s1", "public_key": other}])
    _checks, failed = v.verify(lookup, [stricter], [{"ip": "192.0.2.11", "hostname": "mta-x.example.com"}])
    details = {c["check"]: c["detail"] for c in failed}
    assert "differs from the key PowerMTA signs with" in details["dkim_key"]
    assert "weaker than the configured stage reject" in details["dmarc_policy"]
    assert "but the HELO name is mta-x.example.com" in details["ptr"]
    assert "resolves to 192.0.2.99" in details["fcrdns"]


def test_advisory_checks_do_not_fail():
    lookup = FakeLookup({("10.2.0.192.in-addr.arpa", "PTR"): ["mta10.example.com."],
                         ("mta10.example.com", "A"): ["192.0.2.10"]})
    checks, failed = v.verify(lookup, [], [{"ip": "192.0.2.10", "hostname": "mta10.example.com"}])
    helo = next(c for c in checks if c["check"] == "helo_spf")
    assert helo["ok"] is False and helo["required"] is False and failed == []


def test_verify_only_ptrs_are_advisory_and_say_what_to_ask_for():
    lookup = FakeLookup({
        ("mta30.example.net", "A"): ["203.0.113.30"], ("mta31.example.net", "A"): ["203.0.113.31"],
        ("31.113.0.203.in-addr.arpa", "PTR"): ["customer-31.provider.example."],
        ("10.2.0.192.in-addr.arpa", "PTR"): [],
    })
    requests = []
    ips = [{"ip": "203.0.113.30", "hostname": "mta30.example.net", "ptr": "verify"},
           {"ip": "203.0.113.31", "hostname": "mta31.example.net", "ptr": "verify"},
           {"ip": "192.0.2.10", "hostname": "mta10.example.com"}]
    checks, failed = v.verify(lookup, [], ips, provider_requests=requests)
    assert [(c["subject"], c["check"]) for c in failed] == [("192.0.2.10", "ptr")]
    advisory = {(c["subject"], c["check"]) for c in checks if not c["ok"] and not c["required"]}
    assert {("203.0.113.30", "ptr"), ("203.0.113.31", "ptr"), ("203.0.113.31", "fcrdns")} <= advisory
    assert requests == [
        {"ip": "203.0.113.30", "ptr_name": "30.113.0.203.in-addr.arpa", "wanted": "mta30.example.net.",
         "current": []},
        {"ip": "203.0.113.31", "ptr_name": "31.113.0.203.in-addr.arpa", "wanted": "mta31.example.net.",
         "current": ["customer-31.provider.example."]},
    ]


def _answer(name, rdtype, rcode=0, answer=()):
    query = dns.message.make_query(name, rdtype)
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    response.answer = [dns.rrset.from_text(*item) for item in answer]
    return response


def test_pipelined_answers_are_kept_as_resolve_would_give_them():
    lookup = v.Lookup("192.0.2.53")
    keep = lookup._keep
    keep("mta1.example.com", "A", dns.name.from_text("mta1.example.com"),
         _answer("mta1.example.com", "A", answer=[("mta1.example.com.", 300, "IN", "A", "192.0.2.1")]))
    keep("none.example.com", "TXT", dns.name.from_text("none.example.com"), _answer("none.example.com", "TXT", 3))
    keep("empty.example.com", "TXT", dns.name.from_text("empty.example.com"), _answer("empty.example.com", "TXT"))
    keep("www.example.com", "A", dns.name.from_text("www.example.com"), _answer("www.example.com", "A", answer=[
        ("www.example.com.", 300, "IN", "CNAME", "mta1.example.com."),
        ("mta1.example.com.", 300, "IN", "A", "192.0.2.1")]))
    keep("out.example.com", "A", dns.name.from_text("out.example.com"), _answer("out.example.com", "A", answer=[
        ("out.example.com.", 300, "IN", "CNAME", "elsewhere.example.org.")]))
    keep("broken.example.com", "A", dns.name.from_text("broken.example.com"), _answer("broken.example.com", "A", 2))
    assert [rd.to_text() for rd in lookup.cache[("mta1.example.com", "A")]] == ["192.0.2.1"]
    assert lookup.cache[("none.example.com", "TXT")] == [] and lookup.cache[("empty.example.com", "TXT")] == []
    assert [rd.to_text() for rd in lookup.cache[("www.example.com", "A")]] == ["192.0.2.1"]
    # A CNAME leaving the answer and a SERVFAIL are asked again the usual way (and reported from there).
    assert ("out.example.com", "A") not in lookup.cache and ("broken.example.com", "A") not in lookup.cache
    assert lookup.rrset("mta1.example.com.", "A") is lookup.cache[("mta1.example.com", "A")]  # no query sent
    assert lookup.queries == 0


def test_spf_is_parsed_once_and_ranges_match_by_number():
    terms, redirect = v._parsed_spf("v=spf1 ip4:198.18.0.0/23 -ip6:2001:db8::/32 ip4:bad include:x.example redirect=y")
    assert redirect == "y"
    assert [t[1] for t in terms] == ["ip4", "ip6", "ip4", "include"]
    assert terms[0][4] == (4, int(ipaddress.ip_address("198.18.0.0")), int(ipaddress.ip_address("198.18.1.255")))
    assert terms[1][0] == "-" and terms[2][4] is None
    lookup = FakeLookup({("example.com", "TXT"): ["v=spf1 ip4:198.18.0.0/23 ip4:bad -all"]})
    assert v.SpfEvaluator(lookup).check("198.18.1.7", "example.com") == "pass"
    with pytest.raises(v.SpfPermError, match="bad ip4 term"):
        v.SpfEvaluator(lookup).check("198.18.2.7", "example.com")
