# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How far a <source> range reaches: the limits the linter (open-relay, http-access-open) and preflight share.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).
"""

from __future__ import annotations

import ipaddress

# The widest injector range relaying or AUTH may be opened to without a finding: IP version -> prefix length.
# Preflight (issue 20) refuses wider ranges by the same numbers.
INJECTOR_PREFIX_LIMIT = {4: 16, 6: 48}

# Wider than this (IP version -> prefix length) is a "wide" range: a public one is someone else's network
# (relaying for it is an open relay), and no wide range gets admin rights on the web monitor.
WIDE_PREFIX_LIMIT = {4: 24, 6: 64}

# The operator's own address space: RFC 1918, RFC 6598 shared space, link-local, IPv6 unique local and link-local.
# Documentation ranges are NOT in it (Python's is_private counts them; here they stand for public addresses).
_PRIVATE = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7",
                 "fe80::/10")
)


def is_private(network):
    """True for a range inside the operator's own address space (see _PRIVATE), loopback excluded."""
    return any(network.version == own.version and network.subnet_of(own) for own in _PRIVATE)


def wider_than(network, limits):
    """True when ``network`` has a shorter prefix than ``limits`` allows for its IP version."""
    return network.prefixlen < limits[network.version]


def is_wide(network):
    """True for a range wider than WIDE_PREFIX_LIMIT that is not loopback (False for None)."""
    return network is not None and not network.is_loopback and wider_than(network, WIDE_PREFIX_LIMIT)


def relay_exposure(network, limits=None):
    """What relaying for ``network`` opens: ``"any"`` (0/0, ::/0), ``"public"`` (a public range wider than
    WIDE_PREFIX_LIMIT), ``"private"`` (an own range wider than ``limits``, default INJECTOR_PREFIX_LIMIT),
    or None (loopback, a host, a narrow range)."""
    if network is None or network.is_loopback:
        return None
    if network.prefixlen == 0:
        return "any"
    if is_private(network):
        return "private" if wider_than(network, limits or INJECTOR_PREFIX_LIMIT) else None
    return "public" if wider_than(network, WIDE_PREFIX_LIMIT) else None
