"""DNSBL decision logic: names, return codes, health rules, zone and IP validation.

The end-to-end check against a real BIND 9 is tests/integration/test_warmup_dnsbl_check.py.
"""

import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.dnsbl import (
    DEFAULT_ZONES,
    ERROR,
    LISTED,
    NOT_LISTED,
    POLICY,
    DnsblInputError,
    Lookup,
    classify_answer,
    evaluate_health,
    is_spamhaus_style,
    normalize_ips,
    normalize_zones,
    query_name,
    reverse_label,
)

ZEN = normalize_zones(["zen.spamhaus.org"])[0]
SPAMCOP = normalize_zones(["bl.spamcop.net"])[0]


def test_reverse_labels_ipv4_and_fully_expanded_ipv6():
    assert reverse_label("203.0.113.66") == "66.113.0.203"
    assert query_name("127.0.0.2", "zen.spamhaus.org") == "2.0.0.127.zen.spamhaus.org."
    assert reverse_label("2001:db8::66") == ".".join("6600000000000000000000008bd01002")
    assert reverse_label("::ffff:7f00:2") == "2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20


def test_default_zones_leave_out_dead_lists():
    names = [z["zone"] for z in DEFAULT_ZONES]
    assert "zen.spamhaus.org" in names
    assert not [n for n in names if "sorbs" in n or "abuseat" in n or "msrbl" in n]


@pytest.mark.parametrize(
    "spec, lookup, status, codes",
    [
        (ZEN, Lookup("nxdomain"), NOT_LISTED, []),
        (ZEN, Lookup("answer", ["127.0.0.2"]), LISTED, ["127.0.0.2"]),
        (ZEN, Lookup("answer", ["127.0.0.10"]), POLICY, ["127.0.0.10"]),
        (ZEN, Lookup("answer", ["127.0.0.11", "127.0.0.4"]), LISTED, ["127.0.0.4", "127.0.0.11"]),
        (ZEN, Lookup("answer", ["127.255.255.252"]), ERROR, ["127.255.255.252"]),
        (ZEN, Lookup("answer", ["127.255.255.254"]), ERROR, ["127.255.255.254"]),
        (ZEN, Lookup("answer", ["127.255.255.255"]), ERROR, ["127.255.255.255"]),
        (ZEN, Lookup("answer", ["127.0.1.255"]), ERROR, ["127.0.1.255"]),
        (ZEN, Lookup("answer", ["192.0.2.1"]), ERROR, ["192.0.2.1"]),
        (ZEN, Lookup("error", error="timeout after 6s"), ERROR, []),
        (SPAMCOP, Lookup("answer", ["127.0.0.10"]), LISTED, ["127.0.0.10"]),  # not Spamhaus: no policy codes
        (SPAMCOP, Lookup("answer", ["127.255.255.254"]), ERROR, ["127.255.255.254"]),
    ],
)
def test_classify_answer(spec, lookup, status, codes):
    got_status, got_codes, detail = classify_answer(spec, lookup)
    assert (got_status, got_codes) == (status, codes)
    if status == ERROR:
        assert detail


def test_error_code_meanings_are_explained():
    assert "public or unattributable resolver" in classify_answer(ZEN, Lookup("answer", ["127.255.255.254"]))[2]
    assert "outside 127.0.0.0/8" in classify_answer(ZEN, Lookup("answer", ["192.0.2.1"]))[2]
    assert classify_answer(ZEN, Lookup("answer", ["127.0.0.10"]))[2] == "PBL: ISP-maintained policy listing"


@pytest.mark.parametrize(
    "listed, unlisted, usable, reason",
    [
        (Lookup("answer", ["127.0.0.2"]), Lookup("nxdomain"), True, "answer correctly"),
        (Lookup("nxdomain"), Lookup("nxdomain"), False, "127.0.0.2 is not listed"),
        (Lookup("answer", ["127.0.0.2"]), Lookup("answer", ["127.0.0.2"]), False, "lists everything"),
        (Lookup("answer", ["127.255.255.254"]), Lookup("answer", ["127.255.255.254"]), False, "public"),
        (Lookup("error", error="timeout"), Lookup("nxdomain"), False, "timeout"),
        (Lookup("answer", ["127.0.0.10"]), Lookup("nxdomain"), True, "answer correctly"),  # PBL code still "listed"
    ],
)
def test_health_rules(listed, unlisted, usable, reason):
    ok, text = evaluate_health(ZEN, 4, listed, unlisted)
    assert ok is usable and reason in text


def test_zone_normalisation_and_policy_defaults():
    zones = normalize_zones(["ZEN.spamhaus.org.", {"zone": "bl.example.test", "ipv6": False, "policy_codes":
                             ["127.0.0.5"], "error_codes": ["127.0.0.99"]}, "zen.spamhaus.org"])
    assert [z["zone"] for z in zones] == ["zen.spamhaus.org", "bl.example.test"]
    assert zones[0]["policy_codes"] == ["127.0.0.10", "127.0.0.11"] and zones[0]["ipv6"] is True
    assert zones[1]["policy_codes"] == ["127.0.0.5"] and zones[1]["ipv6"] is False
    assert "127.0.0.99" in zones[1]["error_codes"] and "127.255.255.254" in zones[1]["error_codes"]
    assert is_spamhaus_style("key.zen.dq.spamhaus.net") and not is_spamhaus_style("bl.spamcop.net")


@pytest.mark.parametrize(
    "zones, message",
    [
        ([], "non-empty list"),
        ([5], r"zones\[0\] must be a zone name"),
        ([{"zone": "a.test", "ttl": 5}], "unknown keys ttl"),
        ([{"zone": "a.test", "policy_codes": ["ten"]}], "not an IPv4 return code"),
    ],
)
def test_bad_zones(zones, message):
    with pytest.raises(DnsblInputError, match=message):
        normalize_zones(zones)


def test_ips_are_validated_and_normalised():
    assert normalize_ips(["2001:DB8::66", "203.0.113.66", "2001:db8:0::66"]) == ["2001:db8::66", "203.0.113.66"]
    with pytest.raises(DnsblInputError, match="'mx.example.com' is not an IPv4 or IPv6"):
        normalize_ips(["mx.example.com"])
    with pytest.raises(DnsblInputError, match="non-empty list"):
        normalize_ips([])
