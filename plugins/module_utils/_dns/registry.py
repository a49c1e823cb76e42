# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership registry: which RRsets (and which tagged TXT values) the fleet wrote, kept in the zone itself.

PRIVATE to the collection: no compatibility promise outside it.

One TXT RRset per zone, at ``_mailops-owner.<zone apex>``. Each owner has one value there (more when
it is over ~60 kB); its first character-string names the owner, each further string is one entry::

    "heritage=mailops.powermta; owner=pmta_fleet" "mta10 A" "10.2 PTR" "@ TXT v=spf1 sha=2c640c6d35ecf516"
    ... "@ TXT v=spf1 sha=<16 hex> keep=include:_spf.example.org"     (SPF terms kept on request)

Names are relative to the apex (``@`` for the apex). Like external-dns' TXT registry the record lives
next to the data, so every controller sees it, and it is changed in the same atomic UPDATE as the
records it describes (with the same prerequisites). Each fleet touches only its own value. ``sha`` is
the digest of a shared value as the fleet wrote it: a value someone edited since no longer matches and
is never dropped silently.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.mailops.powermta.plugins.module_utils._dns.values import DnsInputError

try:
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.TXT
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

REGISTRY_LABEL = "_mailops-owner"
HERITAGE = "heritage=mailops.powermta"
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# Entries per registry value: one TXT rdata stays well below the 65535-byte limit.
ENTRIES_PER_VALUE = 1000
MAX_STRING = 255


def check_owner(owner):
    if not isinstance(owner, str) or not OWNER_RE.fullmatch(owner):
        raise DnsInputError("owner %r must be 1-63 letters, digits, '.', '_' or '-' (it names this fleet in the "
                            "ownership registry _mailops-owner.<zone>)" % (owner,))
    return owner


def registry_name(zone):
    return dns.name.Name((REGISTRY_LABEL.encode(),) + zone.labels)


def value_digest(value):
    """Short digest of a TXT value as the fleet wrote it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def header(owner, part=0):
    return "%s; owner=%s%s" % (HERITAGE, owner, "; part=%d" % part if part else "")


class Entry:
    """One owned RRset (``tag`` None) or one owned tagged value of a shared TXT RRset."""

    __slots__ = ("name", "rdtype", "tag", "sha", "keep")

    def __init__(self, name, rdtype, tag=None, sha=None, keep=()):
        self.name = name
        self.rdtype = rdtype
        self.tag = tag
        self.sha = sha
        self.keep = tuple(keep)

    @property
    def key(self):
        return (self.name, self.rdtype, self.tag)

    def to_text(self, zone):
        relative = "@" if self.name == zone else self.name.relativize(zone).to_text()
        fields = [relative, dns.rdatatype.to_text(self.rdtype)]
        if self.tag:
            fields += [self.tag, "sha=%s" % self.sha]
        if self.keep:
            fields.append("keep=%s" % ",".join(self.keep))
        text = " ".join(fields)
        if len(text.encode()) > MAX_STRING:
            raise DnsInputError("registry entry for %s is over 255 bytes (too many kept SPF terms: %s); move them "
                                "into spf_extra_terms" % (self.name.to_text(), ",".join(self.keep)))
        return text

    def __eq__(self, other):
        return isinstance(other, Entry) and (self.key, self.sha, self.keep) == (other.key, other.sha, other.keep)

    def __hash__(self):
        return hash((self.key, self.sha, self.keep))


def parse_entry(text, zone):
    """An ``Entry`` from one registry string, or None when it is malformed."""
    fields = text.split()
    if len(fields) < 2:
        return None
    try:
        name = zone if fields[0] == "@" else dns.name.from_text(fields[0], origin=zone)
        rdtype = dns.rdatatype.from_text(fields[1])
    except Exception:  # not an entry we wrote: ignore it
        return None
    tag, sha, keep = None, None, ()
    for field in fields[2:]:
        if field.startswith("sha="):
            sha = field[4:]
        elif field.startswith("keep="):
            keep = tuple(t for t in field[5:].split(",") if t)
        elif field.startswith("v="):
            tag = field
    return Entry(name, rdtype, tag, sha, keep)


def owner_of(rdata):
    """The owner named by a registry value's first string, or None when it is not a mailops value."""
    first = rdata.strings[0].decode("utf-8", "replace") if rdata.strings else ""
    parts = dict(part.strip().partition("=")[::2] for part in first.split(";"))
    if "heritage" not in parts or "%s=%s" % ("heritage", parts["heritage"]) != HERITAGE:
        return None
    return parts.get("owner") or None


def registry_rdatas(owner, zone, entries):
    """The registry values of ``owner`` for ``entries`` (sorted, so the same entries give the same values)."""
    texts = sorted(entry.to_text(zone) for entry in entries)
    rdatas = []
    for part, start in enumerate(range(0, len(texts), ENTRIES_PER_VALUE)):
        strings = [header(owner, part)] + texts[start:start + ENTRIES_PER_VALUE]
        rdatas.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT,
                                              [s.encode("utf-8") for s in strings]))
    return rdatas


class ZoneRegistry:
    """The registry RRset of one zone as read: this owner's entries and values, and everybody else's values."""

    def __init__(self, zone, owner, rdataset=None):
        self.zone = zone
        self.owner = owner
        self.rdataset = rdataset
        self.entries = {}
        self.own = []  # this owner's values as read
        self.others = []  # every other value, as read (never changed)
        for rdata in rdataset or ():
            if owner_of(rdata) != owner:
                self.others.append(rdata)
                continue
            self.own.append(rdata)
            for string in rdata.strings[1:]:
                entry = parse_entry(string.decode("utf-8", "replace"), zone)
                if entry is not None:
                    self.entries[entry.key] = entry

    @property
    def name(self):
        return registry_name(self.zone)

    def owns(self, name, rdtype, tag=None):
        return self.entries.get((name, rdtype, tag))

    def owned_keys(self):
        """``{(name, rdtype)}`` of every RRset holding something of this owner."""
        return {(entry.name, entry.rdtype) for entry in self.entries.values()}
