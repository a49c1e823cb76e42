# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""RFC 2136 dynamic updates with TSIG: read RRsets, plan, apply atomically per zone.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python over dnspython (no Ansible imports), used by the ``dns_records``
module, the benchmark and the integration tests.

Flow: ``normalize_records`` → ``DnsClient.read`` (TSIG-signed queries over one
TCP connection) → ``plan_changes`` → ``check_safety`` → ``DnsClient.apply``
(one UPDATE per zone whose prerequisites are the observed before-state).
"""

from __future__ import annotations

import socket
import time
import traceback

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
    import dns.tsig
    import dns.tsigkeyring
    import dns.update
except ImportError:  # the modules report it with missing_required_lib("dnspython")
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None

# Empty without dnspython: the modules stop with missing_required_lib() before using it.
TSIG_ALGORITHMS = {}
if HAS_DNSPYTHON:
    TSIG_ALGORITHMS = {
        "hmac-md5": dns.tsig.HMAC_MD5,
        "hmac-sha1": dns.tsig.HMAC_SHA1,
        "hmac-sha224": dns.tsig.HMAC_SHA224,
        "hmac-sha256": dns.tsig.HMAC_SHA256,
        "hmac-sha384": dns.tsig.HMAC_SHA384,
        "hmac-sha512": dns.tsig.HMAC_SHA512,
    }

# Types the module manages. SOA is the server's job; NS at the apex is deliberately left out.
SUPPORTED_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT", "CAA")
TXT_CHUNK = 255
# With at least this many records in one zone, one AXFR is cheaper than a query per record.
AXFR_MIN_RECORDS = 32
# Split an UPDATE well below the 65535-byte TCP message limit (TSIG adds ~100 bytes).
MAX_UPDATE_BYTES = 60000


class DnsError(Exception):
    """A DNS operation failed; ``str()`` says what happened and what to do."""

    def __init__(self, message, rcode=None, zone=None):
        super().__init__(message)
        self.rcode = rcode
        self.zone = zone


class DnsInputError(DnsError):
    """The records given are invalid; nothing was sent."""


class DnsConcurrentChange(DnsError):
    """A prerequisite failed: the zone changed between read and write."""


class DnsSafetyError(DnsError):
    """The plan deletes or replaces more RRsets than allowed."""


# ---------------------------------------------------------------- values

def absolute_name(name, what="name"):
    """``dns.name.Name`` for an FQDN given with or without the trailing dot."""
    if not isinstance(name, str) or not name.strip():
        raise DnsInputError("%s must be a non-empty FQDN string, got %r" % (what, name))
    try:
        return dns.name.from_text(name.strip(), origin=dns.name.root)
    except dns.exception.DNSException as exc:
        raise DnsInputError("%s %r is not a valid DNS name: %s" % (what, name, exc)) from exc


def txt_rdata(value):
    """One TXT rdata from a logical string: UTF-8 bytes split into ≤255-byte strings."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    chunks = [data[i:i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def txt_value(rdata):
    """The logical string of a TXT rdata (its strings joined with nothing between)."""
    return b"".join(rdata.strings).decode("utf-8", errors="backslashreplace")


def rdata_from_value(rdtype, value, where):
    if rdtype == dns.rdatatype.TXT:
        if not isinstance(value, str):
            raise DnsInputError("%s: TXT values must be strings, got %r" % (where, value))
        return txt_rdata(value)
    try:
        # origin=root: a target written without the trailing dot is still absolute.
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, str(value), origin=dns.name.root, relativize=False)
    except (dns.exception.DNSException, ValueError) as exc:
        raise DnsInputError(
            "%s: value %r is not valid %s data: %s" % (where, value, dns.rdatatype.to_text(rdtype), exc)
        ) from exc


def value_text(rdata):
    if rdata.rdtype == dns.rdatatype.TXT:
        return txt_value(rdata)
    return rdata.to_text()


def rrset_view(rdataset):
    """JSON-friendly ``{ttl, values}`` (values sorted) or None."""
    if rdataset is None:
        return None
    return {"ttl": rdataset.ttl, "values": sorted(value_text(rd) for rd in rdataset)}


class Record:
    """One wanted RRset: absolute name, type, TTL and rdataset (None for state=absent)."""

    __slots__ = ("name", "rdtype", "ttl", "rdataset")

    def __init__(self, name, rdtype, ttl, rdataset):
        self.name = name
        self.rdtype = rdtype
        self.ttl = ttl
        self.rdataset = rdataset

    @property
    def key(self):
        return (self.name, self.rdtype)

    def label(self):
        return "%s %s" % (self.name.to_text(), dns.rdatatype.to_text(self.rdtype))


def normalize_records(records, state="present", default_ttl=3600):
    """Validate ``[{name, type, ttl, values}]`` into ``Record`` objects (no network)."""
    if not isinstance(records, list):
        raise DnsInputError("records must be a list of {name, type, ttl, values} dicts")
    result = []
    seen = {}
    for index, item in enumerate(records):
        where = "records[%d]" % index
        if not isinstance(item, dict):
            raise DnsInputError("%s must be a dict with name, type, values, got %r" % (where, item))
        unknown = set(item) - {"name", "type", "ttl", "values"}
        if unknown:
            raise DnsInputError("%s: unknown keys %s (allowed: name, type, ttl, values)" % (where, sorted(unknown)))
        name = absolute_name(item.get("name"), where + ".name")
        type_text = str(item.get("type", "")).upper()
        if type_text not in SUPPORTED_TYPES:
            raise DnsInputError(
                "%s.type %r is not supported; use one of %s" % (where, item.get("type"), ", ".join(SUPPORTED_TYPES))
            )
        rdtype = dns.rdatatype.from_text(type_text)
        where = "%s (%s %s)" % (where, name.to_text(), type_text)
        ttl = item.get("ttl", default_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
            raise DnsInputError("%s: ttl must be an integer 0..2147483647, got %r" % (where, ttl))
        values = item.get("values")
        if isinstance(values, str):
            values = [values]
        rdataset = None
        if state == "present":
            if not values:
                raise DnsInputError("%s: values must be a non-empty list for state=present" % where)
            rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype, ttl=ttl)
            for value in values:
                rdataset.add(rdata_from_value(rdtype, value, where))
            if rdtype == dns.rdatatype.CNAME and len(rdataset) > 1:
                raise DnsInputError("%s: a CNAME RRset holds exactly one value" % where)
        elif values:
            raise DnsInputError("%s: state=absent removes whole RRsets; leave values out" % where)
        key = (name, rdtype)
        if key in seen:
            raise DnsInputError(
                "%s: the same name and type is also records[%d]; put all values of an RRset in one item"
                % (where, seen[key])
            )
        seen[key] = index
        result.append(Record(name, rdtype, ttl, rdataset))
    return result


# ---------------------------------------------------------------- client

def _rcode_error(rcode, zone, action):
    text = dns.rcode.to_text(rcode)
    zone_text = zone.to_text() if isinstance(zone, dns.name.Name) else zone
    hints = {
        dns.rcode.NOTAUTH: "the server is not authoritative for zone %s (wrong server, or the zone is not "
        "configured there), or the TSIG key is not accepted for it" % zone_text,
        dns.rcode.REFUSED: "the server refused the request for zone %s: the zone does not allow updates, "
        "its update-policy/allow-update does not grant this key these names and types, or BIND's integrity "
        "checks failed (e.g. an in-zone MX/SRV target without A/AAAA; see the server log)" % zone_text,
        dns.rcode.NOTZONE: "a record name is outside zone %s; give the right zone or leave zone unset" % zone_text,
        dns.rcode.SERVFAIL: "the server failed to process the request for zone %s (see its log)" % zone_text,
        dns.rcode.FORMERR: "the server could not parse the request for zone %s" % zone_text,
    }
    if rcode in (dns.rcode.YXRRSET, dns.rcode.NXRRSET, dns.rcode.YXDOMAIN, dns.rcode.NXDOMAIN) and action == "update":
        return DnsConcurrentChange(
            "zone %s changed concurrently between read and write (prerequisite failed: %s); nothing was "
            "changed, re-run to plan against the new state" % (zone_text, text),
            rcode=text, zone=zone_text,
        )
    return DnsError(
        "DNS %s for zone %s failed with %s: %s" % (action, zone_text, text, hints.get(rcode, "see the server log")),
        rcode=text, zone=zone_text,
    )


class DnsClient:
    """TSIG-signed queries and UPDATEs to one primary server over TCP."""

    def __init__(self, server, port=53, key_name=None, key_secret=None, key_algorithm="hmac-sha256", timeout=10.0):
        self.server = server
        self.port = int(port)
        self.timeout = float(timeout)
        self.keyring = None
        self.keyname = None
        if key_name:
            if not key_secret:
                raise DnsInputError("key_secret is required when key_name is set")
            if key_algorithm not in TSIG_ALGORITHMS:
                raise DnsInputError(
                    "key_algorithm %r is not supported; use one of %s" % (key_algorithm, ", ".join(TSIG_ALGORITHMS))
                )
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: (TSIG_ALGORITHMS[key_algorithm], key_secret)})
            except Exception as exc:  # binascii.Error and friends
                raise DnsInputError("key_secret is not valid base64 for TSIG key %s: %s" % (key_name, exc)) from exc
            self.keyname = dns.name.from_text(key_name)
        self._sock = None
        self._zones = {}
        self.queries = 0
        self.transfers = 0
        self.updates = 0
        self.applied_zones = []  # zones whose UPDATE succeeded (for partial failures)

    # -- transport
    def _connect(self):
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.server, self.port), timeout=self.timeout)
            except TimeoutError as exc:
                raise DnsError("DNS server %s port %s did not answer within %ss (timeout)"
                               % (self.server, self.port, self.timeout), rcode="TIMEOUT") from exc
            except OSError as exc:
                raise DnsError("cannot connect to DNS server %s port %s over TCP: %s (is it running and reachable?)"
                               % (self.server, self.port, exc.strerror or exc), rcode="CONNECTION") from exc
        return self._sock

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _translate(self, exc, what):
        """A DnsError with a clear message for a transport or TSIG exception."""
        if isinstance(exc, dns.tsig.PeerBadKey):
            return DnsError("TSIG key %s was rejected by %s (BADKEY): the server does not know this key name "
                            "or it uses another algorithm; check key_name and key_algorithm"
                            % (self.keyname, self.server), rcode="BADKEY")
        if isinstance(exc, dns.tsig.PeerBadSignature):
            return DnsError("TSIG signature rejected by %s (BADSIG): key_secret does not match the server's "
                            "secret for key %s" % (self.server, self.keyname), rcode="BADSIG")
        if isinstance(exc, dns.tsig.PeerBadTime):
            return DnsError("TSIG time check failed at %s (BADTIME): the clocks of the controller and the DNS "
                            "server differ by more than the fudge (300s); fix NTP" % self.server, rcode="BADTIME")
        if isinstance(exc, dns.tsig.PeerError):
            return DnsError("TSIG error from %s: %s" % (self.server, exc), rcode="TSIG")
        self.close()
        if isinstance(exc, (dns.exception.Timeout, TimeoutError)):
            return DnsError("DNS server %s port %s did not answer the %s within %ss (timeout)"
                            % (self.server, self.port, what, self.timeout), rcode="TIMEOUT")
        if isinstance(exc, (EOFError, ConnectionResetError, BrokenPipeError)):
            return DnsError("DNS server %s port %s closed the connection during the %s: %s"
                            % (self.server, self.port, what, exc), rcode="CONNECTION")
        if isinstance(exc, OSError):
            return DnsError("cannot talk to DNS server %s port %s: %s (is it running and reachable?)"
                            % (self.server, self.port, exc.strerror or exc), rcode="CONNECTION")
        return DnsError("DNS %s to %s failed: %s" % (what, self.server, exc))

    _ERRORS = ((dns.exception.DNSException,) if HAS_DNSPYTHON else ()) + (OSError, EOFError)

    def _send(self, message, what):
        for attempt in (1, 2):
            sock = self._connect()
            try:
                return dns.query.tcp(message, self.server, timeout=self.timeout, port=self.port, sock=sock)
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                # The server closed an idle kept-alive connection: reconnect once.
                error = self._translate(exc, what)
                if attempt == 2:
                    raise error from exc
            except self._ERRORS as exc:
                raise self._translate(exc, what) from exc
        raise AssertionError("unreachable")

    def _new_query(self, name, rdtype):
        message = dns.message.make_query(name, rdtype)
        message.flags &= ~dns.flags.RD  # we ask the primary, not a resolver
        if self.keyring:
            message.use_tsig(self.keyring, keyname=self.keyname)
        return message

    def query(self, name, rdtype):
        self.queries += 1
        return self._send(self._new_query(name, rdtype), "query for %s %s" % (name, dns.rdatatype.to_text(rdtype)))

    def _read_exactly(self, sock, count):
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                raise EOFError("connection closed")
            data += chunk
        return data

    def query_many(self, questions, window=64):
        """Answers to ``[(name, rdtype)]`` in order, pipelined over one TCP connection (RFC 7766 §6.2.1)."""
        answers = [None] * len(questions)
        for first in range(0, len(questions), window):
            batch = list(enumerate(questions[first:first + window], start=first))
            pending = {}
            wire = []
            for index, (name, rdtype) in batch:
                message = self._new_query(name, rdtype)
                message.id = index & 0xFFFF
                data = message.to_wire()
                pending[message.id] = (index, message)
                wire.append(len(data).to_bytes(2, "big") + data)
            self.queries += len(batch)
            what = "pipelined queries (%s %s ...)" % (batch[0][1][0], dns.rdatatype.to_text(batch[0][1][1]))
            try:
                sock = self._connect()
                sock.sendall(b"".join(wire))
                while pending:
                    length = int.from_bytes(self._read_exactly(sock, 2), "big")
                    data = self._read_exactly(sock, length)
                    index, message = pending.pop(int.from_bytes(data[:2], "big"))
                    response = dns.message.from_wire(data, keyring=message.keyring, request_mac=message.mac)
                    if not message.is_response(response):
                        raise dns.exception.FormError("answer does not match its query")
                    answers[index] = response
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                # A server that closes after each answer: ask the rest one connection at a time.
                self.close()
                for index, message in pending.values():
                    try:
                        answers[index] = dns.query.tcp(message, self.server, timeout=self.timeout, port=self.port)
                    except self._ERRORS as again:
                        raise self._translate(again, what) from exc
            except KeyError as exc:
                self.close()
                raise DnsError("DNS server %s sent an answer to a query we did not ask" % self.server) from exc
            except self._ERRORS as exc:
                raise self._translate(exc, what) from exc
        return answers

    # -- zones
    def find_zone(self, name):
        """The zone holding ``name`` on this server, by walking SOA queries up the name."""
        candidate = name
        tried = []
        while True:
            if candidate in self._zones:
                zone = self._zones[candidate]
                break
            response = self.query(candidate, dns.rdatatype.SOA)
            tried.append(candidate)
            rcode = response.rcode()
            zone = None
            if rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                for rrset in response.answer:
                    if rrset.rdtype == dns.rdatatype.SOA and rrset.name == candidate:
                        zone = candidate
                # Below the apex BIND puts the zone's SOA in AUTHORITY; at a CNAME only the CNAME comes back.
                for rrset in response.authority:
                    if zone is None and rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                        zone = rrset.name
            if zone is not None:
                break
            if candidate == dns.name.root:
                raise DnsError(
                    "no zone on %s port %s contains %s (every SOA query up to the root was answered %s): "
                    "the server is not authoritative for it; check the name or the server"
                    % (self.server, self.port, name.to_text(), dns.rcode.to_text(rcode)),
                    rcode="NOTAUTH",
                )
            candidate = candidate.parent()
        for seen in tried:
            self._zones[seen] = zone
        return zone

    @staticmethod
    def _zone_in_response(response, name):
        """The zone named by an authoritative answer: SOA (negative) or NS (positive) owner in AUTHORITY."""
        for rrset in response.authority:
            if rrset.rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS) and name.is_subdomain(rrset.name):
                return rrset.name
        return None

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
        transferred = self.transfer_many(wanted)
        for apex, members in by_zone.items():
            data = transferred.get(apex)
            if data is None:
                rest.extend(members)
                continue
            cuts = {name for name, types in data.items() if dns.rdatatype.NS in types and name != apex}
            for record in members:
                if cuts and self._below_delegation(record.name, apex, data):
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
            return name.canonicalize().labels

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
        for name, response in zip(names, self.query_many([(n, dns.rdatatype.SOA) for n in names]), strict=True):
            found[name] = None
            if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or not response.flags & dns.flags.AA:
                continue
            for rrset in response.answer + response.authority:
                if rrset.rdtype == dns.rdatatype.SOA and name.is_subdomain(rrset.name):
                    found[name] = rrset.name
        return found

    @staticmethod
    def _below_delegation(name, apex, data):
        candidate = name
        while candidate != apex and candidate.is_subdomain(apex):
            if dns.rdatatype.NS in data.get(candidate, {}):
                return True
            candidate = candidate.parent()
        return False

    def transfer_many(self, apexes):
        """``{apex: zone data or None}``: AXFRs pipelined on the kept-alive connection.

        Falls back to one connection per transfer if the server closes the connection.
        """
        if not apexes:
            return {}
        states = {}
        wire = []
        for number, apex in enumerate(apexes):
            message = dns.message.make_query(apex, dns.rdatatype.AXFR)
            message.id = (0x8000 + number) & 0xFFFF
            if self.keyring:
                message.use_tsig(self.keyring, keyname=self.keyname)
            data = message.to_wire()
            wire.append(len(data).to_bytes(2, "big") + data)
            states[message.id] = {"apex": apex, "query": message, "ctx": None, "first": True, "soas": 0,
                                  "data": {}, "done": False, "refused": False}
        results = {}
        try:
            sock = self._connect()
            sock.sendall(b"".join(wire))
            while any(not state["done"] for state in states.values()):
                length = int.from_bytes(self._read_exactly(sock, 2), "big")
                data = self._read_exactly(sock, length)
                state = states[int.from_bytes(data[:2], "big")]
                query = state["query"]
                response = dns.message.from_wire(data, keyring=query.keyring, request_mac=query.mac, xfr=True,
                                                 tsig_ctx=state["ctx"], multi=not state["first"])
                state["ctx"] = response.tsig_ctx
                if state["first"] and response.rcode() != dns.rcode.NOERROR:
                    state["done"] = state["refused"] = True
                    continue
                state["first"] = False
                self._collect(state, response)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            self.close()
            return {apex: self.transfer(apex) for apex in apexes}
        except KeyError as exc:
            self.close()
            raise DnsError("DNS server %s sent a zone transfer we did not ask for" % self.server) from exc
        except self._ERRORS as exc:
            raise self._translate(exc, "zone transfers") from exc
        for state in states.values():
            results[state["apex"]] = None if state["refused"] else state["data"]
            self.transfers += 0 if state["refused"] else 1
        return results

    @staticmethod
    def _collect(state, response):
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                state["soas"] += 1
                if state["soas"] >= 2:
                    state["done"] = True
                continue
            by_type = state["data"].setdefault(rrset.name, {})
            rdataset = by_type.get(rrset.rdtype)
            if rdataset is None:
                rdataset = by_type[rrset.rdtype] = dns.rdataset.Rdataset(rrset.rdclass, rrset.rdtype, ttl=rrset.ttl)
            rdataset.update(rrset)

    def transfer(self, apex):
        """``{name: {rdtype: rdataset}}`` of a zone by TSIG-signed AXFR, or None when refused."""
        data = {}
        try:
            for message in dns.query.xfr(self.server, apex, port=self.port, keyring=self.keyring,
                                         keyname=self.keyname, timeout=self.timeout, relativize=False,
                                         lifetime=self.timeout * 6):
                for rrset in message.answer:
                    if rrset.rdtype == dns.rdatatype.SOA:
                        continue
                    rdataset = data.setdefault(rrset.name, {}).get(rrset.rdtype)
                    if rdataset is None:
                        rdataset = dns.rdataset.Rdataset(rrset.rdclass, rrset.rdtype, ttl=rrset.ttl)
                        data[rrset.name][rrset.rdtype] = rdataset
                    rdataset.update(rrset)
        except dns.query.TransferError:
            return None  # transfers not allowed for this key: read by query
        except self._ERRORS as exc:
            raise self._translate(exc, "zone transfer of %s" % apex.to_text()) from exc
        self.transfers += 1
        return data

    def _read_by_query(self, records, zone=None):
        """Current RRsets of ``records``: ``(zones, before, cnames)``.

        ``zones`` maps key → zone, ``before`` key → rdataset or None, ``cnames`` key → why the name
        cannot hold the record (it is a CNAME, or a CNAME is wanted beside other data). One pipelined
        query per record; the zone comes from the same answer, or from an SOA walk when the server
        leaves the AUTHORITY section empty (``minimal-responses yes``).
        """
        zone_name = absolute_name(zone, "zone") if zone else None
        zones, before, cnames = {}, {}, {}
        responses = self.query_many([(record.name, record.rdtype) for record in records])
        for record, response in zip(records, responses, strict=True):
            rcode = response.rcode()
            if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                record_zone = zone_name or self.find_zone(record.name)
                raise _rcode_error(rcode, record_zone, "query")
            current = None
            for rrset in response.answer:
                if rrset.name != record.name:
                    continue
                if rrset.rdtype == record.rdtype:
                    current = dns.rdataset.Rdataset(rrset.rdclass, rrset.rdtype, ttl=rrset.ttl)
                    current.update(rrset)
                elif rrset.rdtype == dns.rdatatype.CNAME:
                    cnames[record.key] = rrset[0].target.to_text()
            record_zone = zone_name
            if record_zone is None:
                found = None if record.key in cnames else self._zone_in_response(response, record.name)
                record_zone = found or self.find_zone(record.name)
            if not record.name.is_subdomain(record_zone):
                raise DnsInputError("%s is not inside zone %s" % (record.label(), record_zone.to_text()))
            if not response.flags & dns.flags.AA:
                raise DnsError(
                    "%s port %s is not authoritative for %s (answer without the AA flag): point server at the "
                    "primary of zone %s" % (self.server, self.port, record.label(), record_zone.to_text()),
                    rcode="NOTAUTH",
                )
            zones[record.key] = record_zone
            before[record.key] = current
            if record.rdtype == dns.rdatatype.CNAME and record.rdataset is not None and current is None:
                other = self.query(record.name, dns.rdatatype.ANY)
                types = sorted({dns.rdatatype.to_text(r.rdtype) for r in other.answer if r.name == record.name})
                if types:
                    cnames[record.key] = "other data (%s)" % ", ".join(types)
        return zones, before, cnames

    def serial(self, zone):
        response = self.query(absolute_name(zone, "zone") if isinstance(zone, str) else zone, dns.rdatatype.SOA)
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        raise DnsError("no SOA for %s at %s" % (zone, self.server))

    # -- apply
    def _build_update(self, zone, changes):
        update = dns.update.UpdateMessage(zone)
        if self.keyring:
            update.use_tsig(self.keyring, keyname=self.keyname)
        for change in changes:
            name, rdtype = change.record.name, change.record.rdtype
            # Prerequisites: the RRset is exactly what we read (value-dependent), or it does not exist.
            if change.before is not None:
                update.present(name, *change.before)  # rdatas, so the prerequisite TTL is 0 (RFC 2136 §2.4)
            else:
                update.absent(name, rdtype)
            if rdtype != dns.rdatatype.CNAME and change.after is not None:
                update.absent(name, dns.rdatatype.CNAME)  # nobody made it an alias meanwhile
            update.delete(name, rdtype)
            if change.after is not None:
                update.add(name, change.after)
        return update

    def _batches(self, zone, changes):
        """``[(update, wire)]``: rendered (and signed) once; split in halves while over the size limit."""
        update = self._build_update(zone, changes)
        try:
            wire = update.to_wire(max_size=65535)
        except dns.exception.TooBig:
            wire = None
        if wire is not None and (len(wire) <= MAX_UPDATE_BYTES or len(changes) == 1):
            return [(update, wire)]
        if len(changes) == 1:
            raise DnsInputError("the change of %s does not fit in one DNS message" % changes[0].record.label())
        half = len(changes) // 2
        return self._batches(zone, changes[:half]) + self._batches(zone, changes[half:])

    def _send_wire(self, update, wire, what):
        for attempt in (1, 2):
            sock = self._connect()
            try:
                dns.query.send_tcp(sock, wire)
                response, _received_at = dns.query.receive_tcp(sock, keyring=update.keyring, request_mac=update.mac)
                if not update.is_response(response):
                    raise dns.exception.FormError("answer does not match the UPDATE")
                return response
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                error = self._translate(exc, what)
                if attempt == 2:
                    raise error from exc
            except self._ERRORS as exc:
                raise self._translate(exc, what) from exc
        raise AssertionError("unreachable")

    def apply(self, plan, before_send=None):
        """Send the plan: one UPDATE per zone (split only if over 60 kB). Returns the UPDATE count."""
        by_zone = {}
        for change in plan:
            by_zone.setdefault(change.zone, []).append(change)
        sent = 0
        for zone, changes in by_zone.items():
            for update, wire in self._batches(zone, changes):
                if before_send is not None:
                    before_send(zone, update)
                self.updates += 1
                response = self._send_wire(update, wire, "UPDATE of zone %s" % zone.to_text())
                if response.rcode() != dns.rcode.NOERROR:
                    error = _rcode_error(response.rcode(), zone, "update")
                    if self.applied_zones:
                        error.args = ("%s (zones already updated in this run: %s)"
                                      % (error, ", ".join(z.to_text() for z in self.applied_zones)),)
                    raise error
                self.applied_zones.append(zone)
                sent += 1
        return sent


# ---------------------------------------------------------------- plan

class Change:
    __slots__ = ("zone", "record", "action", "before", "after")

    def __init__(self, zone, record, action, before, after):
        self.zone = zone
        self.record = record
        self.action = action
        self.before = before
        self.after = after

    def as_dict(self):
        return {
            "zone": self.zone.to_text(),
            "name": self.record.name.to_text(),
            "type": dns.rdatatype.to_text(self.record.rdtype),
            "action": self.action,
            "before": rrset_view(self.before),
            "after": rrset_view(self.after),
        }


def _same(current, wanted):
    return current is not None and wanted is not None and current == wanted and current.ttl == wanted.ttl


def plan_changes(records, zones, before, cnames):
    """Changes needed so the zone holds ``records``; refuses to write beside a CNAME."""
    plan = []
    for record in records:
        current = before.get(record.key)
        if record.rdataset is not None and record.key in cnames:
            raise DnsInputError(
                "refusing to write %s: the name is a CNAME (-> %s); DNS allows no other data beside a CNAME "
                "and BIND would silently drop it. Publish at the CNAME's target or remove the CNAME"
                % (record.label(), cnames[record.key])
            ) if record.rdtype != dns.rdatatype.CNAME else DnsInputError(
                "refusing to write %s: the name already holds %s" % (record.label(), cnames[record.key])
            )
        if record.rdataset is None:
            if current is not None:
                plan.append(Change(zones[record.key], record, "delete", current, None))
        elif current is None:
            plan.append(Change(zones[record.key], record, "create", None, record.rdataset))
        elif not _same(current, record.rdataset):
            plan.append(Change(zones[record.key], record, "update", current, record.rdataset))
    return plan


def check_safety(plan, max_changes, force):
    """Refuse to delete/replace more than ``max_changes`` existing RRsets unless ``force``."""
    risky = [c for c in plan if c.action in ("update", "delete")]
    if not force and len(risky) > max_changes:
        names = ", ".join(c.record.label() for c in risky[:5])
        raise DnsSafetyError(
            "the plan replaces or deletes %d existing RRsets (%s%s), more than max_changes=%d; nothing was sent. "
            "Check the records, then raise max_changes or set force: true"
            % (len(risky), names, ", ..." if len(risky) > 5 else "", max_changes)
        )


def diff_text(plan):
    """``{before, after}`` texts in zone-file form, only for the RRsets that change."""
    before_lines, after_lines = [], []
    for change in sorted(plan, key=lambda c: (c.zone.to_text(), c.record.name.to_text(), c.record.rdtype)):
        for rdataset, lines in ((change.before, before_lines), (change.after, after_lines)):
            if rdataset is None:
                continue
            for rdata in sorted(rdataset, key=lambda rd: rd.to_text()):
                lines.append("%s %d IN %s %s" % (change.record.name.to_text(), rdataset.ttl,
                                                 dns.rdatatype.to_text(rdataset.rdtype), rdata.to_text()))
    return {"before": "\n".join(before_lines) + ("\n" if before_lines else ""),
            "after": "\n".join(after_lines) + ("\n" if after_lines else "")}


def sync_records(client, records, state="present", zone=None, max_changes=100, force=False, check_mode=False,
                 before_send=None, read_method="auto", with_diff=False):
    """Read, plan, check safety and (unless ``check_mode``) apply. Returns a result dict."""
    started = time.monotonic()
    wanted = normalize_records(records, state=state)
    zones, before, cnames = client.read(wanted, zone=zone, method=read_method)
    plan = plan_changes(wanted, zones, before, cnames)
    check_safety(plan, max_changes, force)
    updates = 0
    if plan and not check_mode:
        updates = client.apply(plan, before_send=before_send)
    return {
        "changed": bool(plan),
        "changes": [c.as_dict() for c in plan],
        "diff": diff_text(plan) if with_diff else None,
        "zones": sorted({z.to_text() for z in zones.values()}),
        "updates_sent": updates,
        "queries_sent": client.queries,
        "zone_transfers": client.transfers,
        "elapsed": round(time.monotonic() - started, 3),
    }
