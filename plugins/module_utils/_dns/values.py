# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wanted records: validation, TXT splitting, errors shared by the whole ``_dns`` package.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

import re
import traceback

try:
    import dns.exception
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
    import dns.tsig
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


class DnsOwnershipError(DnsError):
    """The plan would overwrite or drop data the fleet did not write."""


def rcode_error(rcode, zone, action):
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


# ---------------------------------------------------------------- values

if HAS_DNSPYTHON:
    class HashedName(dns.name.Name):
        """A ``dns.name.Name`` that computes its (case-insensitive) hash once.

        dnspython hashes a name with a Python loop over every character on each use; records are
        looked up by ``(name, rdtype)`` in many dicts, which made hashing the largest single cost of
        planning a fleet's records. Equal to (and hashing like) the plain ``Name`` of the same text.
        """

        __slots__ = ("_hash", "_folded", "_text")

        def __init__(self, labels):
            super().__init__(labels)
            object.__setattr__(self, "_folded", tuple(label.lower() for label in self.labels))
            object.__setattr__(self, "_hash", dns.name.Name.__hash__(self))
            object.__setattr__(self, "_text", None)

        def to_text(self, omit_final_dot=False):
            if omit_final_dot:
                return super().to_text(True)
            if self._text is None:
                object.__setattr__(self, "_text", super().to_text())
            return self._text

        def __hash__(self):
            return self._hash

        def __eq__(self, other):
            if isinstance(other, HashedName):
                return self._hash == other._hash and self._folded == other._folded
            if isinstance(other, dns.name.Name):
                return self._folded == tuple(label.lower() for label in other.labels)
            return False

        def __ne__(self, other):
            return not self.__eq__(other)

# Plain host names (no escapes, no IDNA): split here rather than by dnspython's tokenizer.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_*-]{1,63}(?:\.[A-Za-z0-9_*-]{1,63})*\.?")


def absolute_name(name, what="name"):
    """``dns.name.Name`` for an FQDN given with or without the trailing dot."""
    if not isinstance(name, str) or not name.strip():
        raise DnsInputError("%s must be a non-empty FQDN string, got %r" % (what, name))
    text = name.strip()
    try:
        if len(text) < 254 and _PLAIN_NAME.fullmatch(text):
            return HashedName(tuple(label.encode("ascii") for label in text.rstrip(".").split(".")) + (b"",))
        return HashedName(dns.name.from_text(text, origin=dns.name.root).labels)
    except dns.exception.DNSException as exc:
        raise DnsInputError("%s %r is not a valid DNS name: %s" % (what, name, exc)) from exc


def hashed_name(name):
    """``name`` as a ``HashedName`` (for names used as keys, e.g. those parsed from answers)."""
    return name if isinstance(name, HashedName) else HashedName(name.labels)


def txt_rdata(value):
    """One TXT rdata from a logical string: UTF-8 bytes split into ≤255-byte strings."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    chunks = [data[i:i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)] or [b""]
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks)


def txt_value(rdata):
    """The logical string of a TXT rdata (its strings joined with nothing between)."""
    return b"".join(rdata.strings).decode("utf-8", errors="backslashreplace")


_PLAIN_ADDRESS = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_TARGET_TYPES = {}
if HAS_DNSPYTHON:
    import dns.rdtypes.ANY.CNAME
    import dns.rdtypes.ANY.NS
    import dns.rdtypes.ANY.PTR
    import dns.rdtypes.IN.A
    import dns.rdtypes.IN.AAAA

    _TARGET_TYPES = {dns.rdatatype.PTR: dns.rdtypes.ANY.PTR.PTR, dns.rdatatype.CNAME: dns.rdtypes.ANY.CNAME.CNAME,
                     dns.rdatatype.NS: dns.rdtypes.ANY.NS.NS}


def rdata_from_value(rdtype, value, where):
    if rdtype == dns.rdatatype.TXT:
        if not isinstance(value, str):
            raise DnsInputError("%s: TXT values must be strings, got %r" % (where, value))
        return txt_rdata(value)
    try:
        text = str(value)
        # The fleet's own records (A/AAAA and PTR/CNAME/NS to plain names) skip the zone-file tokenizer;
        # the constructors validate the same way (a bad address raises dns.exception.SyntaxError).
        if rdtype == dns.rdatatype.A and _PLAIN_ADDRESS.fullmatch(text):
            return dns.rdtypes.IN.A.A(dns.rdataclass.IN, rdtype, text)
        if rdtype == dns.rdatatype.AAAA and _PLAIN_ADDRESS.fullmatch(text):
            return dns.rdtypes.IN.AAAA.AAAA(dns.rdataclass.IN, rdtype, text)
        if rdtype in _TARGET_TYPES and len(text) < 254 and _PLAIN_NAME.fullmatch(text):
            return _TARGET_TYPES[rdtype](dns.rdataclass.IN, rdtype, absolute_name(text))
        # origin=root: a target written without the trailing dot is still absolute.
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False)
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


def txt_tag(value):
    """``v=spf1``-style tag of a TXT value (lower case), or None when it does not start with ``v=``."""
    head = value.split(";", 1)[0].split(None, 1)[0] if value.strip() else ""
    return head.lower() if head.lower().startswith("v=") and len(head) > 2 else None


class Record:
    """One wanted RRset (or the values of it the fleet manages).

    ``state``: ``present`` or ``absent``. ``rdataset``: the values (None for ``absent`` of a whole RRset).
    ``shared``: TXT only; the RRset also holds others' values, and only values whose ``v=`` tag is
    one of ``tags`` belong to this record.
    """

    __slots__ = ("name", "rdtype", "ttl", "rdataset", "state", "shared", "tags", "where")

    def __init__(self, name, rdtype, ttl, rdataset, state="present", shared=False, where=""):
        self.name = name
        self.rdtype = rdtype
        self.ttl = ttl
        self.rdataset = rdataset
        self.state = state
        self.shared = shared
        self.where = where
        self.tags = frozenset(txt_tag(txt_value(rd)) for rd in rdataset) if shared and rdataset else frozenset()

    @property
    def key(self):
        return (self.name, self.rdtype)

    def label(self):
        return "%s %s" % (self.name.to_text(), dns.rdatatype.to_text(self.rdtype))


RECORD_KEYS = ("name", "type", "ttl", "values", "state", "shared")


def normalize_records(records, state="present", default_ttl=3600):
    """Validate ``[{name, type, ttl, values, state, shared}]`` into ``Record`` objects (no network).

    ``state`` is the default of the items' own ``state``.
    """
    if not isinstance(records, list):
        raise DnsInputError("records must be a list of {name, type, ttl, values} dicts")
    result = []
    seen = {}
    for index, item in enumerate(records):
        where = "records[%d]" % index
        if not isinstance(item, dict):
            raise DnsInputError("%s must be a dict with name, type, values, got %r" % (where, item))
        unknown = set(item) - set(RECORD_KEYS)
        if unknown:
            raise DnsInputError("%s: unknown keys %s (allowed: %s)" % (where, sorted(unknown), ", ".join(RECORD_KEYS)))
        name = absolute_name(item.get("name"), where + ".name")
        type_text = str(item.get("type", "")).upper()
        if type_text not in SUPPORTED_TYPES:
            raise DnsInputError(
                "%s.type %r is not supported; use one of %s" % (where, item.get("type"), ", ".join(SUPPORTED_TYPES))
            )
        rdtype = dns.rdatatype.from_text(type_text)
        where = "%s (%s %s)" % (where, item.get("name"), type_text)
        ttl = item.get("ttl", default_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
            raise DnsInputError("%s: ttl must be an integer 0..2147483647, got %r" % (where, ttl))
        item_state = item.get("state") or state
        if item_state not in ("present", "absent"):
            raise DnsInputError("%s: state must be present or absent, got %r" % (where, item_state))
        shared = bool(item.get("shared", False))
        values = item.get("values")
        if isinstance(values, str):
            values = [values]
        rdataset = None
        if item_state == "present" and not values:
            raise DnsInputError("%s: values must be a non-empty list for state=present" % where)
        if values:
            rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype, ttl=ttl)
            for value in values:
                rdataset.add(rdata_from_value(rdtype, value, where))
            if rdtype == dns.rdatatype.CNAME and len(rdataset) > 1:
                raise DnsInputError("%s: a CNAME RRset holds exactly one value" % where)
        if shared:
            if rdtype != dns.rdatatype.TXT or rdataset is None:
                raise DnsInputError("%s: shared applies to TXT records with values (the v=... tags they own)" % where)
            tags = [txt_tag(v) for v in values]
            if None in tags:
                raise DnsInputError("%s: shared TXT values must start with their v= tag (v=spf1, v=DMARC1, "
                                    "v=DKIM1, ...), got %r" % (where, values[tags.index(None)]))
            if len(set(tags)) != len(tags):
                twice = sorted(t for t in tags if tags.count(t) > 1)[0]
                raise DnsInputError("%s: one value per tag in a shared TXT record; %s appears twice (RFC 7208 "
                                    "§3.2: exactly one v=spf1)" % (where, twice))
        key = (name, rdtype)
        if key in seen:
            raise DnsInputError(
                "%s: the same name and type is also records[%d]; put all values of an RRset in one item"
                % (where, seen[key])
            )
        seen[key] = index
        result.append(Record(name, rdtype, ttl, rdataset, item_state, shared, where))
    return result
