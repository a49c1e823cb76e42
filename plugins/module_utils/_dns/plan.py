# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning: from wanted records, the state as read and the ownership registry, the RRsets to write.

PRIVATE to the collection: no compatibility promise outside it. Pure functions (no network).

Without ``owner`` every record replaces its whole RRset (the plain ``dns_records`` contract). With
``owner`` the plan also keeps the registry (``registry.py``) up to date, refuses to overwrite values
the fleet did not write (unless ``adopt``), and with ``prune`` removes what this owner wrote earlier
and no longer wants. Shared TXT records touch only values with their own ``v=`` tag.
"""

from __future__ import annotations

import ipaddress

from .registry import (
    Entry,
    choose_shards,
    registry_name,
    registry_rdatas,
    shard_of,
    value_digest,
)
from .values import (
    DnsInputError,
    DnsOwnershipError,
    DnsSafetyError,
    Record,
    rrset_view,
    txt_rdata,
    txt_tag,
    txt_value,
    value_text,
)

try:
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
except ImportError:  # reported by the modules through values.HAS_DNSPYTHON
    pass

SPF_TAG = "v=spf1"
SPF_FOREIGN_TERMS = ("fail", "keep")
REGISTRY_TTL = 3600


class Change:
    __slots__ = ("zone", "record", "action", "before", "after", "registry")

    def __init__(self, zone, record, action, before, after, registry=False):
        self.zone = zone
        self.record = record
        self.action = action
        self.before = before
        self.after = after
        self.registry = registry

    def lost_values(self):
        """Values present now that the change removes (a TTL change loses nothing)."""
        if self.before is None:
            return []
        after = set(self.after) if self.after is not None else set()
        return [rd for rd in self.before if rd not in after]

    def as_dict(self, with_values=True):
        """The change for the module result; ``with_values=False`` leaves out ``before``/``after`` (a
        fleet's publish changes hundreds of RRsets: their values would dominate the result's size)."""
        view = {
            "zone": self.zone.to_text(),
            "name": self.record.name.to_text(),
            "type": dns.rdatatype.to_text(self.record.rdtype),
            "action": self.action,
            "registry": self.registry,
        }
        if with_values:
            view["before"] = rrset_view(self.before)
            view["after"] = rrset_view(self.after)
        return view


def _rdataset(rdtype, ttl, rdatas):
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, rdtype, ttl=ttl)
    for rdata in rdatas:
        rdataset.add(rdata)
    return rdataset


def _change(zone, record, current, after, registry=False):
    if after is not None and len(after) == 0:
        after = None
    if after is None:
        return Change(zone, record, "delete", current, None, registry) if current is not None else None
    if current is None:
        return Change(zone, record, "create", None, after, registry)
    if current == after and current.ttl == after.ttl:
        return None
    return Change(zone, record, "update", current, after, registry)


def spf_terms(value):
    return value.split()[1:]


def _is_all(term):
    return term.lstrip("+-~?").lower() == "all"


def _ip_network(term):
    """The network of a pass ``ip4:``/``ip6:`` term (RFC 7208 §5.6), else None."""
    mechanism, sep, value = term.lstrip("+").partition(":")
    if not sep or mechanism.lower() not in ("ip4", "ip6") or term.startswith(("-", "~", "?")):
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _covered(term, ours):
    """True when the fleet's SPF terms already carry ``term`` (same text, or an ip4/ip6 range inside ours)."""
    if term.lower() in {t.lower() for t in ours}:
        return True
    network = _ip_network(term)
    if network is None:
        return False
    return any(own is not None and own.version == network.version and network.subnet_of(own)
               for own in map(_ip_network, ours))


def _spf_value(record, current_spf, entry, foreign_mode):
    """``(value to publish, terms kept)`` for the fleet's SPF at ``record.name``.

    Terms of the SPF in the zone that the fleet's SPF does not carry are foreign unless the fleet
    wrote that exact value (registry digest), in which case only the terms it kept on request are.
    """
    wanted = next(txt_value(rd) for rd in record.rdataset if txt_tag(txt_value(rd)) == SPF_TAG)
    ours = spf_terms(wanted)
    foreign = []
    for value in current_spf:
        if entry is not None and entry.sha == value_digest(value):
            candidates = [t for t in entry.keep if t in spf_terms(value)]
        else:
            candidates = spf_terms(value)
        foreign.extend(t for t in candidates if not _covered(t, ours) and not _is_all(t) and t not in foreign)
    if not foreign:
        return wanted, ()
    if foreign_mode != "keep":
        raise DnsOwnershipError(
            "%s TXT: the v=spf1 record in the zone has terms the fleet's SPF does not carry: %s. Nothing was "
            "sent. Add them to the domain's spf_extra_terms, or set spf_foreign_terms: keep (role: "
            "dns_spf_foreign_terms: keep) to keep them in the fleet's record"
            % (record.name.to_text(), " ".join(foreign))
        )
    merged = " ".join([SPF_TAG] + foreign + ours)
    return merged, tuple(foreign)


def _shared_after(record, current, registry, foreign_mode, entries):
    """The whole TXT RRset after writing the fleet's tagged values; updates ``entries``."""
    current_values = [(rd, txt_value(rd)) for rd in current or ()]
    others = [rd for rd, value in current_values if txt_tag(value) not in record.tags]
    ours = []
    for rdata in record.rdataset:
        value = txt_value(rdata)
        tag = txt_tag(value)
        keep = ()
        if tag == SPF_TAG:
            entry = registry.owns(record.name, record.rdtype, tag) if registry is not None else None
            existing = [v for _rd, v in current_values if txt_tag(v) == SPF_TAG]
            value, keep = _spf_value(record, existing, entry, foreign_mode)
            rdata = txt_rdata(value)
        ours.append(rdata)
        entries[(record.name, record.rdtype, tag)] = Entry(record.name, record.rdtype, tag, value_digest(value), keep)
    # One TTL per RRset: keep the TTL others rely on when they have values here.
    ttl = current.ttl if current is not None and others else record.ttl
    return _rdataset(record.rdtype, ttl, others + ours)


def _refuse_cname(record, cnames):
    if record.key not in cnames:
        return
    if record.rdtype == dns.rdatatype.CNAME:
        raise DnsInputError("refusing to write %s: the name already holds %s" % (record.label(), cnames[record.key]))
    raise DnsInputError(
        "refusing to write %s: the name is a CNAME (-> %s); DNS allows no other data beside a CNAME and BIND "
        "would silently drop it. Publish at the CNAME's target or remove the CNAME"
        % (record.label(), cnames[record.key])
    )


def plan_changes(records, zones, before, cnames, owner=None, registries=None, orphans=None,
                 spf_foreign_terms="fail", adopt=False, prune=False, prune_exclude=(), warnings=None):
    """Changes so the zones hold ``records``.

    ``registries``: ``{zone: ZoneRegistry}`` (with ``owner``); ``orphans``: ``{(name, rdtype): rdataset
    or None}`` as read for the registry entries of this owner that no record wants (for ``prune``).
    ``warnings`` (a list) receives what was left in place on purpose.
    """
    if spf_foreign_terms not in SPF_FOREIGN_TERMS:
        raise DnsInputError("spf_foreign_terms must be fail or keep, got %r" % (spf_foreign_terms,))
    registries = registries or {}
    warnings = warnings if warnings is not None else []
    entries = {zone: dict(registry.entries) for zone, registry in registries.items()} if owner else {}
    wanted_entries = set()
    plan = []
    for record in records:
        zone, current = zones[record.key], before.get(record.key)
        registry = registries.get(zone) if owner else None
        zone_entries = entries.setdefault(zone, {}) if owner else {}
        if record.state == "present":
            _refuse_cname(record, cnames)
        if record.state == "absent":
            if record.rdataset is None or current is None:
                after = None
            else:
                after = _rdataset(record.rdtype, current.ttl, [rd for rd in current if rd not in record.rdataset])
            removed_tags = None
            if record.rdataset is not None:
                removed_tags = {txt_tag(txt_value(rd)) for rd in record.rdataset if record.rdtype == dns.rdatatype.TXT}
            for key in [k for k in zone_entries if k[:2] == record.key]:
                if removed_tags is None or key[2] in removed_tags or (after is None):
                    del zone_entries[key]
        elif record.shared:
            after = _shared_after(record, current, registry, spf_foreign_terms, zone_entries)
            wanted_entries.update((record.name, record.rdtype, tag) for tag in record.tags)
        else:
            after = record.rdataset
            if registry is not None and current is not None and not registry.owns(*record.key) and not adopt:
                lost = [value_text(rd) for rd in current if rd not in after]
                if lost:
                    raise DnsOwnershipError(
                        "%s exists with values the fleet did not write: %s. Nothing was sent. Remove them, or "
                        "set adopt: true (role: dns_adopt: true) to let the fleet replace and own this RRset"
                        % (record.label(), ", ".join(sorted(lost))))
            if owner:
                zone_entries[record.key + (None,)] = Entry(record.name, record.rdtype)
                wanted_entries.add(record.key + (None,))
        change = _change(zone, record, current, after)
        if change is not None:
            plan.append(change)
    wanted_keys = {record.key for record in records}
    if owner and prune:
        plan.extend(_prune(entries, wanted_entries, wanted_keys, orphans or {}, set(prune_exclude), warnings))
    for zone, registry in sorted(registries.items() if owner else (), key=lambda item: item[0].to_text()):
        plan.extend(_registry_changes(registry, entries.get(zone, {})))
    return plan


def orphan_keys(records, registries):
    """``{(name, rdtype): zone}`` of RRsets holding registry entries of this owner that no record mentions."""
    wanted = {record.key for record in records}
    keys = {}
    for zone, zone_registry in registries.items():
        keys.update({key: zone for key in zone_registry.owned_keys() if key not in wanted})
    return keys


def _prune(entries, wanted_entries, wanted_keys, orphans, exclude, warnings):
    changes = []
    for zone, zone_entries in sorted(entries.items(), key=lambda item: item[0].to_text()):
        by_key = {}
        for key, entry in list(zone_entries.items()):
            if key in wanted_entries or key[:2] in wanted_keys:
                continue
            if entry.name in exclude:
                continue
            by_key.setdefault(key[:2], []).append(entry)
            del zone_entries[key]
        for (name, rdtype), owned in sorted(by_key.items(), key=lambda item: (item[0][0].to_text(), item[0][1])):
            current = orphans.get((name, rdtype))
            if current is None:
                continue
            record = Record(name, rdtype, current.ttl, None, state="absent")
            if any(entry.tag is None for entry in owned):
                after = None
            else:
                drop = []
                for rdata in current:
                    value = txt_value(rdata)
                    entry = next((e for e in owned if e.tag == txt_tag(value)), None)
                    if entry is None:
                        continue
                    if entry.sha == value_digest(value):
                        drop.append(rdata)
                    else:
                        warnings.append("kept %s TXT %r: the fleet no longer publishes it, but it was changed "
                                        "after the fleet wrote it; remove it by hand if it is unused"
                                        % (name.to_text(), value))
                after = _rdataset(rdtype, current.ttl, [rd for rd in current if rd not in drop])
            change = _change(zone, record, current, after)
            if change is not None:
                changes.append(change)
    return changes


def _registry_changes(registry_now, zone_entries):
    """The registry RRsets (shards) with this owner's values rebuilt from ``zone_entries``; others' values kept
    as read. Only the shards whose values differ change."""
    shards = choose_shards(zone_entries.values(), registry_now.shards) if zone_entries else 1
    parts = {}
    for entry in zone_entries.values():
        parts.setdefault(shard_of(entry.name, shards), []).append(entry)
    changes = []
    for shard in sorted(set(range(shards)) | set(registry_now.own_in)):
        if not zone_entries or (shard > 0 and not parts.get(shard)) or shard >= shards:
            ours = []
        else:  # shard 0 declares the count, so it is written even when no entry falls into it
            ours = registry_rdatas(registry_now.owner, registry_now.zone, parts.get(shard, []),
                                   shards if shard == 0 else 1)
        if set(ours) == set(registry_now.own_in.get(shard, [])):
            continue
        current = registry_now.rdatasets.get(shard)
        ttl = current.ttl if current is not None else REGISTRY_TTL
        after = _rdataset(dns.rdatatype.TXT, ttl, registry_now.others_in.get(shard, []) + ours)
        record = Record(registry_name(registry_now.zone, shard), dns.rdatatype.TXT, ttl, after)
        change = _change(registry_now.zone, record, current, after, registry=True)
        if change is not None:
            changes.append(change)
    return changes


def check_safety(plan, max_changes, force):
    """Refuse to remove or replace more than ``max_changes`` existing values unless ``force``."""
    risky = [(change, change.lost_values()) for change in plan if not change.registry]
    risky = [(change, lost) for change, lost in risky if lost]
    count = sum(len(lost) for _change_item, lost in risky)
    if not force and count > max_changes:
        names = ", ".join(change.record.label() for change, _lost in risky[:5])
        raise DnsSafetyError(
            "the plan removes or replaces %d existing values (in %s%s), more than max_changes=%d; nothing was "
            "sent. Check the records, then raise max_changes or set force: true"
            % (count, names, ", ..." if len(risky) > 5 else "", max_changes)
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
