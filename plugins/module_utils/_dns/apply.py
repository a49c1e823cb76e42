# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply: a plan becomes one UPDATE per zone whose prerequisites are the RRsets as read.

PRIVATE to the collection: no compatibility promise outside it.
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._dns.values import (
    MAX_UPDATE_BYTES,
    DnsInputError,
    rcode_error,
)

try:
    import dns.exception
    import dns.rcode
    import dns.rdatatype
    import dns.update
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass


def build_update(zone, changes, keyring=None, keyname=None):
    """The UPDATE for ``changes`` of one zone: each RRset is guarded by the state it was read in."""
    update = dns.update.UpdateMessage(zone)
    if keyring:
        update.use_tsig(keyring, keyname=keyname)
    for change in changes:
        name, rdtype = change.record.name, change.record.rdtype
        # Prerequisites: the RRset is exactly what we read (value-dependent), or it does not exist.
        # Values of others in a shared RRset are re-added as read, byte for byte, under this guard.
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


def batches(client, zone, changes):
    """``[(update, wire)]``: rendered (and signed) once; split in halves while over the size limit."""
    update = build_update(zone, changes, client.keyring, client.keyname)
    try:
        wire = update.to_wire(max_size=65535)
    except dns.exception.TooBig:
        wire = None
    if wire is not None and (len(wire) <= MAX_UPDATE_BYTES or len(changes) == 1):
        return [(update, wire)]
    if len(changes) == 1:
        raise DnsInputError("the change of %s does not fit in one DNS message" % changes[0].record.label())
    half = len(changes) // 2
    return batches(client, zone, changes[:half]) + batches(client, zone, changes[half:])


def apply_plan(client, plan, before_send=None):
    """Send the plan: one UPDATE per zone (split only if over 60 kB). Returns the UPDATE count."""
    by_zone = {}
    for change in plan:
        by_zone.setdefault(change.zone, []).append(change)
    sent = 0
    for zone, changes in by_zone.items():
        for update, wire in batches(client, zone, changes):
            if before_send is not None:
                before_send(zone, update)
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
