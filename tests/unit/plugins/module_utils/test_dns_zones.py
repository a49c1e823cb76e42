# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone reading on answers recorded from BIND 9 (dns_answers/record.py made them): no network."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import registry, zones
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as v

ANSWERS = Path(__file__).resolve().parent / "dns_answers"


def load(filename):
    return [dns.message.from_text(block) for block in (ANSWERS / filename).read_text().split("\n\n") if block.strip()]


RECORDED = {(m.question[0].name, m.question[0].rdtype): m for m in load("answers.txt")}


def name(text):
    return dns.name.from_text(text)


class Replay:
    """Answers questions with the recorded BIND answers; refuses zone transfers unless given."""

    server, port = "192.0.2.53", 53

    def __init__(self, transfers=None):
        self.asked = []
        self.transfers = transfers or {}

    def query(self, qname, rdtype):
        self.asked.append((qname.to_text(), dns.rdatatype.to_text(rdtype)))
        return RECORDED[(qname, rdtype)]

    def query_many(self, questions):
        return [self.query(qname, rdtype) for qname, rdtype in questions]

    def transfer_many(self, apexes):
        return {apex: self.transfers.get(apex) for apex in apexes}


def test_zone_of_an_answer_and_rdatasets():
    answer = RECORDED[(name("mta10.example.net."), dns.rdatatype.A)]
    assert zones.zone_of_answer(answer, name("mta10.example.net.")) == name("example.net.")
    current, cname = zones.rdataset_in_answer(answer, name("mta10.example.net."), dns.rdatatype.A)
    assert [rd.to_text() for rd in current] == ["192.0.2.10"] and cname is None
    current, cname = zones.rdataset_in_answer(RECORDED[(name("www.example.net."), dns.rdatatype.TXT)],
                                              name("www.example.net."), dns.rdatatype.TXT)
    assert current is None and cname == "mta10.example.net."


def test_find_zone_walks_up_and_caches():
    client = Replay()
    reader = zones.ZoneReader(client)
    assert reader.find_zone(name("mta10.example.net.")) == name("example.net.")
    assert reader.find_zone(name("nothere.example.net.")) == name("example.net.")
    assert reader.find_zone(name("example.net.")) == name("example.net.")
    assert client.asked == [("mta10.example.net.", "SOA"), ("nothere.example.net.", "SOA"), ("example.net.", "SOA")]
    reader.find_zone(name("mta10.example.net."))
    assert len(client.asked) == 3


def test_read_by_query_sees_values_cnames_and_zones():
    wanted = v.normalize_records([
        {"name": "example.net", "type": "TXT", "values": ["v=spf1 ip4:192.0.2.10 -all"], "shared": True},
        {"name": "mta10.example.net", "type": "A", "values": ["192.0.2.10"]},
        {"name": "www.example.net", "type": "TXT", "values": ["v=spf1 -all"]},
        {"name": "10.2.0.192.in-addr.arpa", "type": "PTR", "values": ["mta10.example.net."]},
    ])
    found_zones, before, cnames = zones.ZoneReader(Replay()).read(wanted, method="query")
    assert {k[0].to_text(): z.to_text() for k, z in found_zones.items()} == {
        "example.net.": "example.net.", "mta10.example.net.": "example.net.", "www.example.net.": "example.net.",
        "10.2.0.192.in-addr.arpa.": "2.0.192.in-addr.arpa."}
    apex = sorted(v.txt_value(rd) for rd in before[wanted[0].key])
    assert apex == ["MS=ms48224614", "google-site-verification=abc123", "v=spf1 ip4:192.0.2.10 -all"]
    assert cnames == {wanted[2].key: "mta10.example.net."}
    assert before[wanted[2].key] is None


def test_refused_query_names_the_zone_and_the_fix():
    wanted = v.normalize_records([{"name": "example.org", "type": "A", "values": ["192.0.2.1"]}])
    with pytest.raises(v.DnsError, match="refused the request for zone example.org"):
        zones.ZoneReader(Replay()).read(wanted, method="query", zone="example.org")


def test_zone_data_from_a_recorded_transfer_and_the_registry_in_it():
    data = zones.zone_data(load("axfr-example.net.txt"))
    apex = name("example.net.")
    assert dns.rdatatype.SOA not in data[apex]
    assert [rd.to_text() for rd in data[name("www.example.net.")][dns.rdatatype.CNAME]] == ["mta10.example.net."]
    found = registry.ZoneRegistry(apex, "fleet", data[registry.registry_name(apex)][dns.rdatatype.TXT])
    assert sorted((e.name.to_text(), dns.rdatatype.to_text(e.rdtype), e.tag) for e in found.entries.values()) == [
        ("example.net.", "TXT", "v=spf1"), ("mta10.example.net.", "A", None)]
    assert sorted(rd.strings for rd in found.others) == [(b"heritage=mailops.powermta; owner=other", b"mta99 A"),
                                                         (b"unrelated text",)]


def test_read_by_transfer_equals_read_by_query():
    apex = name("example.net.")
    data = zones.zone_data(load("axfr-example.net.txt"))
    wanted = v.normalize_records([{"name": "mta%d.example.net" % n, "type": "A", "values": ["192.0.2.10"]}
                                  for n in range(10, 10 + zones.AXFR_MIN_RECORDS)])

    class WithSoa(Replay):
        def query(self, qname, rdtype):
            if rdtype == dns.rdatatype.SOA and qname.is_subdomain(apex):
                return RECORDED[(name("mta10.example.net.") if qname != apex else apex, rdtype)]
            return super().query(qname, rdtype)

    client = WithSoa(transfers={apex: data})
    found_zones, before, _cnames = zones.ZoneReader(client).read(wanted, method="auto")
    assert set(found_zones.values()) == {apex}
    assert [rd.to_text() for rd in before[wanted[0].key]] == ["192.0.2.10"]
    assert all(before[r.key] is None for r in wanted[1:])
    assert not [q for q in client.asked if q[1] == "A"]  # nothing read by query
