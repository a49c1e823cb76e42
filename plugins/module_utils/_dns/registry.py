# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ownership registry: which RRsets (and which tagged TXT values) the fleet wrote, kept in the zone itself.

PRIVATE to the collection: no compatibility promise outside it.

One TXT RRset per zone, at ``_mailops-owner.<zone apex>``, one value per owned entry::

    heritage=mailops.powermta; owner=<owner>; name=<owner name relative to the apex, @ for the apex>; type=<TYPE>
    ...; tag=v=spf1; sha=<16 hex>[; keep=<SPF terms kept on request>]     (shared TXT values)

Like external-dns' TXT registry, the record lives next to the data, so every controller sees it and it
is changed in the same atomic UPDATE as the records it describes (with the same prerequisites). Each
fleet touches only the values carrying its own ``owner``. ``sha`` is the digest of the shared value
the fleet wrote: a value someone edited afterwards no longer matches and is never dropped silently.
"""

from __future__ import annotations

import hashlib
import re

from ansible_collections.mailops.powermta.plugins.module_utils._dns.values import DnsInputError, txt_value

try:
    import dns.name
    import dns.rdatatype
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

REGISTRY_LABEL = "_mailops-owner"
HERITAGE = "heritage=mailops.powermta"
OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


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

    def to_text(self, owner, zone):
        relative = "@" if self.name == zone else self.name.relativize(zone).to_text()
        fields = [HERITAGE, "owner=%s" % owner, "name=%s" % relative, "type=%s" % dns.rdatatype.to_text(self.rdtype)]
        if self.tag:
            fields += ["tag=%s" % self.tag, "sha=%s" % self.sha]
        if self.keep:
            fields.append("keep=%s" % ",".join(self.keep))
        return "; ".join(fields)

    def __eq__(self, other):
        return isinstance(other, Entry) and (self.key, self.sha, self.keep) == (other.key, other.sha, other.keep)

    def __hash__(self):
        return hash((self.key, self.sha, self.keep))


def parse_value(text, zone):
    """``(owner, Entry)`` of one registry value, or None when it is not a well-formed mailops entry."""
    fields = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    if "heritage=%s" % fields.get("heritage") != HERITAGE or not fields.get("owner") or not fields.get("name"):
        return None
    try:
        name = zone if fields["name"] == "@" else dns.name.from_text(fields["name"], origin=zone)
        rdtype = dns.rdatatype.from_text(fields.get("type", ""))
    except Exception:  # a value someone else wrote in another format: not ours, leave it alone
        return None
    keep = tuple(t for t in fields.get("keep", "").split(",") if t)
    return fields["owner"], Entry(name, rdtype, fields.get("tag") or None, fields.get("sha") or None, keep)


class ZoneRegistry:
    """The registry RRset of one zone as read: this owner's entries, and every value as read."""

    def __init__(self, zone, owner, rdataset=None):
        self.zone = zone
        self.owner = owner
        self.rdataset = rdataset
        self.entries = {}
        self.own_texts = set()  # this owner's values as read
        self.others = []  # every other value, as read (never changed)
        for rdata in rdataset or ():
            text = txt_value(rdata)
            parsed = parse_value(text, zone)
            if parsed and parsed[0] == owner:
                self.entries[parsed[1].key] = parsed[1]
                self.own_texts.add(text)
            else:
                self.others.append(rdata)

    @property
    def name(self):
        return registry_name(self.zone)

    def owns(self, name, rdtype, tag=None):
        return self.entries.get((name, rdtype, tag))

    def owned_keys(self):
        """``{(name, rdtype)}`` of every RRset holding something of this owner."""
        return {(entry.name, entry.rdtype) for entry in self.entries.values()}
