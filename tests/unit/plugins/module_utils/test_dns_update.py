# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dns_records planning: validation, TXT splitting, plan, safety, diff (no network)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdata
import dns.rdataset
import dns.rdatatype
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import apply, plan, sync
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as u
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(max_size=1200))
def test_txt_split_is_lossless_and_bounded(value):
    rdata = u.txt_rdata(value)
    assert all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings) == value.encode("utf-8")
    assert u.txt_value(rdata) == value


def test_long_txt_chunks():
    rdata = u.txt_rdata("x" * 600)
    assert [len(s) for s in rdata.strings] == [255, 255, 90]


def test_normalize_validates_with_clear_messages():
    with pytest.raises(u.DnsInputError, match=r"records\[0\].type 'SOA' is not supported"):
        u.normalize_records([{"name": "example.com", "type": "SOA", "values": ["x"]}])
    with pytest.raises(u.DnsInputError, match="values must be a non-empty list"):
        u.normalize_records([{"name": "example.com", "type": "A"}])
    with pytest.raises(u.DnsInputError, match="not valid A data"):
        u.normalize_records([{"name": "example.com", "type": "A", "values": ["192.0.2.300"]}])
    with pytest.raises(u.DnsInputError, match="put all values of an RRset in one item"):
        u.normalize_records([{"name": "a.example.com", "type": "A", "values": ["192.0.2.1"]},
                             {"name": "A.example.com.", "type": "A", "values": ["192.0.2.2"]}])
    (absent,) = u.normalize_records([{"name": "a.example.com", "type": "A", "values": ["192.0.2.1"]}],
                                    state="absent")
    assert absent.state == "absent" and [rd.to_text() for rd in absent.rdataset] == ["192.0.2.1"]
    with pytest.raises(u.DnsInputError, match="shared TXT values must start with their v= tag"):
        u.normalize_records([{"name": "example.com", "type": "TXT", "values": ["MS=ms1"], "shared": True}])
    with pytest.raises(u.DnsInputError, match="exactly one v=spf1"):
        u.normalize_records([{"name": "example.com", "type": "TXT", "shared": True,
                              "values": ["v=spf1 -all", "v=spf1 a -all"]}])


def test_targets_are_absolute_without_trailing_dot():
    (record,) = u.normalize_records([{"name": "10.2.0.192.in-addr.arpa", "type": "PTR",
                                      "values": ["mta1.example.com"]}])
    assert record.rdataset[0].target == dns.name.from_text("mta1.example.com.")


def make(name, rdtype, ttl, *values):
    return u.normalize_records([{"name": name, "type": rdtype, "ttl": ttl, "values": list(values)}])[0]


def rdataset(record):
    copy = dns.rdataset.Rdataset(record.rdataset.rdclass, record.rdataset.rdtype, ttl=record.rdataset.ttl)
    copy.update(record.rdataset)
    return copy


def test_plan_create_update_noop_and_ttl():
    zone = dns.name.from_text("example.com.")
    same = make("a.example.com", "A", 300, "192.0.2.1", "192.0.2.2")
    new = make("b.example.com", "A", 300, "192.0.2.3")
    ttl = make("c.example.com", "A", 600, "192.0.2.4")
    records = [same, new, ttl]
    zones = {r.key: zone for r in records}
    old_ttl = rdataset(make("c.example.com", "A", 300, "192.0.2.4"))
    before = {same.key: rdataset(make("a.example.com", "A", 300, "192.0.2.2", "192.0.2.1")), new.key: None,
              ttl.key: old_ttl}
    changes = plan.plan_changes(records, zones, before, {})
    assert [(c.record.name.to_text(), c.action) for c in changes] == [("b.example.com.", "create"),
                                                                      ("c.example.com.", "update")]
    diff = plan.diff_text(changes)
    assert diff["before"] == "c.example.com. 300 IN A 192.0.2.4\n"
    assert "b.example.com. 300 IN A 192.0.2.3" in diff["after"]
    assert changes[1].as_dict()["before"] == {"ttl": 300, "values": ["192.0.2.4"]}


def test_plan_refuses_beside_cname():
    record = make("www.example.com", "TXT", 300, "x")
    with pytest.raises(u.DnsInputError, match="is a CNAME"):
        plan.plan_changes([record], {record.key: dns.name.from_text("example.com.")}, {record.key: None},
                          {record.key: "elsewhere.example.net."})


def test_safety_counts_only_replacements_and_deletions():
    zone = dns.name.from_text("example.com.")
    records = [make("r%d.example.com" % n, "TXT", 300, "new") for n in range(3)]
    before = {r.key: rdataset(make(r.name.to_text(), "TXT", 300, "old")) for r in records}
    changes = plan.plan_changes(records, {r.key: zone for r in records}, before, {})
    with pytest.raises(u.DnsSafetyError, match="removes or replaces 3 existing values"):
        plan.check_safety(changes, max_changes=2, force=False)
    plan.check_safety(changes, max_changes=2, force=True)
    creations = plan.plan_changes(records, {r.key: zone for r in records}, {r.key: None for r in records}, {})
    plan.check_safety(creations, max_changes=0, force=False)


def test_update_prerequisites_are_the_before_state():
    client = sync.DnsClient("127.0.0.1", 53, "k", "c2VjcmV0")
    zone = dns.name.from_text("example.com.")
    changed = make("a.example.com", "A", 300, "192.0.2.9")
    created = make("b.example.com", "TXT", 300, "x")
    before = {changed.key: rdataset(make("a.example.com", "A", 300, "192.0.2.1")), created.key: None}
    changes = plan.plan_changes([changed, created], {changed.key: zone, created.key: zone}, before, {})
    message, wire = apply.build_update(zone, changes, client.keyring, client.keyname)
    # The wire as sent, decoded by dnspython (which also checks the TSIG signature over it).
    update = dns.message.from_wire(wire, keyring=client.keyring)
    assert update.had_tsig and update.id == message.id and update.zone[0].name == zone
    # A parsed UPDATE keeps the RR class NONE / ANY in ``deleting``.
    prerequisites = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), r.deleting or r.rdclass, r.ttl)
                     for r in update.prerequisite}
    assert ("a.example.com.", "A", 1, 0) in prerequisites  # value-dependent: exactly what we read, TTL 0
    assert [rd.to_text() for r in update.prerequisite if not r.deleting for rd in r] == ["192.0.2.1"]
    assert ("b.example.com.", "TXT", 254, 0) in prerequisites  # NONE class: RRset does not exist
    assert ("a.example.com.", "CNAME", 254, 0) in prerequisites  # nobody made it an alias meanwhile
    updates = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype), r.deleting or r.rdclass, r.ttl,
                tuple(rd.to_text() for rd in r)) for r in update.update}
    assert updates == {("a.example.com.", "A", 255, 0, ()), ("a.example.com.", "A", 1, 300, ("192.0.2.9",)),
                       ("b.example.com.", "TXT", 255, 0, ()), ("b.example.com.", "TXT", 1, 300, ('"x"',))}


def test_update_wire_compresses_names_and_splits_when_too_big():
    zone = dns.name.from_text("example.com.")
    records = [make("host%04d.example.com" % n, "TXT", 300, "v" * 200) for n in range(400)]
    changes = plan.plan_changes(records, {r.key: zone for r in records}, {r.key: None for r in records}, {})
    _message, wire = apply.build_update(zone, changes[:2])
    decoded = dns.message.from_wire(wire)
    names = sorted(r.name.to_text() for r in decoded.update)
    assert names == ["host0000.example.com."] * 2 + ["host0001.example.com."] * 2
    # Compressed: "example.com" is written once (a pointer after), host labels once per name.
    assert wire.count(b"\x07example\x03com") == 1 and wire.count(b"\x08host0000") == 1
    client = sync.DnsClient("127.0.0.1", 53, "k", "c2VjcmV0")
    parts = apply.batches(client, zone, changes)
    assert len(parts) > 1 and all(len(part_wire) <= u.MAX_UPDATE_BYTES for _m, part_wire in parts)
    added = [r.name.to_text() for _m, part_wire in parts
             for r in dns.message.from_wire(part_wire, keyring=client.keyring).update if not r.deleting]
    assert added == ["host%04d.example.com." % n for n in range(400)]


def test_key_checks():
    with pytest.raises(u.DnsInputError, match="key_secret is required"):
        sync.DnsClient("127.0.0.1", key_name="k")
    with pytest.raises(u.DnsInputError, match="not valid base64"):
        sync.DnsClient("127.0.0.1", key_name="k", key_secret="not base64!")


@given(st.lists(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True), min_size=1, max_size=5), st.booleans())
def test_hashed_names_equal_and_hash_like_dnspython_names(labels, trailing_dot):
    text = ".".join(labels) + ("." if trailing_dot else "")
    ours, theirs = u.absolute_name(text), dns.name.from_text(text)
    upper = u.absolute_name(text.upper())
    assert ours == theirs and theirs == ours and upper == theirs and upper == ours
    assert hash(ours) == hash(theirs) == hash(upper)
    assert {theirs: 1}[ours] == 1 and {ours: 1}[theirs] == 1
    assert ours.to_text() == theirs.to_text() and ours.labels == theirs.labels
    assert ours != dns.name.from_text("other." + text) and not (ours == text)


def test_fast_rdata_equals_the_tokenizer():
    for rdtype, value in [("A", "192.0.2.1"), ("AAAA", "2001:DB8::1"), ("PTR", "mta1.example.com"),
                          ("CNAME", "Mta1.Example.net."), ("NS", "ns1.example.test")]:
        expected = dns.rdata.from_text(1, dns.rdatatype.from_text(rdtype), value, origin=dns.name.root,
                                       relativize=False)
        assert u.rdata_from_value(dns.rdatatype.from_text(rdtype), value, "w") == expected
    for rdtype, value in [("A", "192.0.2.300"), ("A", "1.2.3"), ("A", "::1"), ("AAAA", "2001:db8:::1")]:
        with pytest.raises(u.DnsInputError, match="not valid %s data" % rdtype):
            u.rdata_from_value(dns.rdatatype.from_text(rdtype), value, "w")


def test_rdata_wire_is_dnspython_uncompressed_wire():
    for rdtype, value in [("PTR", "Mta1.Example.com."), ("CNAME", "x.example.net."), ("NS", "ns1.example.test."),
                          ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("MX", "10 mx.example.com."),
                          ("TXT", "v=spf1 -all")]:
        rdata = u.rdata_from_value(dns.rdatatype.from_text(rdtype), value, "w")
        assert apply.rdata_wire(rdata) == rdata.to_wire()


def test_query_wire_is_a_signed_query_without_recursion():
    client = sync.DnsClient("127.0.0.1", 53, "k", "c2VjcmV0")
    name = u.absolute_name("Mta1.Example.com")
    wire, mac = client._query_wire(name, dns.rdatatype.SOA, 4711)
    query = dns.message.from_wire(wire, keyring=client.keyring)  # checks the TSIG signature
    assert query.had_tsig and query.mac == mac and query.id == 4711
    assert query.question[0].name == name and query.question[0].rdtype == dns.rdatatype.SOA
    assert not query.flags & dns.flags.RD and query.opcode() == dns.opcode.QUERY
    unsigned, no_mac = sync.DnsClient("127.0.0.1")._query_wire(name, dns.rdatatype.A, 1)
    assert no_mac is None and dns.message.from_wire(unsigned).question[0].rdtype == dns.rdatatype.A
