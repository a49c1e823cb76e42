# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply: a plan becomes one UPDATE per zone whose prerequisites are the RRsets as read.

PRIVATE to the collection: no compatibility promise outside it.

The UPDATE is rendered here (RFC 2136 §2 sections, RFC 1035 §4.1.4 name compression) rather than by
``dns.update``: dnspython renders each RR through its generic renderer and hashes ``Name`` objects for
compression, which cost more than the whole exchange with the server for a fleet's few hundred RRsets.
dnspython still signs it (``dns.tsig.sign``) and parses the answer.
"""

from __future__ import annotations

import struct
import time

from .values import (
    MAX_UPDATE_BYTES,
    DnsInputError,
    rcode_error,
)

try:
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.update
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

# RFC 2136 §2.4 / §2.5 classes: IN (values), ANY (delete an RRset), NONE (RRset does not exist).
CLASS_IN, CLASS_ANY, CLASS_NONE = 1, 255, 254
TYPE_SOA, TYPE_CNAME, TYPE_TSIG = 6, 5, 250
_RR_HEADER = struct.Struct("!HHIH")


class _Writer:
    """A DNS message body with RFC 1035 §4.1.4 compression of owner names (not of names inside rdata)."""

    __slots__ = ("parts", "size", "offsets")

    def __init__(self):
        self.parts = []
        self.size = 12  # the header is written last
        self.offsets = {}

    def name(self, labels):
        """Write a name given as its labels (root label included)."""
        lowered = tuple(label.lower() for label in labels)
        count = len(labels) - 1
        pointer = None
        for start in range(count):
            pointer = self.offsets.get(lowered[start:])
            if pointer is not None:
                count = start
                break
        position = self.size
        pieces = []
        for index in range(count):
            if position < 0x4000:
                self.offsets.setdefault(lowered[index:], position)
            pieces.append(bytes((len(labels[index]),)) + labels[index])
            position += 1 + len(labels[index])
        pieces.append(b"\x00" if pointer is None else struct.pack("!H", 0xC000 | pointer))
        data = b"".join(pieces)
        self.parts.append(data)
        self.size += len(data)

    def rr(self, labels, rdtype, rdclass, ttl, rdata=b""):
        self.name(labels)
        data = _RR_HEADER.pack(rdtype, rdclass, ttl, len(rdata)) + rdata
        self.parts.append(data)
        self.size += len(data)


_TARGET_TYPES = frozenset((2, 5, 12))  # NS, CNAME, PTR: the rdata is one uncompressed name


def rdata_wire(rdata):
    """Uncompressed wire form of ``rdata``; a PTR/CNAME/NS target written from its labels directly."""
    if rdata.rdtype in _TARGET_TYPES:
        return b"".join(bytes((len(label),)) + label for label in rdata.target.labels)
    return rdata.to_wire()


def render_update(zone, changes):
    """``(wire without header, prerequisite count, update count)`` of the UPDATE for ``changes`` of ``zone``.

    Each RRset is guarded by the state it was read in (RFC 2136 §2.4): value-dependent "RRset exists"
    with the values as read (TTL 0), or "RRset does not exist" (class NONE); unless the change is a
    CNAME or a deletion, also "no CNAME at the name" (nobody made it an alias meanwhile). Then the RRset
    is deleted and (unless deleted for good) added with its new values (§2.5). Values of others in a
    shared RRset are re-added as read, byte for byte, under this guard.
    """
    prerequisites, updates = _Writer(), _Writer()
    prerequisites.name(zone.labels)
    prerequisites.parts.append(struct.pack("!HH", TYPE_SOA, CLASS_IN))
    prerequisites.size += 4
    prerequisite_count = update_count = 0
    for change in changes:
        labels, rdtype = change.record.name.labels, change.record.rdtype
        if change.before is not None:
            for rdata in change.before:
                prerequisites.rr(labels, rdtype, CLASS_IN, 0, rdata_wire(rdata))
                prerequisite_count += 1
        else:
            prerequisites.rr(labels, rdtype, CLASS_NONE, 0)
            prerequisite_count += 1
        if rdtype != TYPE_CNAME and change.after is not None:
            prerequisites.rr(labels, TYPE_CNAME, CLASS_NONE, 0)
            prerequisite_count += 1
    # One compression table across both sections: the update section follows the prerequisites.
    updates.size = prerequisites.size
    updates.offsets = prerequisites.offsets
    for change in changes:
        labels, rdtype = change.record.name.labels, change.record.rdtype
        updates.rr(labels, rdtype, CLASS_ANY, 0)
        update_count += 1
        if change.after is not None:
            for rdata in change.after:
                updates.rr(labels, rdtype, CLASS_IN, change.after.ttl, rdata_wire(rdata))
                update_count += 1
    return b"".join(prerequisites.parts + updates.parts), prerequisite_count, update_count


def build_update(zone, changes, keyring=None, keyname=None):
    """``(message, wire)``: the UPDATE for ``changes`` of one zone, rendered and (with a key) TSIG-signed.

    ``message`` is a ``dns.update.UpdateMessage`` holding the zone, id and TSIG: what the answer is
    checked against (id, opcode, zone, TSIG with this request's MAC).
    """
    message = dns.update.UpdateMessage(zone)
    body, prerequisite_count, update_count = render_update(zone, changes)
    header = struct.pack("!HHHHHH", message.id, message.flags, 1, prerequisite_count, update_count, 0)
    wire = header + body
    if keyring:
        message.use_tsig(keyring, keyname=keyname)
        signed, _context = dns.tsig.sign(wire, message.keyring, message.tsig[0], int(time.time()), None)
        message.tsig.clear()
        message.tsig.add(signed)
        tsig_rdata = signed.to_wire()
        key_wire = message.keyring.name.to_wire()
        wire = (header[:10] + struct.pack("!H", 1) + body + key_wire
                + _RR_HEADER.pack(TYPE_TSIG, CLASS_ANY, 0, len(tsig_rdata)) + tsig_rdata)
    return message, wire


def batches(client, zone, changes):
    """``[(message, wire)]``: rendered (and signed) once; split in halves while over the size limit."""
    message, wire = build_update(zone, changes, client.keyring, client.keyname)
    if len(wire) <= MAX_UPDATE_BYTES or (len(changes) == 1 and len(wire) <= 65535):
        return [(message, wire)]
    if len(changes) == 1:
        if changes[0].registry:
            raise DnsInputError(
                "the ownership registry %s would not fit in one DNS message (%d bytes, 65535 at most): one zone "
                "holds more names than the registry can list (about 5,000); nothing was sent. Spread the names "
                "over more zones, or publish this zone without owner" % (changes[0].record.label(), len(wire)))
        raise DnsInputError("the change of %s does not fit in one DNS message" % changes[0].record.label())
    half = len(changes) // 2
    return batches(client, zone, changes[:half]) + batches(client, zone, changes[half:])


def apply_plan(client, plan, before_send=None):
    """Send the plan: one UPDATE per zone (split only if over 60 kB). Returns the UPDATE count."""
    by_zone = {}
    for change in plan:
        by_zone.setdefault(change.zone, []).append(change)
    # Every UPDATE is rendered before the first is sent: one that cannot be built stops the run unsent.
    rendered = [(zone, batches(client, zone, changes)) for zone, changes in by_zone.items()]
    sent = 0
    for zone, zone_batches in rendered:
        for update, wire in zone_batches:
            if before_send is not None:
                before_send(zone, wire)
            client.updates += 1
            response = client.send_wire(update, wire, "UPDATE of zone %s" % zone.to_text())
            if response.rcode() != dns.rcode.NOERROR:
                error = rcode_error(response.rcode(), zone, "update")
                if client.applied_zones:
                    error.args = ("%s (zones already updated in this run: %s)"
                                  % (error, ", ".join(z.to_text() for z in client.applied_zones)),)
                raise error
            client.applied_zones.append(zone)
            sent += 1
    return sent
