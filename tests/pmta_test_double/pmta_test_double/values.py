# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: value types of the config, as the v5.0 User's Guide writes them.

Each parser raises ValueError with a short PowerMTA-style reason; the loader
turns it into ``Error in line N of FILE: invalid value ...``.
"""

from __future__ import annotations

import ipaddress
import re

TRUE = {"yes", "true", "on", "1"}
FALSE = {"no", "false", "off", "0"}

_INTERVAL = re.compile(r"(\d+)([wdhms])")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_RATE = re.compile(r"(\d+)/(\d*)(d|day|h|hr|m|min|s|sec)\Z")
_RATE_SECONDS = {"d": 86400, "day": 86400, "h": 3600, "hr": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
DAY = 86400


def boolean(value, default=False):
    """BOOLEAN (§3.2): yes|no|true|false; ``default`` for an empty value."""
    value = (value or "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    return default


def check_boolean(value):
    if (value or "").strip().lower() not in TRUE | FALSE:
        raise ValueError("invalid boolean %r (use yes or no)" % value)


def network(spec):
    """``0/0``, ``10/8``, ``192.0.2.1``, ``198.51.100.0/24``, ``::1`` as an ip_network."""
    spec = spec.strip()
    if "/" in spec and ":" not in spec:
        address, bits = spec.split("/", 1)
        octets = address.split(".")
        while len(octets) < 4:
            octets.append("0")
        spec = "%s/%s" % (".".join(octets), bits)
    return ipaddress.ip_network(spec, strict=False)


def is_network(name):
    try:
        network(name)
        return True
    except ValueError:
        return False


def interval(text):
    """TIME-INTERVAL (§3.2): ``1w2d12h``, ``300s``, ``10m``; a bare number is seconds."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    pos, total = 0, 0
    for match in _INTERVAL.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError("invalid time interval %r" % text)
    return total


def interval_list(text):
    """``retry-after 10m,10m,1h`` (§10.15): up to 30 intervals, the last one repeats."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items or len(items) > 30:
        raise ValueError("invalid interval list %r" % text)
    return [interval(item) for item in items]


def rate(text):
    """RATE (§3.3.10.33): ``unlimited``/``0`` -> None, else (count, seconds) from ``N/[M]unit``."""
    text = text.strip().lower()
    if text in ("unlimited", "0", ""):
        return None
    match = _RATE.match(text)
    if not match:
        raise ValueError("invalid rate %r (use N/unit, e.g. 500/h, 83/10m, 1000/d)" % text)
    count, multiplier, unit = int(match.group(1)), match.group(2), match.group(3)
    seconds = (int(multiplier) if multiplier else 1) * _RATE_SECONDS[unit]
    if seconds <= 0:
        raise ValueError("invalid rate %r" % text)
    return (count, seconds)


def daily_limits(text):
    """``max-cold-virtual-mta-msg 1/day,2/day`` (§3.3.10.48): a list of N/{d|day}."""
    limits = []
    for item in [i.strip() for i in text.split(",") if i.strip()]:
        if item == "0":
            limits.append(0)
            continue
        parsed = rate(item)
        if parsed is None:
            limits.append(0)
        elif parsed[1] != DAY:
            raise ValueError("invalid daily limit %r (use N/d or N/day)" % item)
        else:
            limits.append(parsed[0])
    if not limits:
        raise ValueError("argument missing")
    return limits


def integer(text, minimum=0):
    text = text.strip()
    if not text.lstrip("-").isdigit() or int(text) < minimum:
        raise ValueError("invalid number %r" % text)
    return int(text)


def unlimited_or_int(text):
    """``max-msg-per-connection`` and friends: 0 or ``unlimited`` mean no limit."""
    if text.strip().lower() == "unlimited":
        return 0
    return integer(text)


def ip_address(text):
    return str(ipaddress.ip_address(text.strip().strip("[]")))


def host_port(text, default_port=25):
    """``smtp-hosts`` items (§3.3.10.89): ``[192.0.2.1]:2525``, ``mx.example.com:25``, ``lookup:``-less."""
    text = text.strip()
    port = default_port
    literal = False
    if text.startswith("["):
        end = text.index("]")
        host, rest = text[1:end], text[end + 1:]
        literal = True
        if host.lower().startswith("ipv6:"):
            host = host[5:]
        if rest.startswith(":"):
            port = integer(rest[1:], 1)
        ipaddress.ip_address(host)
    else:
        host, sep, rest = text.rpartition(":")
        if not sep:
            host, rest = text, ""
        elif rest:
            port = integer(rest, 1)
        if not host:
            raise ValueError("invalid host %r" % text)
    return host, port, literal


def expand_macros(pattern, macros, depth=0):
    """§3.3.1.33.4: ``$name`` and ``x.$name`` expanded to concrete patterns; a loop is a load error."""
    if "$" not in pattern:
        return [pattern]
    if depth > 16:
        raise ValueError("domain-macro loop through %s" % pattern)
    out = []
    start = pattern.index("$")
    end = start + 1
    while end < len(pattern) and (pattern[end].isalnum() or pattern[end] in "_-"):
        end += 1
    name = pattern[start + 1:end]
    for value in macros.get(name, []):
        out.extend(expand_macros(pattern[:start] + value + pattern[end:], macros, depth + 1))
    return out
