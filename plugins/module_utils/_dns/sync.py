# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole flow for ``dns_records``: read → plan → safety → apply, on one ``DnsClient``.

PRIVATE to the collection: no compatibility promise outside it.

    normalize_records → ZoneReader.read (+ registries, + what the owner wrote and no longer wants)
    → plan.plan_changes → plan.check_safety → apply.apply_plan (skipped in check mode)
"""

from __future__ import annotations

import time

from . import apply, plan, registry, zones
from .transport import DnsTransport
from .values import (
    DnsInputError,
    absolute_name,
    normalize_records,
)

try:
    import dns.rdatatype
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass


class DnsClient(DnsTransport):
    """A transport with zone reading and applying: what the module, the tests and the benchmark use."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reader = zones.ZoneReader(self)

    def find_zone(self, name):
        return self.reader.find_zone(name)

    def read(self, records, zone=None, method="auto"):
        return self.reader.read(records, zone=zone, method=method)

    def read_rrsets(self, keys):
        """``{(name, rdtype): rdataset or None}`` for ``{(name, rdtype): zone}``: from this run's transfer of
        that zone, else by pipelined queries."""
        found, ask = {}, []
        for (name, rdtype), zone in keys.items():
            data = self.reader.transferred.get(zone)
            if data is not None:
                found[(name, rdtype)] = data.get(name, {}).get(rdtype)
            else:
                ask.append((name, rdtype))
        for (name, rdtype), response in zip(ask, self.query_many(ask), strict=True):
            found[(name, rdtype)] = zones.rdataset_in_answer(response, name, rdtype)[0]
        return found

    def apply(self, changes, before_send=None):
        return apply.apply_plan(self, changes, before_send=before_send)


def read_registries(client, owner, zone_names, incoming=None):
    """``{zone: ZoneRegistry}`` of this owner for every zone in ``zone_names``, every shard it uses read.

    ``incoming``: ``{zone: records wanted there}``; the shards the registry may grow into with them are read
    too (to keep the values of other owners found there). From this run's transfers, else by queries.
    """
    incoming = incoming or {}
    rdatasets = {zone: {} for zone in zone_names}
    asked = {zone: 0 for zone in zone_names}  # shards 0 .. asked-1 read
    wanted = {zone: 1 for zone in zone_names}
    while True:
        keys = {(registry.registry_name(zone, shard), dns.rdatatype.TXT): (zone, shard)
                for zone in zone_names for shard in range(asked[zone], wanted[zone])}
        if not keys:
            break
        current = client.read_rrsets({key: zone for key, (zone, _shard) in keys.items()})
        for key, (zone, shard) in keys.items():
            rdatasets[zone][shard] = current[key]
        for zone in zone_names:
            asked[zone] = wanted[zone]
            declared = registry.declared_shards(rdatasets[zone].get(0), owner)
            bound = registry.shards_for(registry.entry_count(rdatasets[zone], owner) + incoming.get(zone, 0))
            wanted[zone] = max(declared, bound, asked[zone])
    return {zone: registry.ZoneRegistry(zone, owner, rdatasets[zone]) for zone in zone_names}


def sync_records(client, records, state="present", zone=None, max_changes=100, force=False, check_mode=False,
                 before_send=None, read_method="auto", with_diff=False, owner=None, prune=False, prune_zones=(),
                 prune_exclude=(), adopt=False, spf_foreign_terms="fail", with_values=True):
    """Read, plan, check safety and (unless ``check_mode``) apply. Returns a result dict.

    ``owner`` turns on the ownership registry (``registry.py``); ``prune`` then removes what this owner
    wrote in the zones of ``records`` and ``prune_zones`` and no record wants any more.
    ``with_values=False``: ``changes`` without the ``before``/``after`` values (compact result).
    """
    started = time.monotonic()
    wanted = normalize_records(records, state=state)
    if prune and not owner:
        raise DnsInputError("prune needs owner: only what the fleet wrote (its registry entries) is ever removed")
    zone_of, before, cnames = client.read(wanted, zone=zone, method=read_method)
    registries, orphans = {}, {}
    if owner:
        registry.check_owner(owner)
        zone_names = set(zone_of.values())
        zone_names.update(client.find_zone(absolute_name(z, "prune_zones[]")) for z in prune_zones or ())
        incoming = {}
        for zone_name in zone_of.values():
            incoming[zone_name] = incoming.get(zone_name, 0) + 1
        registries = read_registries(client, owner, sorted(zone_names), incoming)
        if prune:
            orphans = client.read_rrsets(plan.orphan_keys(wanted, registries))
    warnings = []
    changes = plan.plan_changes(
        wanted, zone_of, before, cnames, owner=owner, registries=registries, orphans=orphans,
        spf_foreign_terms=spf_foreign_terms, adopt=adopt, prune=prune,
        prune_exclude={absolute_name(n, "prune_exclude[]") for n in prune_exclude or ()}, warnings=warnings)
    plan.check_safety(changes, max_changes, force)
    updates = 0
    if changes and not check_mode:
        updates = client.apply(changes, before_send=before_send)
    return {
        "changed": bool(changes),
        "changes": [c.as_dict(with_values) for c in changes],
        "diff": plan.diff_text(changes) if with_diff else None,
        "zones": sorted({z.to_text() for z in zone_of.values()} | {z.to_text() for z in registries}),
        "updates_sent": updates,
        "queries_sent": client.queries,
        "zone_transfers": client.transfers,
        "kept": warnings,
        "elapsed": round(time.monotonic() - started, 3),
    }
