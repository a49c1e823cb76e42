# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning with ownership: shared TXT values, the registry, SPF foreign terms, prune, adopt (no network)."""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import pytest
from ansible_collections.mailops.powermta.plugins.module_utils._dns import plan, registry
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as v

ZONE = dns.name.from_text("example.com.")
SEEDED = ["google-site-verification=abc123", "MS=ms48224614"]


def txt(*values, ttl=300):
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.TXT, ttl=ttl)
    for value in values:
        rdataset.add(v.txt_rdata(value))
    return rdataset


def records(*items):
    return v.normalize_records(list(items))


def spf(value, name="example.com"):
    return {"name": name, "type": "TXT", "values": [value], "shared": True}


def registry_rrset(entries_by_owner):
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.TXT, ttl=300)
    for owner, entries in entries_by_owner.items():
        for rdata in registry.registry_rdatas(owner, ZONE, entries):
            rdataset.add(rdata)
    return rdataset


def entries_of(rdataset):
    """``{owner: [entry strings]}`` of a registry RRset."""
    return {rd.strings[0].decode().split("owner=")[1]: [s.decode() for s in rd.strings[1:]] for rd in rdataset}


def run(wanted, before, owner="fleet", registry_entries=None, orphans=None, **kwargs):
    zones = {r.key: ZONE for r in wanted}
    current = registry_rrset(registry_entries) if registry_entries else None
    registries = {ZONE: registry.ZoneRegistry(ZONE, owner, current)}
    return plan.plan_changes(wanted, zones, before, {}, owner=owner, registries=registries, orphans=orphans or {},
                             **kwargs)


def values_of(rdataset):
    return sorted(v.txt_value(rd) for rd in rdataset)


def by_name(changes):
    return {(c.record.name.to_text(), c.registry): c for c in changes}


def test_shared_spf_keeps_other_values_and_their_ttl():
    (record,) = records(spf("v=spf1 ip4:192.0.2.10 -all"))
    changes = by_name(run([record], {record.key: txt(*SEEDED)}))
    apex = changes[("example.com.", False)]
    assert values_of(apex.after) == sorted(SEEDED + ["v=spf1 ip4:192.0.2.10 -all"])
    assert apex.after.ttl == 300 and apex.lost_values() == []
    entries = entries_of(changes[("_mailops-owner.example.com.", True)].after)
    assert list(entries) == ["fleet"] and len(entries["fleet"]) == 1
    assert entries["fleet"][0].startswith("@ TXT v=spf1 sha=")


def test_several_spf_values_become_exactly_one():
    (record,) = records(spf("v=spf1 ip4:192.0.2.10 -all"))
    before = txt(*SEEDED, "v=spf1 ip4:192.0.2.10 -all", "v=spf1 ip4:192.0.2.10/32 -all")
    (apex, _registry) = run([record], {record.key: before})
    assert [x for x in values_of(apex.after) if x.startswith("v=spf1")] == ["v=spf1 ip4:192.0.2.10 -all"]


def test_foreign_spf_terms_fail_by_name_or_are_kept():
    (record,) = records(spf("v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"))
    before = {record.key: txt(*SEEDED, "v=spf1 include:_spf.google.com ip4:192.0.2.10 ~all")}
    with pytest.raises(v.DnsOwnershipError, match="does not carry: include:_spf.google.com. Nothing was sent"):
        run([record], before)
    changes = run([record], before, spf_foreign_terms="keep")
    apex = by_name(changes)[("example.com.", False)]
    assert "v=spf1 include:_spf.google.com ip4:192.0.2.10 ip4:192.0.2.11 -all" in values_of(apex.after)
    (entry,) = entries_of(by_name(changes)[("_mailops-owner.example.com.", True)].after)["fleet"]
    assert entry.endswith(" keep=include:_spf.google.com")


def test_terms_the_fleet_wrote_are_not_foreign():
    """An IP leaving the fleet leaves the SPF: the registry digest says the value is the fleet's."""
    old = "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 -all"
    entry = registry.Entry(ZONE, dns.rdatatype.TXT, "v=spf1", registry.value_digest(old))
    (record,) = records(spf("v=spf1 ip4:192.0.2.10 -all"))
    (apex, _reg) = run([record], {record.key: txt(*SEEDED, old)}, registry_entries={"fleet": [entry]})
    assert values_of(apex.after) == sorted(SEEDED + ["v=spf1 ip4:192.0.2.10 -all"])
    # The same value edited by hand since: its extra term is foreign again.
    edited = "v=spf1 ip4:192.0.2.10 ip4:192.0.2.11 a:relay.example.org -all"
    with pytest.raises(v.DnsOwnershipError, match="a:relay.example.org"):
        run([record], {record.key: txt(edited)}, registry_entries={"fleet": [entry]})


def test_ranges_inside_the_fleets_spf_are_not_foreign():
    (record,) = records(spf("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/48 -all"))
    before = {record.key: txt("v=spf1 +ip4:192.0.2.10 ip6:2001:db8::1 -all")}
    assert run([record], before)  # no error
    with pytest.raises(v.DnsOwnershipError, match="-ip4:192.0.2.10"):
        run([record], {record.key: txt("v=spf1 -ip4:192.0.2.10 -all")})


def test_rrsets_the_fleet_did_not_write_are_not_replaced_unless_adopted():
    (record,) = records({"name": "hand.example.com", "type": "A", "values": ["192.0.2.10"]})
    before = {record.key: dns.rdataset.from_text("IN", "A", 300, "192.0.2.200")}
    with pytest.raises(v.DnsOwnershipError, match="hand.example.com. A exists with values the fleet did not "
                                                  "write: 192.0.2.200"):
        run([record], before)
    assert by_name(run([record], before, adopt=True))[("hand.example.com.", False)].action == "update"
    # A subset of what the fleet wants loses nothing: adopted silently.
    subset = {record.key: dns.rdataset.from_text("IN", "A", 600, "192.0.2.10")}
    assert by_name(run([record], subset))[("hand.example.com.", False)].action == "update"
    # Without an owner: the plain whole-RRset contract.
    assert plan.plan_changes([record], {record.key: ZONE}, before, {})[0].action == "update"


def test_prune_removes_only_what_the_owner_wrote():
    kept, gone = records({"name": "mta10.example.com", "type": "A", "values": ["192.0.2.10"]},
                         {"name": "mta11.example.com", "type": "A", "values": ["192.0.2.11"]})
    helo = "v=spf1 a -all"
    owned = [registry.Entry(kept.name, kept.rdtype), registry.Entry(gone.name, gone.rdtype),
             registry.Entry(gone.name, dns.rdatatype.TXT, "v=spf1", registry.value_digest(helo)),
             registry.Entry(dns.name.from_text("edited.example.com."), dns.rdatatype.TXT, "v=spf1",
                            registry.value_digest(helo))]
    registry_entries = {"fleet": owned,
                        "other": [registry.Entry(dns.name.from_text("theirs.example.com."), dns.rdatatype.A)]}
    orphans = {gone.key: gone.rdataset, (gone.name, dns.rdatatype.TXT): txt("MS=x", helo),
               (dns.name.from_text("edited.example.com."), dns.rdatatype.TXT): txt("v=spf1 a mx -all")}
    warnings = []
    changes = run([kept], {kept.key: kept.rdataset}, registry_entries=registry_entries, orphans=orphans,
                  prune=True, warnings=warnings)
    by_type = {(c.record.name.to_text(), dns.rdatatype.to_text(c.record.rdtype)): c for c in changes}
    assert by_type[("mta11.example.com.", "A")].action == "delete"
    assert values_of(by_type[("mta11.example.com.", "TXT")].after) == ["MS=x"]
    assert ("edited.example.com.", "TXT") not in by_type
    assert "edited.example.com." in warnings[0] and "changed after the fleet wrote it" in warnings[0]
    assert ("theirs.example.com.", "A") not in by_type
    assert entries_of(by_type[("_mailops-owner.example.com.", "TXT")].after) == {
        "fleet": ["mta10 A"], "other": ["theirs A"]}
    # prune=False: nothing is removed, the registry keeps its entries.
    assert run([kept], {kept.key: kept.rdataset}, registry_entries=registry_entries, orphans=orphans) == []


def test_absent_values_remove_only_those():
    (record,) = v.normalize_records([{"name": "example.com", "type": "TXT", "values": ["MS=ms48224614"],
                                      "state": "absent"}])
    (change,) = plan.plan_changes([record], {record.key: ZONE}, {record.key: txt(*SEEDED)}, {})
    assert values_of(change.after) == ["google-site-verification=abc123"]


def test_registry_round_trip_and_foreign_formats():
    entry = registry.Entry(dns.name.from_text("s1._domainkey.example.com."), dns.rdatatype.TXT, "v=dkim1", "ab" * 8,
                           keep=("include:_spf.example.org",))
    assert entry.to_text(ZONE) == "s1._domainkey TXT v=dkim1 sha=abababababababab keep=include:_spf.example.org"
    assert registry.parse_entry(entry.to_text(ZONE), ZONE) == entry
    assert registry.parse_entry("a NOPE", ZONE) is None
    (value,) = registry.registry_rdatas("fleet", ZONE, [entry])
    assert registry.owner_of(value) == "fleet"
    assert registry.owner_of(v.txt_rdata("heritage=external-dns,external-dns/owner=default")) is None
    many = [registry.Entry(dns.name.from_text("mta%d.example.com." % n), dns.rdatatype.A) for n in range(2500)]
    parts = registry.registry_rdatas("fleet", ZONE, many)
    assert len(parts) == 3 and all(len(b"".join(p.strings)) < 65535 for p in parts)
    assert len(registry.ZoneRegistry(ZONE, "fleet", registry_rrset({"fleet": many})).entries) == 2500
    with pytest.raises(v.DnsInputError, match="owner 'a b'"):
        registry.check_owner("a b")


def test_safety_counts_lost_values_not_rrsets():
    (record,) = records({"name": "example.com", "type": "A", "values": ["192.0.2.1"]})
    before = {record.key: dns.rdataset.from_text("IN", "A", 300, "192.0.2.1", "192.0.2.2", "192.0.2.3")}
    changes = plan.plan_changes([record], {record.key: ZONE}, before, {})
    with pytest.raises(v.DnsSafetyError, match="removes or replaces 2 existing values"):
        plan.check_safety(changes, max_changes=1, force=False)
    plan.check_safety(changes, max_changes=2, force=False)


def _apply(changes, shards):
    """The registry RRsets after ``changes`` (``{shard name: rdataset}`` updated in place)."""
    for change in changes:
        if change.registry:
            shards[change.record.name] = change.after
    return shards


def test_registry_of_many_names_is_sharded_and_a_change_rewrites_one_shard():
    many = records(*({"name": "mta%d.example.com" % n, "type": "A", "values": ["198.18.0.1"]} for n in range(3000)))
    first = run(many, {})
    registry_changes = [c for c in first if c.registry]
    assert len(registry_changes) == 16  # 3,000 names / 250 per shard -> 16 (a power of two)
    assert registry_changes[0].record.name == registry.registry_name(ZONE)
    assert registry_changes[1].record.name.to_text() == "_mailops-owner-1.example.com."
    assert all(len(b"".join(rd.strings)) < 20000 for c in registry_changes for rd in c.after)
    header = registry_changes[0].after[0].strings[0].decode()
    assert header == "heritage=mailops.powermta; owner=fleet; shards=16"
    stored = _apply(first, {})
    rdatasets = {shard: stored.get(registry.registry_name(ZONE, shard)) for shard in range(16)}
    again = registry.ZoneRegistry(ZONE, "fleet", rdatasets)
    assert again.shards == 16 and len(again.entries) == 3000
    zones = {r.key: ZONE for r in many}
    before = {r.key: r.rdataset for r in many}
    assert plan.plan_changes(many, zones, before, {}, owner="fleet", registries={ZONE: again}) == []
    fewer = plan.plan_changes(many[1:], zones, before, {}, owner="fleet", registries={ZONE: again}, prune=True,
                              orphans={many[0].key: many[0].rdataset})
    assert [(c.record.name.to_text(), c.action) for c in fewer if not c.registry] == [("mta0.example.com.", "delete")]
    assert len([c for c in fewer if c.registry]) == 1  # only the shard of mta0


def test_small_registries_keep_one_rrset_in_the_old_format_and_shards_shrink_back():
    few = records(*({"name": "mta%d.example.com" % n, "type": "A", "values": ["198.18.0.1"]} for n in range(250)))
    (change,) = [c for c in run(few, {}) if c.registry]
    assert change.record.name == registry.registry_name(ZONE)
    assert change.after[0].strings[0] == b"heritage=mailops.powermta; owner=fleet"
    entries = [registry.Entry(r.name, r.rdtype) for r in few]
    assert registry.choose_shards(entries, 1) == 1
    assert registry.choose_shards(entries[:10], 64) == 1  # far below the target: back to one
    assert registry.choose_shards(entries, 2) == 2  # fits: no churn
