# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNSBL checks that tell listings from errors and dead lists.

PRIVATE to the collection: no compatibility promise outside it.
The decision logic is plain Python; only :class:`DnspythonResolver` needs
dnspython, imported when it is used.

What it does differently from the usual checkers (see shared/reference/warmup.md 5):
- Spamhaus-style error codes (127.255.255.252 typo in the zone, .254 query via
  a public/unattributable resolver, .255 too many queries; 127.0.1.255 a DBL
  answer to an IP query) and answers outside 127.0.0.0/8 are *errors*, never
  listings;
- every zone is health-checked first with the RFC 5782 test points
  (127.0.0.2 must be listed, 127.0.0.1 must not; ::FFFF:7F00:2 / ::FFFF:7F00:1
  for IPv6): a zone that fails is reported unusable and its answers are not trusted;
- policy listings (Spamhaus PBL 127.0.0.10/.11) are configuration findings, not
  reputation: they never pause a warm-up;
- TXT reasons are fetched for listed addresses.
"""

from __future__ import annotations

import ipaddress
import traceback

try:
    import dns.exception
    import dns.resolver
except ImportError:  # warmup_dnsbl_check reports it with missing_required_lib("dnspython >= 2.0.0")
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None

# A maintained default: lists that are alive and free for low volume. SORBS
# (shut down June 2024), cbl.abuseat.org (folded into Spamhaus XBL) and msrbl
# are deliberately absent. Spamhaus answers 127.255.255.254 to queries through
# public resolvers: use your own resolver, or Spamhaus DQS (<key>.zen.dq.spamhaus.net).
DEFAULT_ZONES = (
    {"zone": "zen.spamhaus.org", "ipv6": True},
    {"zone": "b.barracudacentral.org", "ipv6": False},  # free after registering the querying resolver's IP
    {"zone": "bl.spamcop.net", "ipv6": False},
    {"zone": "psbl.surriel.com", "ipv6": False},
    {"zone": "bl.mailspike.net", "ipv6": False},
    {"zone": "dnsbl-1.uceprotect.net", "ipv6": False},  # level 1 only: levels 2/3 list the neighbours
)

ERROR_CODES = {
    "127.255.255.252": "typing error in the DNSBL zone name (Spamhaus 127.255.255.252)",
    "127.255.255.254": "query refused: sent through a public or unattributable resolver (Spamhaus 127.255.255.254)",
    "127.255.255.255": "query refused: too many queries (Spamhaus 127.255.255.255)",
    "127.0.1.255": "IP queried against a domain list (Spamhaus DBL 127.0.1.255)",
}

SPAMHAUS_MEANINGS = {
    "127.0.0.2": "SBL: Spamhaus Block List",
    "127.0.0.3": "CSS: Spamhaus snowshoe/low-reputation senders",
    "127.0.0.4": "XBL: exploited host (CBL)",
    "127.0.0.9": "DROP: hijacked network",
    "127.0.0.10": "PBL: ISP-maintained policy listing",
    "127.0.0.11": "PBL: Spamhaus-maintained policy listing",
    "127.0.0.30": "BCL: botnet controller",
}
SPAMHAUS_POLICY_CODES = ("127.0.0.10", "127.0.0.11")

TEST_POINTS = {
    4: ("127.0.0.2", "127.0.0.1"),
    6: ("::ffff:7f00:2", "::ffff:7f00:1"),
}

LISTED, NOT_LISTED, POLICY, ERROR = "listed", "not_listed", "policy", "error"


class DnsblInputError(ValueError):
    """Bad arguments; the message names the option and the fix."""


class Lookup:
    """The outcome of one DNS query: ``nxdomain``, ``answer`` (with values) or ``error``."""

    __slots__ = ("outcome", "values", "error")

    def __init__(self, outcome, values=(), error=""):
        self.outcome = outcome
        self.values = list(values)
        self.error = error

    def __repr__(self):
        return "Lookup(%r, %r, %r)" % (self.outcome, self.values, self.error)


def is_spamhaus_style(zone):
    """Zones that use the Spamhaus return codes (zen/pbl/sbl-xbl and any spamhaus zone)."""
    labels = zone.lower().rstrip(".").split(".")
    return "spamhaus" in labels or labels[0] in ("zen", "pbl", "sbl-xbl") or zone.lower().endswith(".dq.spamhaus.net")


def normalize_zones(zones):
    """Strings or dicts ``{zone, ipv6, policy_codes, error_codes}`` -> list of dicts."""
    if zones is None:
        zones = [dict(z) for z in DEFAULT_ZONES]
    if not isinstance(zones, (list, tuple)) or not zones:
        raise DnsblInputError("zones must be a non-empty list of zone names or {zone: NAME, ...} dicts")
    result = []
    seen = set()
    for position, item in enumerate(zones):
        spec = {"zone": item} if isinstance(item, str) else dict(item) if isinstance(item, dict) else None
        if spec is None or not isinstance(spec.get("zone"), str) or not spec["zone"].strip(". "):
            raise DnsblInputError("zones[%d] must be a zone name or a dict with 'zone', got %r" % (position, item))
        unknown = set(spec) - {"zone", "ipv6", "policy_codes", "error_codes"}
        if unknown:
            raise DnsblInputError("zones[%d] has unknown keys %s; allowed: zone, ipv6, policy_codes, error_codes"
                                  % (position, ", ".join(sorted(unknown))))
        zone = spec["zone"].strip().strip(".").lower()
        if zone in seen:
            continue
        seen.add(zone)
        spamhaus = is_spamhaus_style(zone)
        policy = spec.get("policy_codes")
        if policy is None:
            policy = list(SPAMHAUS_POLICY_CODES) if spamhaus else []
        errors = dict(ERROR_CODES)
        for code in spec.get("error_codes") or []:
            errors.setdefault(str(code), "error code %s of %s" % (code, zone))
        for code in list(policy) + list(spec.get("error_codes") or []):
            try:
                ipaddress.IPv4Address(str(code))
            except ValueError as exc:
                raise DnsblInputError("zones[%d] (%s): %r is not an IPv4 return code" % (position, zone, code)) from exc
        result.append({
            "zone": zone,
            "ipv6": bool(spec.get("ipv6", True)),
            "policy_codes": sorted({str(c) for c in policy}),
            "error_codes": errors,
            "meanings": SPAMHAUS_MEANINGS if spamhaus else {},
        })
    return result


def normalize_ips(ips):
    if not isinstance(ips, (list, tuple)) or not ips:
        raise DnsblInputError("ips must be a non-empty list of IPv4/IPv6 addresses")
    result = []
    for value in ips:
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError as exc:
            raise DnsblInputError("ips: %r is not an IPv4 or IPv6 address" % (value,)) from exc
        if str(address) not in result:
            result.append(str(address))
    return result


def reverse_label(ip):
    """``203.0.113.66`` -> ``66.113.0.203``; IPv6: all 32 nibbles of the expanded form, reversed (RFC 5782 2.4)."""
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def query_name(ip, zone):
    return "%s.%s." % (reverse_label(ip), zone)


def classify_answer(spec, lookup):
    """Interpret the A lookup of one address in one zone.

    Returns ``(status, codes, detail)`` with status listed / not_listed / policy / error.
    An answer with both reputation and policy codes is ``listed``.
    """
    if lookup.outcome == "nxdomain":
        return NOT_LISTED, [], ""
    if lookup.outcome == "error":
        return ERROR, [], lookup.error
    codes = sorted(set(lookup.values), key=ipaddress.ip_address)
    if not codes:
        return NOT_LISTED, [], ""
    errors = [spec["error_codes"][c] for c in codes if c in spec["error_codes"]]
    if errors:
        return ERROR, codes, "; ".join(errors)
    outside = [c for c in codes if ipaddress.ip_address(c) not in ipaddress.ip_network("127.0.0.0/8")]
    if outside:
        return ERROR, codes, ("answer %s is outside 127.0.0.0/8: not a DNSBL answer (a resolver rewriting "
                              "NXDOMAIN, or a dead zone)" % ", ".join(outside))
    reputation = [c for c in codes if c not in spec["policy_codes"]]
    meanings = "; ".join(spec["meanings"].get(c, c) for c in codes)
    if reputation:
        return LISTED, codes, meanings
    return POLICY, codes, meanings


def evaluate_health(spec, version, listed_lookup, unlisted_lookup):
    """RFC 5782 test points -> (usable, reason)."""
    listed_point, unlisted_point = TEST_POINTS[version]
    status, codes, detail = classify_answer(dict(spec, policy_codes=[]), listed_lookup)
    if status == ERROR:
        return False, "test point %s: %s" % (listed_point, detail or "no usable answer")
    if status != LISTED:
        return False, ("test point %s is not listed: the zone is dead, empty, or does not answer this resolver"
                       % listed_point)
    status, codes, detail = classify_answer(dict(spec, policy_codes=[]), unlisted_lookup)
    if status == ERROR:
        return False, "test point %s: %s" % (unlisted_point, detail or "no usable answer")
    if status != NOT_LISTED:
        return False, ("test point %s is listed (%s): the zone lists everything (wildcard or shut-down list)"
                       % (unlisted_point, ", ".join(codes)))
    return True, "RFC 5782 test points answer correctly"


class DnspythonResolver:
    """Queries one resolver (or the system's) with dnspython."""

    def __init__(self, server=None, port=53, timeout=3.0):
        if not HAS_DNSPYTHON:  # fail early, not at the first query
            raise ImportError("DnspythonResolver needs dnspython: " + DNSPYTHON_IMPORT_ERROR)
        self.server = server
        self.port = port
        self.timeout = timeout
        self._resolver = None

    def _get(self):
        if self._resolver is None:
            if self.server:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = [self.server]
            else:
                resolver = dns.resolver.Resolver()
            resolver.port = self.port
            resolver.timeout = self.timeout
            resolver.lifetime = self.timeout * 2
            self._resolver = resolver
        return self._resolver

    def __call__(self, name, rdtype):
        try:
            answer = self._get().resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup("nxdomain")
        except dns.resolver.NoNameservers as exc:
            return Lookup("error", error="no resolver answered (SERVFAIL or REFUSED): %s" % exc)
        except dns.exception.Timeout:
            return Lookup("error", error="timeout after %ss" % (self.timeout * 2))
        except dns.exception.DNSException as exc:
            return Lookup("error", error="%s: %s" % (type(exc).__name__, exc))
        if answer.rrset is None:
            return Lookup("nxdomain")  # the name exists without this type: not listed
        if rdtype == "TXT":
            values = [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        else:
            values = [r.to_text() for r in answer.rrset]
        return Lookup("answer", values)


def check(ips, zones=None, query=None, health_check=True):
    """Check every IP in every zone; ``query(name, rdtype) -> Lookup``.

    Returns ``{results, blocklisted, zones, findings, summary}``; ``blocklisted``
    (``{ip: [zones]}``, reputation listings on usable zones only) is the input of
    the warm-up engine.
    """
    addresses = normalize_ips(ips)
    specs = normalize_zones(zones)
    if query is None:
        query = DnspythonResolver()
    zone_report = []
    usable = {}
    for spec in specs:
        entry = {"zone": spec["zone"], "usable": True, "reason": "not health-checked",
                 "ipv6": spec["ipv6"], "ipv6_usable": spec["ipv6"], "ipv6_reason": ""}
        if health_check:
            for version in (4, 6) if spec["ipv6"] else (4,):
                listed_point, unlisted_point = TEST_POINTS[version]
                ok, reason = evaluate_health(spec, version, query(query_name(listed_point, spec["zone"]), "A"),
                                             query(query_name(unlisted_point, spec["zone"]), "A"))
                if version == 4:
                    entry["usable"], entry["reason"] = ok, reason
                else:
                    entry["ipv6_usable"], entry["ipv6_reason"] = ok and entry["usable"], reason
        usable[spec["zone"]] = entry
        zone_report.append(entry)

    results = []
    blocklisted = {}
    findings = []
    for ip in addresses:
        version = ipaddress.ip_address(ip).version
        for spec in specs:
            zone = spec["zone"]
            health = usable[zone]
            item = {"ip": ip, "zone": zone, "query": query_name(ip, zone), "status": None, "codes": [],
                    "txt": [], "detail": ""}
            if version == 6 and not spec["ipv6"]:
                item.update(status="skipped", detail="zone does not list IPv6 addresses")
            elif not health["usable"] or (version == 6 and not health["ipv6_usable"]):
                item.update(status=ERROR, detail="zone unusable: %s" % (
                    health["reason"] if not health["usable"] else health["ipv6_reason"]))
            else:
                status, codes, detail = classify_answer(spec, query(item["query"], "A"))
                item.update(status=status, codes=codes, detail=detail)
                if status in (LISTED, POLICY):
                    txt = query(item["query"], "TXT")
                    item["txt"] = sorted(txt.values) if txt.outcome == "answer" else []
                if status == LISTED:
                    blocklisted.setdefault(ip, []).append(zone)
                if status == POLICY:
                    findings.append({
                        "ip": ip, "zone": zone, "codes": codes,
                        "finding": ("%s is on a policy list in %s (%s): the address owner marks it as not meant "
                                    "to send mail directly. This is configuration, not reputation: ask the "
                                    "network owner to remove it from the PBL, or remove it yourself at "
                                    "the list's site." % (ip, zone, detail)),
                    })
            results.append(item)
    summary = {status: sum(1 for r in results if r["status"] == status)
               for status in (LISTED, NOT_LISTED, POLICY, ERROR, "skipped")}
    summary["unusable_zones"] = sorted(z["zone"] for z in zone_report if not z["usable"])
    return {"results": results, "blocklisted": blocklisted, "zones": zone_report, "findings": findings,
            "summary": summary}
