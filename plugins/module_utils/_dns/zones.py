# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone reading: which zone holds each name, and the RRsets there now (pipelined queries or AXFR).

PRIVATE to the collection: no compatibility promise outside it.
The parsing helpers (``zone_of_answer``, ``rdataset_in_answer``, ``zone_data``) are pure functions over
``dns.message`` answers, unit-tested on answers recorded from BIND 9.
"""

from __future__ import annotations

from .values import (
    DnsError,
    DnsInputError,
    absolute_name,
    hashed_name,
    rcode_error,
)

try:
    import dns.flags
    import dns.name
    import dns.rcode
    import dns.rdataset
    import dns.rdatatype
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

# With at least this many records in one zone, one AXFR is cheaper than a query per record.
AXFR_MIN_RECORDS = 32


def zone_of_answer(response, name):
    """The zone named by an authoritative answer: SOA (negative) or NS (positive) owner in AUTHORITY."""
    for rrset in response.authority:
        if rrset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS) and name.is_subdomain(rrset.name):
            return hashed_name(rrset.name)
    return None


def rdataset_in_answer(response, name, rdtype):
    """``(rdataset or None, cname target or None)`` of ``name``/``rdtype`` in an answer."""
    current, cname = None, None
    for rrset in response.answer:
        if rrset.name != name:
            continue
        if rrset.rdtype == rdtype:
            current = rrset  # an RRset is an Rdataset (with its name)
        elif rrset.rdtype == dns.rdatatype.CNAME:
            cname = rrset[0].target.to_text()
    return current, cname


def add_rrset(data, rrset):
    """Add an RRset of a transfer to ``{name: {rdtype: rdataset}}``."""
    by_type = data.setdefault(rrset.name, {})
    rdataset = by_type.get(rrset.rdtype)
    if rdataset is None:
        by_type[rrset.rdtype] = rrset  # the answer's own RRset (an Rdataset): no copy, no hashing again
    else:
        rdataset.update(rrset)  # an RRset split over several messages of the transfer


def zone_data(messages):
    """``{name: {rdtype: rdataset}}`` from the messages of one AXFR (SOA left out)."""
    data = {}
    for message in messages:
        for rrset in message.answer:
            if rrset.rdtype != dns.rdatatype.SOA:
                add_rrset(data, rrset)
    return data


def below_delegation(name, apex, data):
    """True when ``name`` is at or below a delegation (NS) inside the zone ``apex``."""
    candidate = name
    while candidate != apex and candidate.is_subdomain(apex):
        if dns.rdatatype.NS in data.get(candidate, {}):
            return True
        candidate = candidate.parent()
    return False


class ZoneReader:
    """Reads the current state of wanted records through a ``DnsTransport``; caches zone apexes."""

    def __init__(self, client):
        self.client = client
        self._zones = {}
        self.transferred = {}  # apex -> zone data of the AXFRs made by read()

    def find_zone(self, name):
        """The zone holding ``name`` on this server, by walking SOA queries up the name."""
        candidate = name
        tried = []
        while True:
            if candidate in self._zones:
                zone = self._zones[candidate]
                break
            response = self.client.query(candidate, dns.rdatatype.SOA)
            tried.append(candidate)
            rcode = response.rcode()
            zone = None
            if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                for rrset in response.answer:
                    if rrset.rdtype == dns.rdatatype.SOA and rrset.name == candidate:
                        zone = hashed_name(candidate)
                # Below the apex BIND puts the zone's SOA in AUTHORITY; at a CNAME only the CNAME comes back.
                for rrset in response.authority:
                    if zone is None and rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                        zone = hashed_name(rrset.name)
            if zone is not None:
                break
            if candidate == dns.name.root:
                raise DnsError(
                    "no zone on %s port %s contains %s (every SOA query up to the root was answered %s): "
                    "the server is not authoritative for it; check the name or the server"
                    % (self.client.server, self.client.port, name.to_text(), dns.rcode.to_text(rcode)),
                    rcode="NOTAUTH",
                )
            candidate = candidate.parent()
        for seen in tried:
            self._zones[seen] = zone
        return zone

    def read(self, records, zone=None, method="auto"):
        """Current RRsets of ``records``: ``(zones, before, cnames)``.

        ``method``: ``query`` asks one pipelined query per record; ``axfr`` transfers each zone
        (TSIG-signed; falls back to queries where the server refuses); ``auto`` transfers zones that
        receive at least ``AXFR_MIN_RECORDS`` records and queries the rest.
        """
        if method not in ("auto", "query", "axfr"):
            raise DnsInputError("read_method must be auto, query or axfr, got %r" % method)
        if method == "query" or (method == "auto" and len(records) < AXFR_MIN_RECORDS):
            return self._read_by_query(records, zone)
        zone_name = absolute_name(zone, "zone") if zone else None
        zone_of = self._guess_zones(records, method) if zone_name is None else {r.key: zone_name for r in records}
        by_zone = {}
        for record in records:
            by_zone.setdefault(zone_of.get(record.key), []).append(record)
        zones, before, cnames = {}, {}, {}
        rest = list(by_zone.pop(None, []))
        wanted = [apex for apex, members in by_zone.items() if method == "axfr" or len(members) >= AXFR_MIN_RECORDS]
        transferred = self.client.transfer_many(wanted)
        self.transferred.update({apex: data for apex, data in transferred.items() if data is not None})
        for apex, members in by_zone.items():
            data = transferred.get(apex)
            if data is None:
                rest.extend(members)
                continue
            cuts = {name for name, types in data.items() if dns.rdatatype.NS in types and name != apex}
            for record in members:
                if cuts and below_delegation(record.name, apex, data):
                    rest.append(record)
                    continue
                at_name = data.get(record.name, {})
                zones[record.key] = apex
                before[record.key] = at_name.get(record.rdtype)
                if record.rdtype != dns.rdatatype.CNAME and dns.rdatatype.CNAME in at_name:
                    cnames[record.key] = at_name[dns.rdatatype.CNAME][0].target.to_text()
                elif record.rdtype == dns.rdatatype.CNAME and record.rdataset is not None:
                    types = sorted(dns.rdatatype.to_text(t) for t in at_name
                                   if t not in (dns.rdatatype.CNAME, dns.rdatatype.RRSIG, dns.rdatatype.NSEC))
                    if types:
                        cnames[record.key] = "other data (%s)" % ", ".join(types)
        if rest:
            more = self._read_by_query(rest, zone)
            for mapping, extra in zip((zones, before, cnames), more, strict=True):
                mapping.update(extra)
        return zones, before, cnames

    def _guess_zones(self, records, method="auto"):
        """Zone of each record from SOA queries for the distinct parent names (pipelined).

        Only the outermost parents are asked first; a deeper parent inside a zone that will be
        transferred takes that zone (``read`` re-checks it against delegations in the transfer).
        A name that is itself a zone apex, or whose parent is not served here, gets None and is
        read by query. A child zone on the same server must be delegated in its parent (NS), as
        DNS requires; such names are then read by query too (see ``_below_delegation``).
        """
        # Work on label tuples: far cheaper to hash and slice than dns.name.Name objects.
        def labels(name):
            folded = getattr(name, "_folded", None)  # values.HashedName keeps its lower-cased labels
            return folded if folded is not None else name.canonicalize().labels

        def ancestors(name_labels):
            return (name_labels[i:] for i in range(1, len(name_labels)))

        record_labels = [labels(r.name) if r.name != dns.name.root else None for r in records]
        parents = {nl[1:] for nl in record_labels if nl}
        outer = sorted(p for p in parents if not any(a in parents for a in ancestors(p)))
        found = {k.canonicalize().labels: v for k, v in self._soa_owners([dns.name.Name(p) for p in outer]).items()}
        names_below = {}
        for name_labels in record_labels:
            for ancestor in ancestors(name_labels or ()):
                if found.get(ancestor) is not None:
                    names_below[found[ancestor]] = names_below.get(found[ancestor], 0) + 1
                    break
        second = []
        for parent in sorted(parents - set(outer)):
            zone = next((found[a] for a in ancestors(parent) if a in found), None)
            if zone is not None and (method == "axfr" or names_below.get(zone, 0) >= AXFR_MIN_RECORDS):
                found[parent] = zone
            else:
                second.append(parent)
        found.update({k.canonicalize().labels: v
                      for k, v in self._soa_owners([dns.name.Name(p) for p in second]).items()})
        return {r.key: found.get(nl[1:]) if nl else None for r, nl in zip(records, record_labels, strict=True)}

    def _soa_owners(self, names):
        """``{name: zone apex or None}`` from pipelined SOA queries."""
        found = {}
        for name, response in zip(names, self.client.query_many([(n, dns.rdatatype.SOA) for n in names]), strict=True):
            found[name] = None
            if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not response.flags & dns.flags.AA:
                continue
            for rrset in response.answer + response.authority:
                if rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                    found[name] = hashed_name(rrset.name)
        return found

    def _read_by_query(self, records, zone=None):
        """Current RRsets of ``records``: ``(zones, before, cnames)``.

        ``zones`` maps key → zone, ``before`` key → rdataset or None, ``cnames`` key → why the name
        cannot hold the record (it is a CNAME, or a CNAME is wanted beside other data). One pipelined
        query per record; the zone comes from the same answer, or from an SOA walk when the server
        leaves the AUTHORITY section empty (``minimal-responses yes``).
        """
        zone_name = absolute_name(zone, "zone") if zone else None
        zones, before, cnames = {}, {}, {}
        responses = self.client.query_many([(record.name, record.rdtype) for record in records])
        for record, response in zip(records, responses, strict=True):
            rcode = response.rcode()
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                record_zone = zone_name or self.find_zone(record.name)
                raise rcode_error(rcode, record_zone, "query")
            current, cname = rdataset_in_answer(response, record.name, record.rdtype)
            if cname is not None:
                cnames[record.key] = cname
            record_zone = zone_name
            if record_zone is None:
                found = None if record.key in cnames else zone_of_answer(response, record.name)
                record_zone = found or self.find_zone(record.name)
            if not record.name.is_subdomain(record_zone):
                raise DnsInputError("%s is not inside zone %s" % (record.label(), record_zone.to_text()))
            if not response.flags & dns.flags.AA:
                raise DnsError(
                    "%s port %s is not authoritative for %s (answer without the AA flag): point server at the "
                    "primary of zone %s"
                    % (self.client.server, self.client.port, record.label(), record_zone.to_text()),
                    rcode="NOTAUTH",
                )
            zones[record.key] = record_zone
            before[record.key] = current
            if record.rdtype == dns.rdatatype.CNAME and record.rdataset is not None and current is None:
                other = self.client.query(record.name, dns.rdatatype.ANY)
                types = sorted({dns.rdatatype.to_text(r.rdtype) for r in other.answer if r.name == record.name})
                if types:
                    cnames[record.key] = "other data (%s)" % ", ".join(types)
        return zones, before, cnames
