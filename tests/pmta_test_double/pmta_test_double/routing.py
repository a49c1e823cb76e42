# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: queues, ``<domain>`` settings, MX rollups and DNS.

- ``<domain>`` patterns (§3.3.10): ``*``, ``example.com``, ``*.example.com``
  (subdomains only), ``[*.]example.com`` (domain and subdomains), ``$macro`` and
  ``name.$macro`` (§3.3.1.33.4). The most specific match wins whatever the file
  order; settings merge from general to specific; at equal specificity a vMTA's
  own block beats its pool's, which beats the global one, and an explicit domain
  beats a macro one.
- MX rollups (§10.17): only lowest-preference MXs count; an explicit rollup
  matches when DNS returns every MX configured for it and delivers to those
  MXs; a wildcard rollup needs ``smtp-hosts`` on the rollup queue, or
  ``rollup-by-ip`` (then each message goes to the hosts its own domain resolved
  to). A wildcard rollup queue with neither has no route: its mail is not
  delivered (transient errors, then bounce-after).
- DNS through the host's resolver: ``name-server`` IPs (§3.3.1.26, port 53,
  round robin) or /etc/resolv.conf.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import threading
import time

import dns.exception
import dns.resolver

from .values import boolean, expand_macros

# Defaults of the <domain> settings the double acts on (§3.3.10; pmta.md).
DOMAIN_DEFAULTS = {
    "max-smtp-out": "20",
    "max-msg-per-connection": "0",
    "retry-after": "10m",
    "bounce-after": "4d12h",
    "backoff-retry-after": "1h",
    "backoff-max-smtp-out": "20",
    "backoff-to-normal-after": "never",
    "use-starttls": "yes",
    "require-starttls": "no",
    "max-cold-virtual-mta-msg": "0/d",
}


class NoSuchDomain(Exception):
    """NXDOMAIN: a permanent routing failure (bounce category bad-domain)."""


class TemporaryDnsError(Exception):
    """SERVFAIL, timeout: try again later."""


class NoRoute(Exception):
    """The queue has no way to find hosts (wildcard rollup without smtp-hosts, §10.17)."""


def specificity(pattern, name):
    """A sort key when ``pattern`` matches domain/queue ``name``, else None (§3.3.10)."""
    if pattern == "*":
        return (0, 0, 0)
    if pattern.startswith("[*.]"):
        base = pattern[4:]
        if name == base or name.endswith("." + base):
            return (1, len(base), 0)
        return None
    if pattern.startswith("*."):
        base = pattern[2:]
        if name.endswith("." + base):
            return (1, len(base), 1)  # subdomains only: narrower than [*.] of the same base
        return None
    if pattern.startswith("[") and pattern.endswith("]"):
        try:
            if ipaddress.ip_address(name.strip("[]")) in ipaddress.ip_network(pattern[1:-1], strict=False):
                return (1, 0, 0)
        except ValueError:
            pass
        return None
    return (2, 0, 0) if pattern == name else None


def _matching(blocks, name, level, macros):
    found = []
    for pattern, settings in blocks:
        explicit = 0 if "$" in pattern else 1
        for concrete in expand_macros(pattern, macros):
            key = specificity(concrete, name)
            if key is not None:
                found.append((key + (explicit, level), settings))
                break
    return found


def domain_settings(config, name, vmta_name=""):
    """The merged ``<domain>`` settings for queue ``name`` in vMTA ``vmta_name`` (cached per loaded config)."""
    cache = config.__dict__.setdefault("_settings_cache", {})
    key = (name, vmta_name)
    if key not in cache:
        cache[key] = _merge(config, name, vmta_name)
    return cache[key]


def _merge(config, name, vmta_name):
    layers = _matching(config.domains, name, 0, config.macros)
    vmta = config.vmtas.get(vmta_name)
    if vmta is not None:
        pool = config.pools.get(config.pool_of(vmta_name))
        if pool is not None:
            layers += _matching(pool.domains, name, 1, config.macros)
        layers += _matching(vmta.domains, name, 2, config.macros)
    merged = dict(DOMAIN_DEFAULTS)
    for _key, settings in sorted(layers, key=lambda item: item[0]):
        for directive, value in settings.items():
            if value == '""':
                merged.pop(directive, None)
                if directive in DOMAIN_DEFAULTS:
                    merged[directive] = DOMAIN_DEFAULTS[directive]
            else:
                merged[directive] = value
    return merged


class Resolver:
    """MX and A lookups with a small cache (60 s of wall clock)."""

    def __init__(self, name_servers, port=53):
        if name_servers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = list(name_servers)  # tried in turn (§3.3.1.26)
            self._resolver.rotate = True
            self._resolver.port = port  # 53 unless the TEST-DOUBLE-name-server-port hook says otherwise
        else:
            try:
                self._resolver = dns.resolver.Resolver()  # /etc/resolv.conf, as PowerMTA without name-server
            except dns.resolver.NoResolverConfiguration:
                # No name server configured (an isolated host): PowerMTA still starts; every lookup then fails
                # as a transient error, so mail waits in its queue (t records) instead of the daemon crashing.
                self._resolver = dns.resolver.Resolver(configure=False)
        self._resolver.lifetime = 5.0
        self._cache = {}
        self._lock = threading.Lock()

    def _query(self, name, rdtype):
        key = (name, rdtype)
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > time.monotonic():
                if isinstance(hit[1], Exception):
                    raise hit[1]
                return hit[1]
        try:
            answer = self._resolver.resolve(name, rdtype, search=False)
            result = list(answer)
        except dns.resolver.NXDOMAIN:
            result = NoSuchDomain("%s: no such domain" % name)
        except dns.resolver.NoAnswer:
            result = []
        except (dns.exception.DNSException, OSError) as exc:
            raise TemporaryDnsError("%s %s: %s" % (name, rdtype, exc)) from exc
        with self._lock:
            self._cache[key] = (time.monotonic() + 60, result)
        if isinstance(result, Exception):
            raise result
        return result

    def lowest_mx(self, domain):
        """Lowest-preference MX names; a domain without MX is its own MX (RFC 5321 §5.1)."""
        return self.mx_levels(domain)[0]

    def mx_levels(self, domain):
        records = self._query(domain, "MX")
        if not records:
            return [[domain]]
        levels = {}
        for record in records:
            levels.setdefault(record.preference, []).append(str(record.exchange).rstrip(".").lower())
        return [sorted(set(levels[pref])) for pref in sorted(levels)]

    def addresses(self, host):
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        return [record.address for record in self._query(host, "A")]

    def clear(self):
        with self._lock:
            self._cache.clear()


def rollup_for(config, resolver, domain, vmta_name=""):
    """(rollup queue name, by_ip) for ``domain`` per §10.17, or (None, False)."""
    if not config.rollups:
        return None, False
    if boolean(domain_settings(config, domain, vmta_name).get("disable-mx-rollup"), False):
        return None, False
    try:
        lowest = set(resolver.lowest_mx(domain))
    except (NoSuchDomain, TemporaryDnsError):
        return None, False
    explicit, wildcard = {}, []
    for pattern, name, by_ip in config.rollups:
        if any(c in pattern for c in "*?["):
            wildcard.append((pattern, name, by_ip))
        else:
            explicit.setdefault(name, set()).add(pattern)
    for name, hosts in explicit.items():
        # "No match occurs when a rollup queue ... has more lowest preference MXs configured
        # to it than what is returned by DNS."
        if hosts <= lowest:
            return name, False
    for pattern, name, by_ip in wildcard:
        if any(fnmatch.fnmatchcase(host, pattern) for host in lowest):
            return name, by_ip
    return None, False


def destinations(config, resolver, queue_name, vmta_name, recipient_domain, by_ip):
    """Preference levels of (host, port) to try for a queue, from smtp-hosts, rollup or MX."""
    from .checks import smtp_hosts

    settings = domain_settings(config, queue_name, vmta_name)
    spec = settings.get("smtp-hosts") or settings.get("route")
    if spec:
        parsed = smtp_hosts(spec)
        if isinstance(parsed, tuple):
            return [[(host, 25) for host in level] for level in resolver.mx_levels(parsed[1])]
        return [[(host, port) for host, port, _literal in level] for level in parsed]
    if queue_name.endswith(".rollup"):
        explicit = sorted(p for p, name, _b in config.rollups if name == queue_name and not any(
            c in p for c in "*?["))
        if explicit:
            return [[(host, 25) for host in explicit]]  # §10.17: the defined MXs are looked up
        if by_ip:
            return [[(host, 25) for host in level] for level in resolver.mx_levels(recipient_domain)]
        raise NoRoute("wildcard rollup queue %s has no smtp-hosts and no rollup-by-ip (§10.17)" % queue_name)
    return [[(host, 25) for host in level] for level in resolver.mx_levels(queue_name)]
