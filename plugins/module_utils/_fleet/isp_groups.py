# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ISP groups as data: recipient domains, MX patterns and throttling replies.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only: the accounting parser runs on the PowerMTA
host and the test double imports this file by path.

This is the one source of the ISP groups: the ``powermta`` role's default ISP
policies are these groups (``isp_policies()`` through the ``isp_groups`` filter:
one ``domain-macro`` per group, its ``mx`` rollup lines, ``<domain $NAME>`` with
``directives``, an ``<smtp-pattern-list>`` from ``throttle_patterns``), and the
warm-up classifies accounting records by the same groups with the same
inventory overrides (``powermta_isp_policies``), so a lab can map every group
to its own domains and MX names in one place. ``other`` is the catch-all
(``<domain *>``). ``directives`` are starting points for PowerMTA's
``<domain>`` of the group, not vendor advice.

Throttling patterns come from the providers' published error pages as collected
in shared/reference/warmup.md section 4 (Gmail: smtpfieldmanual/google and
KumoMTA shaping rules; Yahoo/AOL: postmaster.yahooinc.com/error-codes; Microsoft:
S775/S3114 reputation throttles; Comcast: postmaster.comcast.net/mail-error-codes;
Apple: KumoMTA community shaping rules). Only replies that signal the *sending IP*
is being slowed for volume or reputation are listed; per-recipient limits
(Gmail 450 4.2.1) and connection-count limits are deliberately left out because
they say nothing about the IP's reputation.
"""

from __future__ import annotations

import copy
import fnmatch
import re

OTHER = "other"

# Order matters only for MX matching (first match wins); domains are unique.
DEFAULT_ISP_GROUPS = [
    {
        "name": "gmail",
        "domains": ["gmail.com", "googlemail.com"],
        "mx_patterns": ["*.google.com", "*.googlemail.com"],
        "throttle_patterns": [
            r"4\.7\.28\b.*unusual rate",
            r"Our system has detected an unusual rate",
            r"4\.7\.0\b.*very low reputation of the sending",
            r"4\.7\.0\b.*nature of the content and/or the links",
        ],
        "directives": {"max-smtp-out": 10, "max-msg-per-connection": 50, "max-errors-per-connection": 5,
                       "max-connect-rate": "60/m", "backoff-max-msg-rate": "100/h", "backoff-max-smtp-out": 2,
                       "backoff-retry-after": "30m", "backoff-to-normal-after": "2h"},
    },
    {
        "name": "yahoo",
        "domains": [
            "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.ca",
            "yahoo.com.au", "yahoo.com.br", "ymail.com", "rocketmail.com",
            "aol.com", "aol.co.uk", "aim.com", "verizon.net",
        ],
        "mx_patterns": ["*.yahoodns.net"],
        "throttle_patterns": [
            r"\[TS?S0[45]\]",
            r"\[IPTS0[45]\]",
            r"\[TS0[123]\]",
            r"will be permanently deferred",
        ],
        "directives": {"max-smtp-out": 10, "max-msg-per-connection": 20, "max-errors-per-connection": 5,
                       "backoff-max-msg-rate": "60/h", "backoff-max-smtp-out": 2, "backoff-retry-after": "1h",
                       "backoff-to-normal-after": "4h"},
    },
    {
        "name": "microsoft",
        "domains": [
            "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it",
            "hotmail.es", "live.com", "live.co.uk", "live.fr", "msn.com", "windowslive.com", "passport.com",
        ],
        "mx_patterns": ["*.olc.protection.outlook.com", "*.mail.protection.outlook.com"],
        "throttle_patterns": [
            r"4\.7\.65[01]\b",
            r"\(S775\)",
            r"\(S3114\)",
            r"temporarily rate limited due to IP reputation",
            r"4\.7\.500 Server busy\. Please try again later",
            r"\b421 RP-00[123]\b",
        ],
        "directives": {"max-smtp-out": 10, "max-msg-per-connection": 30, "max-errors-per-connection": 5,
                       "backoff-max-msg-rate": "100/h", "backoff-max-smtp-out": 2, "backoff-retry-after": "30m",
                       "backoff-to-normal-after": "2h"},
    },
    {
        "name": "apple",
        "domains": ["icloud.com", "me.com", "mac.com"],
        "mx_patterns": ["*.mail.icloud.com"],
        "throttle_patterns": [
            r"\[HCM1\] Your mail from \S+ was deferred",
        ],
        "directives": {"max-smtp-out": 5, "max-msg-per-connection": 20, "backoff-max-msg-rate": "60/h",
                       "backoff-retry-after": "1h", "backoff-to-normal-after": "2h"},
    },
    {
        "name": "comcast",
        "domains": ["comcast.net"],
        "mx_patterns": ["*.comcast.net"],
        "throttle_patterns": [
            r"\bRL0000\d+",
            r"4\.1\.0\b.*Throttled",
        ],
        "directives": {"max-smtp-out": 5, "max-msg-per-connection": 20, "backoff-max-msg-rate": "60/h",
                       "backoff-retry-after": "1h", "backoff-to-normal-after": "2h"},
    },
    {
        "name": OTHER,
        "domains": [],
        "mx_patterns": [],
        "throttle_patterns": [
            r"\brate[- ]limit(ed|ing)?\b",
            r"\bthrottl(ed|ing)\b",
        ],
        "directives": {},
    },
]

_GROUP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class IspGroupError(ValueError):
    """An ISP group definition is malformed; the message names the fix."""


def default_isp_groups():
    """A deep copy of the shipped groups (callers may modify it)."""
    return copy.deepcopy(DEFAULT_ISP_GROUPS)


def merge_isp_groups(overrides=None, base=None):
    """Merge ``overrides`` (a list of group dicts) into the defaults by name.

    Keys of an override replace those of the default group of the same name;
    a new name adds a group (kept before ``other``); ``state: absent`` removes
    one (``other`` cannot be removed). Patterns are validated here, so bad input
    fails before anything reads a file.
    """
    groups = {g["name"]: dict(g) for g in (base if base is not None else default_isp_groups())}
    order = [g["name"] for g in (base if base is not None else DEFAULT_ISP_GROUPS)]
    for position, item in enumerate(overrides or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise IspGroupError("isp_groups item %d must be a dict with a 'name' string, got %r" % (position, item))
        name = item["name"]
        if not _GROUP_NAME_RE.match(name):
            raise IspGroupError(
                "isp_groups item %d: name %r must match [a-z][a-z0-9_]* (it becomes a PowerMTA domain-macro)"
                % (position, name)
            )
        if item.get("state") == "absent":
            if name == OTHER:
                raise IspGroupError("isp_groups: the catch-all group 'other' cannot be removed")
            groups.pop(name, None)
            order = [n for n in order if n != name]
            continue
        merged = dict(groups.get(name, {"name": name, "domains": [], "mx_patterns": [], "throttle_patterns": []}))
        merged.update({k: v for k, v in item.items() if k != "state"})
        groups[name] = merged
        if name not in order:
            order.insert(order.index(OTHER) if OTHER in order else len(order), name)
    result = [groups[n] for n in order]
    validate_isp_groups(result)
    return result


def validate_isp_groups(groups):
    seen_domains = {}
    names = set()
    for group in groups:
        name = group.get("name")
        if name in names:
            raise IspGroupError("isp_groups: group %r is defined twice" % name)
        names.add(name)
        for key in ("domains", "mx_patterns", "throttle_patterns"):
            value = group.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise IspGroupError("isp_groups[%s].%s must be a list of strings, got %r" % (name, key, value))
        if not isinstance(group.get("directives", {}), dict):
            raise IspGroupError("isp_groups[%s].directives must be a dict of PowerMTA <domain> directives, got %r"
                                % (name, group.get("directives")))
        for reply in group.get("reply_patterns") or []:
            if not isinstance(reply, dict) or not isinstance(reply.get("regex"), str) or not isinstance(
                    reply.get("action"), str):
                raise IspGroupError("isp_groups[%s].reply_patterns items must be {regex, action} strings, got %r"
                                    % (name, reply))
        for domain in group.get("domains", []):
            domain = domain.lower().rstrip(".")
            if domain in seen_domains and seen_domains[domain] != name:
                raise IspGroupError(
                    "isp_groups: domain %r is in both %r and %r; keep it in one group"
                    % (domain, seen_domains[domain], name)
                )
            seen_domains[domain] = name
        for pattern in group.get("throttle_patterns", []):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise IspGroupError(
                    "isp_groups[%s].throttle_patterns: %r is not a valid regex (%s)" % (name, pattern, exc)
                ) from exc
    if OTHER not in names:
        raise IspGroupError("isp_groups must keep the catch-all group 'other'")


def isp_policies(overrides=None, include_other=False):
    """The ISP groups as the ``powermta`` role's policies: defaults merged with ``overrides`` by name.

    Each item: ``name, domains, mx_patterns, throttle_patterns, directives, reply_patterns`` (extra
    ``{regex, action}`` replies besides the throttling ones, which render as ``mode=backoff``).
    ``other`` is left out unless ``include_other`` (PowerMTA's ``<domain *>`` has its own settings).
    """
    groups = merge_isp_groups(overrides)
    result = []
    for group in groups:
        if group["name"] == OTHER and not include_other:
            continue
        item = {"name": group["name"], "domains": list(group.get("domains", [])),
                "mx_patterns": list(group.get("mx_patterns", [])),
                "throttle_patterns": list(group.get("throttle_patterns", [])),
                "directives": dict(group.get("directives") or {}),
                "reply_patterns": list(group.get("reply_patterns") or [])}
        for key, value in group.items():
            if key not in item:
                item[key] = value
        result.append(item)
    return result


def group_names(groups=None):
    return [g["name"] for g in (groups if groups is not None else DEFAULT_ISP_GROUPS)]


class IspClassifier:
    """Maps a recipient domain (and optionally the remote MX host) to a group.

    Domain lookups are cached: accounting files repeat few domains many times.
    """

    def __init__(self, groups=None, cache_size=100000):
        self.groups = groups if groups is not None else default_isp_groups()
        self._by_domain = {}
        for group in self.groups:
            for domain in group.get("domains", []):
                self._by_domain[domain.lower().rstrip(".")] = group["name"]
        self._mx = [(g["name"], [p.lower() for p in g.get("mx_patterns", [])]) for g in self.groups]
        self._throttle = {}
        for group in self.groups:
            patterns = group.get("throttle_patterns", [])
            self._throttle[group["name"]] = (
                re.compile("|".join("(?:%s)" % p for p in patterns), re.IGNORECASE) if patterns else None
            )
        self._cache = {}
        self._cache_size = cache_size

    def by_domain(self, domain):
        """Group of a recipient domain; subdomains of a listed domain count too."""
        domain = (domain or "").lower().rstrip(".")
        cached = self._cache.get(domain)
        if cached is not None:
            return cached
        name = self._by_domain.get(domain)
        if name is None:
            parts = domain.split(".")
            for start in range(1, len(parts) - 1):
                name = self._by_domain.get(".".join(parts[start:]))
                if name is not None:
                    break
        name = name or OTHER
        if len(self._cache) < self._cache_size:
            self._cache[domain] = name
        return name

    def by_mx(self, mx_host):
        """Group whose MX pattern matches ``mx_host``, else ``other``."""
        host = (mx_host or "").lower().rstrip(".")
        if not host:
            return OTHER
        for name, patterns in self._mx:
            for pattern in patterns:
                if fnmatch.fnmatchcase(host, pattern):
                    return name
        return OTHER

    def classify(self, domain, mx_host=None):
        name = self.by_domain(domain)
        if name == OTHER and mx_host:
            return self.by_mx(mx_host)
        return name

    def is_throttle(self, isp, reply):
        """True when a transient reply matches the throttling patterns of ``isp``."""
        regex = self._throttle.get(isp)
        return bool(regex is not None and reply and regex.search(reply))


def mx_host_from_dsn_mta(dsn_mta):
    """Host name of PowerMTA's ``dsnMta`` field: ``mx.example.com (192.0.2.1)``."""
    if not dsn_mta:
        return ""
    return dsn_mta.split(" ", 1)[0].strip().lower().rstrip(".")
