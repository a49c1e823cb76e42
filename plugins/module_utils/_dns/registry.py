# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership registry: which RRsets (and which tagged TXT values) the fleet wrote, kept in the zone itself.

PRIVATE to the collection: no compatibility promise outside it.

One TXT RRset per zone, at ``_mailops-owner.<zone apex>``. Each owner has one value there (more when
it is over ~1,000 entries); its first character-string names the owner, each further string is one entry::

    "heritage=mailops.powermta; owner=pmta_fleet" "mta10 A" "10.2 PTR" "@ TXT v=spf1 sha=2c640c6d35ecf516"
    ... "@ TXT v=spf1 sha=<16 hex> keep=include:_spf.example.org"     (SPF terms kept on request)

Names are relative to the apex (``@`` for the apex). Like external-dns' TXT registry the record lives
next to the data, so every controller sees it, and it is changed in the same atomic UPDATE as the
records it describes (with the same prerequisites). Each fleet touches only its own value. ``sha`` is
the digest of a shared value as the fleet wrote it: a value someone edited since no longer matches and
is never dropped silently.

A zone with thousands of owned names (a 50 x 64 fleet: 3,200 A/AAAA + 3,200 HELO SPF TXT in one zone)
would need a registry RRset larger than a DNS message (64 kB, and an UPDATE repeats the old values as its
prerequisite). Such an owner's entries are spread over ``shards`` RRsets, a power of two:
``_mailops-owner.<zone>`` (shard 0, whose header says ``shards=N``), ``_mailops-owner-1.<zone>`` ...
``_mailops-owner-<N-1>.<zone>``; an entry's shard is the CRC-32 of its owner name modulo N, so a change of
one name rewrites one small RRset, and doubling N moves only half of the entries. With up to
``SHARD_TARGET`` entries an owner keeps the single RRset (and exactly the format it had before shards).
"""

from __future__ import annotations

import hashlib
import re
import zlib

from .values import DnsInputError

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
# Entries per shard: the count is the power of two that keeps the average at most SHARD_TARGET; it is kept
# while no shard grows over SHARD_MAX and the average stays above a quarter of the target (no churn).
# 500 entries of ~45 bytes, written with the old values as prerequisite, stay well within one message.
SHARD_TARGET = 250
SHARD_MAX = 500


def check_owner(owner):
    if not isinstance(owner, str) or not OWNER_RE.fullmatch(owner):
        raise DnsInputError("owner %r must be 1-63 letters, digits, '.', '_' or '-' (it names this fleet in the "
                            "ownership registry _mailops-owner.<zone>)" % (owner,))
    return owner


def registry_name(zone, shard=0):
    label = REGISTRY_LABEL if shard == 0 else "%s-%d" % (REGISTRY_LABEL, shard)
    return dns.name.Name((label.encode(),) + zone.labels)


def value_digest(value):
    """Short digest of a TXT value as the fleet wrote it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def header(owner, part=0, shards=1):
    return "%s; owner=%s%s%s" % (HERITAGE, owner, "; part=%d" % part if part else "",
                                 "; shards=%d" % shards if shards > 1 else "")


def shard_of(name, shards):
    """The shard of an entry for ``name`` among ``shards`` (all entries of one name share it)."""
    if shards <= 1:
        return 0
    return zlib.crc32(name.to_text().lower().encode("utf-8")) % shards


def shards_for(count):
    """The smallest power of two of shards keeping ``count`` entries at SHARD_TARGET per shard on average."""
    shards = 1
    while count > shards * SHARD_TARGET:
        shards *= 2
    return shards


def choose_shards(entries, current=1):
    """Shards for ``entries`` (Entry objects): ``current`` while it fits, else recomputed."""
    entries = list(entries)
    if current > 1 and len(entries) < current * SHARD_TARGET // 4:
        return shards_for(len(entries))
    sizes = {}
    for entry in entries:
        shard = shard_of(entry.name, current)
        sizes[shard] = sizes.get(shard, 0) + 1
    if sizes and max(sizes.values()) > SHARD_MAX:
        return max(current * 2, shards_for(len(entries)))
    return current


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


def _header_fields(rdata):
    first = rdata.strings[0].decode("utf-8", "replace") if rdata.strings else ""
    parts = dict(part.strip().partition("=")[::2] for part in first.split(";"))
    if "heritage" not in parts or "%s=%s" % ("heritage", parts["heritage"]) != HERITAGE:
        return {}
    return parts


def owner_of(rdata):
    """The owner named by a registry value's first string, or None when it is not a mailops value."""
    return _header_fields(rdata).get("owner") or None


def declared_shards(rdataset, owner):
    """The shard count ``owner`` declared in shard 0 (``shards=N`` in its header; 1 without)."""
    for rdata in rdataset or ():
        fields = _header_fields(rdata)
        if fields.get("owner") == owner:
            try:
                return max(1, int(fields.get("shards", "1")))
            except ValueError:
                return 1
    return 1


def registry_rdatas(owner, zone, entries, shards=1):
    """The registry values of ``owner`` for ``entries`` (sorted, so the same entries give the same values);
    ``shards`` > 1 is declared in the header (of shard 0, whose values are made with it)."""
    texts = sorted(entry.to_text(zone) for entry in entries)
    rdatas = []
    for part, start in enumerate(range(0, max(len(texts), 1), ENTRIES_PER_VALUE)):
        strings = [header(owner, part, shards)] + texts[start:start + ENTRIES_PER_VALUE]
        rdatas.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT,
                                              [s.encode("utf-8") for s in strings]))
    return rdatas


def entry_count(rdatasets, owner):
    """How many entries ``owner`` has in ``{shard: rdataset}``, without parsing them (one string each)."""
    return sum(len(rdata.strings) - 1 for rdataset in rdatasets.values() for rdata in rdataset or ()
               if owner_of(rdata) == owner)


class ZoneRegistry:
    """The registry RRsets of one zone as read: this owner's entries and values, and everybody else's values.

    ``rdatasets``: ``{shard: rdataset or None}`` (a single rdataset is shard 0). ``shards`` is what this
    owner declared; ``own_in``/``others_in`` map each shard read to its values (``own``/``others``: all).
    """

    def __init__(self, zone, owner, rdatasets=None):
        if not isinstance(rdatasets, dict):
            rdatasets = {0: rdatasets}
        self.zone = zone
        self.owner = owner
        self.rdatasets = dict(rdatasets)
        self.shards = declared_shards(self.rdatasets.get(0), owner)
        self.entries = {}
        self.own_in = {}  # shard -> this owner's values as read
        self.others_in = {}  # shard -> every other value, as read (never changed)
        for shard, rdataset in sorted(self.rdatasets.items()):
            own, others = self.own_in.setdefault(shard, []), self.others_in.setdefault(shard, [])
            for rdata in rdataset or ():
                if owner_of(rdata) != owner:
                    others.append(rdata)
                    continue
                own.append(rdata)
                for string in rdata.strings[1:]:
                    entry = parse_entry(string.decode("utf-8", "replace"), zone)
                    if entry is not None:
                        self.entries[entry.key] = entry

    @property
    def own(self):
        return [rdata for shard in sorted(self.own_in) for rdata in self.own_in[shard]]

    @property
    def others(self):
        return [rdata for shard in sorted(self.others_in) for rdata in self.others_in[shard]]

    @property
    def rdataset(self):
        return self.rdatasets.get(0)

    @property
    def name(self):
        return registry_name(self.zone)

    def owns(self, name, rdtype, tag=None):
        return self.entries.get((name, rdtype, tag))

    def owned_keys(self):
        """``{(name, rdtype)}`` of every RRset holding something of this owner."""
        return {(entry.name, entry.rdtype) for entry in self.entries.values()}
