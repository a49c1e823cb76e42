# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Value types of PowerMTA directives (User's Guide v5.0 §3.2 and per directive).

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

Each checker takes the directive's value (comment stripped, not empty) and
returns ``None`` when it is valid, else ``(message, hint)``. The schema names a
type as a string (``"rate"``, ``"int:0-100"``, ``"enum:smtp|pipe"``);
``checker(type_name)`` turns it into a checker once.
"""

from __future__ import annotations

import ipaddress
import re

from .patterns import (
    check_email_regex,
    check_header_pattern,
    check_header_rule,
    check_pattern_result,
    check_pattern_rule,
    check_regex_words,
    check_reply,
)
from .tokens import NAME as _NAME
from .tokens import TIME as _TIME
from .tokens import TIME_HINT
from .tokens import bad as _bad

_BOOL = frozenset({"yes", "no", "true", "false"})
_RATE_UNIT = r"(?:d|day|h|hr|m|min|s|sec)"
_RATE = re.compile(r"(?:unlimited|0|[1-9]\d*/(?:\d+)?" + _RATE_UNIT + r")\Z", re.I)
_ZERO_RATE = re.compile(r"0/(?:\d+)?" + _RATE_UNIT + r"\Z", re.I)  # "0/d": the default daily cold-vMTA limit
_VOLUME_RATE = re.compile(r"(?:unlimited|0|[1-9]\d*[bkmgt]?/(?:\d+)?" + _RATE_UNIT + r")\Z", re.I)
_SIZE = re.compile(r"\d+[bkmgt]\Z", re.I)
_IPV4_SHORT = re.compile(r"\d{1,3}(?:\.\d{1,3}){0,3}\Z")
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_-]{1,63}\.?\Z")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\Z")
_API_KEY = re.compile(r"[A-Za-z0-9_]{32,128}\Z")
_RECORD_TYPES = frozenset(
    {
        "d",
        "b",
        "t",
        "tq",
        "r",
        "f",
        "rb",
        "rs",
        "delivery",
        "bounce",
        "transient",
        "transient-queue",
        "receipt",
        "feedback-loop",
        "remote-bounce",
        "remote-status",
    }
)
_MACRO_NAME = re.compile(r"\w+\Z", re.ASCII)
_HEX40 = re.compile(r"[0-9A-Fa-f]{40}\Z")
_ALL_DIGITS_DOTTED = re.compile(r"[\d.]+\Z")

RATE_HINT = "unlimited, 0 or N/[M]unit with unit d|day|h|hr|m|min|s|sec, e.g. 500/h or 100/15m"


def is_ip_or_cidr(text):
    """PowerMTA CIDR: full or abbreviated IPv4 (``10/8``, ``0/0``, ``173.194/16``) or IPv6."""
    address, _sep, prefix = text.partition("/")
    if prefix and not prefix.isdigit():
        return False
    if ":" in address:
        try:
            ipaddress.IPv6Address(address.strip("[]"))
        except ValueError:
            return False
        return not prefix or int(prefix) <= 128
    if not _IPV4_SHORT.match(address):
        return False
    if any(int(octet) > 255 for octet in address.split(".")):
        return False
    if address.count(".") < 3 and not prefix:
        return False  # "10" alone is not an address
    return not prefix or int(prefix) <= 32


def network_of(text):
    """ipaddress network for a PowerMTA CIDR (``0/0`` → 0.0.0.0/0), or None."""
    if not is_ip_or_cidr(text):
        return None
    address, _sep, prefix = text.partition("/")
    if ":" not in address:
        octets = address.split(".")
        address = ".".join(octets + ["0"] * (4 - len(octets)))
    try:
        return ipaddress.ip_network(address.strip("[]") + ("/" + prefix if prefix else ""), strict=False)
    except ValueError:
        return None


def _check_bool(value):
    if value.lower() not in _BOOL:
        return _bad("invalid boolean %r" % value, "use yes, no, true or false")
    return None


def _int_checker(low=0, high=None, words=()):
    def check(value):
        if value.lower() in words:
            return None
        if not value.isdigit():
            allowed = " or ".join(("a whole number",) + tuple(words))
            return _bad("invalid number %r" % value, "use %s" % allowed)
        number = int(value)
        if number < low or (high is not None and number > high):
            return _bad("%s is out of range" % value, "use a number from %d to %s" % (low, high))
        return None

    return check


def _check_time(value):
    if not _TIME.match(value):
        return _bad("invalid time interval %r" % value, "use " + TIME_HINT)
    return None


def _check_time_or_never(value):
    if value.lower() == "never":
        return None
    return _check_time(value)


def _check_time_list(value):
    items = [item.strip() for item in value.split(",")]
    if len(items) > 30:
        return _bad("more than 30 retry intervals", "list at most 30 intervals (§10.15)")
    for item in items:
        if not _TIME.match(item):
            return _bad("invalid time interval %r in the list" % item, "use a comma list of " + TIME_HINT)
    return None


def _check_rate(value):
    if not _RATE.match(value):
        return _bad("invalid rate %r" % value, "use " + RATE_HINT)
    return None


def _check_rate_list(value):
    for item in value.split(","):
        item = item.strip()
        if not _RATE.match(item) and not _ZERO_RATE.match(item):
            return _bad("invalid rate %r in the list" % item, "use a comma list of daily limits such as 50/d,100/d")
    return None


def _check_volume_rate(value):
    if not _VOLUME_RATE.match(value):
        return _bad(
            "invalid data volume rate %r" % value,
            "use unlimited, 0 or N[b|k|m|g|t]/[X]unit, e.g. 10g/2h or 1024K/15s",
        )
    return None


def _check_size(value):
    if value == "0" or _SIZE.match(value):
        return None
    return _bad("invalid size %r" % value, "use N followed by b, k, m, g or t, e.g. 250M")


def _check_size_or_unlimited(value):
    if value.lower() == "unlimited" or value.isdigit():
        return None
    return _check_size(value)


def _check_cidr(value):
    if not is_ip_or_cidr(value):
        return _bad("invalid IP address or CIDR %r" % value, "use e.g. 192.0.2.10, 192.0.2.0/24 or 0/0")
    return None


def _check_cidr_then(rest_check, rest_name):
    def check(value):
        parts = value.split(None, 1)
        if len(parts) < 2:
            return _bad("argument missing", "give a CIDR and then %s" % rest_name)
        problem = _check_cidr(parts[0])
        if problem:
            return problem
        return rest_check(parts[1])

    return check


def _check_source_host(value):
    parts = value.split()
    if len(parts) != 2:
        return _bad("expected an IP (or CIDR) and a host name", "write smtp-source-host 192.0.2.10 mta1.example.com")
    address, host = parts
    if not is_ip_or_cidr(address):
        if is_ip_or_cidr(host):
            return _bad(
                "arguments reversed: the IP address must come first",
                "write smtp-source-host %s %s" % (host, address),
            )
        return _bad("invalid IP address %r" % address, "write smtp-source-host 192.0.2.10 mta1.example.com")
    if not _HOSTNAME.match(host) or _looks_like_ip(host):
        return _bad("invalid host name %r" % host, "use the vMTA's fully qualified host name (its PTR)")
    return None


def _check_listener(value):
    parts = value.split()
    address, _sep, port = parts[0].rpartition(":")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        return _bad("invalid listener %r" % parts[0], "use CIDR:PORT, e.g. 0/0:25 or 127.0.0.1:2525")
    if not is_ip_or_cidr(address.strip("[]")):
        return _bad("invalid listener address %r" % address, "use CIDR:PORT, e.g. 0/0:25 or 127.0.0.1:2525")
    for extra in parts[1:]:
        if not extra.startswith("source="):
            return _bad("unexpected %r after the address" % extra, "only source=NAME may follow CIDR:PORT")
    return None


def _check_http_access(value):
    parts = value.split()
    if len(parts) != 2:
        return _bad("expected CIDR and access level", "write http-access 127.0.0.1 admin")
    problem = _check_cidr(parts[0])
    if problem:
        return problem
    levels = parts[1].lower().split(",")
    if levels[0] not in ("none", "monitor", "operator", "admin") or (levels[1:] and levels[1:] != ["deny-logs"]):
        return _bad("invalid access level %r" % parts[1], "use none, monitor, monitor,deny-logs, operator or admin")
    return None


def _check_domain_key(value):
    fields = [field.strip() for field in value.split(",")]
    if len(fields) != 3:
        return _bad(
            "domain-key takes 3 comma-separated fields, found %d" % len(fields),
            "write domain-key SELECTOR,DOMAIN,KEYFILE (e.g. s1,example.com,/etc/pmta/dkim/s1.example.com.pem)",
        )
    selector, domain, keyfile = fields
    looks_like_path = "/" in keyfile or "\\" in keyfile or keyfile.endswith((".pem", ".key"))
    if not looks_like_path:
        if "/" in selector or selector.endswith((".pem", ".key")):
            return _bad(
                "the key file must be the last field",
                "write domain-key %s,%s,%s" % (domain, keyfile, selector),
            )
        return _bad("the last field %r is not a key file path" % keyfile, "write domain-key SELECTOR,DOMAIN,KEYFILE")
    if "." in selector and domain != "*" and "." not in domain:
        return _bad("selector and domain look swapped", "write domain-key %s,%s,%s" % (domain, selector, keyfile))
    if not selector or not domain:
        return _bad("empty selector or domain", "write domain-key SELECTOR,DOMAIN,KEYFILE")
    return None


def _check_domain_macro(value):
    parts = value.split(None, 1)
    if len(parts) < 2:
        return _bad("argument missing", "write domain-macro NAME domain1,domain2")
    if not _MACRO_NAME.match(parts[0]):
        return _bad(
            "invalid macro name %r" % parts[0],
            "only letters, digits and _ may name a domain macro (§3.3.1.33.4)",
        )
    return None


def _check_map_header(value):
    """``map-header-to-field RECORD-TYPE header_NAME FIELD``; tq cannot be used (§3.3.11.10)."""
    parts = value.split()
    if len(parts) != 3:
        return _bad("expected RECORD-TYPE header_NAME FIELD", "write e.g. map-header-to-field d header_x-foo orig")
    # §12.7.1's example maps a header for "fbl" records (the f type).
    problem = None if parts[0].lower() == "fbl" else _check_records(parts[0])
    if problem:
        return problem
    if parts[0].lower() in ("tq", "transient-queue"):
        return _bad("the tq record type cannot be used here", "map headers for d, b, t, r, ... (§3.3.11.10)")
    return None


def _check_rewrite_mail_from(value):
    """``mail-from SOURCE-ADDRESS TARGET-ADDRESS`` in a <rewrite-list> (§3.3.18.1)."""
    parts = value.split()
    if len(parts) != 2:
        return _bad("expected SOURCE-ADDRESS TARGET-ADDRESS", "write e.g. mail-from foo@* *@bar.example (§3.3.18.1)")
    source, target = parts
    if not target.isascii():
        return _bad(
            "the target address %r is not ASCII" % target, "the TARGET-ADDRESS cannot have non-ASCII (§3.3.18.1)"
        )
    if source == "<>" and "*" in target:
        return _bad(
            "a * in the target with an empty source address",
            "* in TARGET-ADDRESS copies from the source, so it cannot be used with <> (§3.3.18.1)",
        )
    return None


def _check_from_domain(value):
    """``from-domain SOURCE-DOMAIN TARGET-DOMAIN``: the target is one specific domain (§3.3.18.2)."""
    parts = value.split()
    if len(parts) != 2:
        return _bad("expected SOURCE-DOMAIN TARGET-DOMAIN", "write e.g. from-domain *.example.com example.net")
    if "*" in parts[1] or not _HOSTNAME.match(parts[1]):
        return _bad(
            "the target %r is not a specific domain name" % parts[1],
            "TARGET-DOMAIN must be a specific domain name, no wildcard (§3.3.18.2)",
        )
    return None


def _check_http_url(value):
    """An absolute http(s) URL without userinfo, query or fragment (§3.3.10.98.1)."""
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme.lower() not in ("http", "https") or not host:
        return _bad("%r is not an absolute http or https URL" % value, "write https://host[:port]/path (§3.3.10.98.1)")
    if "@" in host or "?" in rest or "#" in rest:
        return _bad(
            "%r has userinfo, a query string or a fragment" % value,
            "the URL should not contain any of them (§3.3.10.98.1)",
        )
    return None


def _check_queue_filter(value):
    """``queue-filter [!]DOMAIN[/VMTA],...`` with the queue name rules of §3.3.11.5."""
    for item in value.split(","):
        name = item.strip().lstrip("!")
        domain, _sep, vmta = name.partition("/")
        hint = "a queue is DOMAIN[/VMTA], DOMAIN qualified (a.example, *.a.example, [*.]a.example or *) (§3.3.11.5)"
        if domain.startswith("{") and domain.endswith("}"):
            return _bad("reserved queue name %r cannot be filtered" % domain, hint)
        bare = domain[4:] if domain.startswith("[*.]") else domain[2:] if domain.startswith("*.") else domain
        if domain != "*" and ("." not in bare or not _HOSTNAME.match(bare)):
            return _bad("invalid queue domain %r in queue-filter" % domain, hint)
        if vmta and vmta not in ("*", "{default}") and not _NAME.match(vmta):
            return _bad("invalid vMTA name %r in queue-filter" % vmta, "use a vMTA name, * or {default} (§3.3.11.5)")
    return None


def _check_hex40(value):
    if not _HEX40.match(value):
        return _bad("the Signals API key must be exactly 40 hexadecimal digits", "copy it from SparkPost (§10.1.4.2.1)")
    return None


def _check_abs_path(value):
    if not value.startswith("/"):
        return _bad("%r is not an absolute path" % value, "on Unix log-file must be absolute (§3.3.1.37.2)")
    return None


def _check_host_port(value):
    """``server {IP | hostname}:PORT`` of a <proxy> (§10.2.1.1.1)."""
    host, _sep, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return _bad("expected HOST:PORT, got %r" % value, "write server 192.0.2.7:5000 (§10.2.1.1.1)")
    return None


def _check_proxy_client(value):
    """``client IP[:PORT] hostname``: the host name is required (§10.2.1.1.2)."""
    parts = value.split()
    if len(parts) != 2:
        return _bad("expected IP[:PORT] HOSTNAME", "write client 192.0.2.8 out.example.com; a host name must be given")
    address = parts[0]
    if address.count(":") == 1:
        address, _sep, port = address.partition(":")
        if not port.isdigit():
            return _bad("invalid port in %r" % parts[0], "write IP[:PORT]")
    if not is_ip_or_cidr(address.strip("[]")):
        return _bad("invalid IP address %r" % address, "write client 192.0.2.8 out.example.com (§10.2.1.1.2)")
    return _check_hostname(parts[1])


def _check_email(value):
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if not _EMAIL.match(value):
        return _bad("invalid email address %r" % value, "use user@example.com")
    return None


def _check_email_list(value):
    for item in value.split(","):
        problem = _check_email(item.strip())
        if problem:
            return problem
    return None


def _check_email_or_regex(value):
    if value.startswith("/"):
        return check_email_regex(value)
    return _check_email(value)


def _looks_like_ip(text):
    return bool(_ALL_DIGITS_DOTTED.match(text)) or (":" in text and is_ip_or_cidr(text))


def _check_hostname(value):
    if _looks_like_ip(value.strip("[]")):
        return _bad(
            "%r is an IP address, not a host name" % value,
            "give the fully qualified host name (§3.3.1.25), e.g. mta1.example.com, whose A record is that IP",
        )
    if not _HOSTNAME.match(value):
        return _bad("invalid host name %r" % value, "use a fully qualified host name such as mta1.example.com")
    return None


def _check_name(value):
    if not _NAME.match(value):
        return _bad("expected one name, got %r" % value, "give a single name without spaces")
    return None


def _check_names(value):
    for item in value.split(","):
        if not item.strip():
            return _bad("empty name in the list %r" % value, "separate names with single commas")
    return None


def _check_api_key(value):
    if not _API_KEY.match(value):
        return _bad("invalid API key", "use 32 to 128 characters from A-Z, a-z, 0-9 and _")
    return None


def _check_records(value):
    for item in value.split(","):
        item = item.strip().lower()
        if item not in _RECORD_TYPES:
            return _bad("unknown record type %r" % item, "use d, b, t, tq, r, f, rb, rs (or their long names)")
    return None


def _check_record_fields(value):
    parts = value.split(None, 1)
    if len(parts) < 2:
        return _bad("argument missing", "write record-fields TYPE FIELDS, e.g. record-fields d *,header_Message-Id")
    return _check_records(parts[0])


def _check_bool_or_time(value):
    if value.lower() in _BOOL or value.lower() == "never":
        return None
    return _check_time(value)


def _check_string(value):
    return None


def _enum_checker(choices, extra_words=0):
    allowed = frozenset(choice.lower() for choice in choices)

    def check(value):
        parts = value.split()
        if parts[0].lower() not in allowed or len(parts) > 1 + extra_words:
            return _bad("invalid value %r" % value, "use one of: %s" % ", ".join(choices))
        return None

    return check


def _words_checker(low, high):
    def check(value):
        count = len(value.split())
        if count < low:
            return _bad("argument missing", "expected %d argument%s" % (low, "s" if low > 1 else ""))
        if high is not None and count > high:
            return _bad("too many arguments", "expected at most %d argument%s" % (high, "s" if high > 1 else ""))
        return None

    return check


def _check_smtp_hosts(value):
    """``h1, h2; [192.0.2.1]:2525; last.example`` or ``lookup-mx:example.com`` (§3.3.10.89)."""
    for level in value.split(";"):
        for item in level.split(","):
            item = item.strip()
            if not item:
                return _bad("empty host in %r" % value, "separate hosts with , (same preference) or ; (next one)")
            if item.lower().startswith("lookup-mx:"):
                if not _HOSTNAME.match(item[10:]):
                    return _bad("invalid domain in %r" % item, "write lookup-mx:example.com")
                continue
            host, port = item, ""
            if item.startswith("["):
                close = item.find("]")
                if close < 0:
                    return _bad("unclosed [ in %r" % item, "write [192.0.2.25]:25 or [IPv6:2001:db8::25]")
                host, port = item[1:close], item[close + 1 :]
                address = host[5:] if host.lower().startswith("ipv6:") else host
                if not is_ip_or_cidr(address) or "/" in address:
                    return _bad("invalid IP address in %r" % item, "write [192.0.2.25] or [IPv6:2001:db8::25]")
            else:
                if ":" in item and is_ip_or_cidr(item) or _ALL_DIGITS_DOTTED.match(item.partition(":")[0]):
                    address = item if ":" in item and is_ip_or_cidr(item) else item.partition(":")[0]
                    return _bad(
                        "bare IP address %r" % item,
                        "write an IP address in brackets, [%s] (IPv6: [IPv6:ADDRESS])" % address,
                    )
                host, _sep, port = item.partition(":")
                port = ":" + port if port else ""
                if not _HOSTNAME.match(host):
                    return _bad("invalid host %r" % item, "use a host name, [IP] or lookup-mx:DOMAIN")
            if port and not (port.startswith(":") and port[1:].isdigit() and 0 < int(port[1:]) < 65536):
                return _bad("invalid port in %r" % item, "write HOST:PORT, e.g. [192.0.2.25]:2525")
    return None


def _check_mx_limit(value):
    parts = value.split()
    if len(parts) != 2 or not parts[1].isdigit():
        return _bad("expected MX-PATTERN N", "write e.g. mx-connection-limit *.example.com 20")
    return None


def _check_mx_rollup(value):
    parts = value.split()
    if len(parts) < 2 or len(parts) > 3 or (len(parts) == 3 and parts[2].lower() != "rollup-by-ip"):
        return _bad("expected MX-PATTERN NAME [rollup-by-ip]", "write e.g. mx *.mx.example.com example.rollup")
    return None


_FIXED = {
    "bool": _check_bool,
    "int": _int_checker(),
    "time": _check_time,
    "time-or-never": _check_time_or_never,
    "time-list": _check_time_list,
    "rate": _check_rate,
    "rate-list": _check_rate_list,
    "volume-rate": _check_volume_rate,
    "size": _check_size,
    "size-or-unlimited": _check_size_or_unlimited,
    "cidr": _check_cidr,
    "cidr-rate": _check_cidr_then(_check_rate, "a rate"),
    "cidr-volume-rate": _check_cidr_then(_check_volume_rate, "a data volume rate"),
    "cidr-int": _check_cidr_then(_int_checker(), "a number"),
    "source-host": _check_source_host,
    "listener": _check_listener,
    "http-access": _check_http_access,
    "domain-key": _check_domain_key,
    "domain-macro": _check_domain_macro,
    "email": _check_email,
    "email-list": _check_email_list,
    "email-or-regex": _check_email_or_regex,
    "hostname": _check_hostname,
    "name": _check_name,
    "names": _check_names,
    "api-key": _check_api_key,
    "records": _check_records,
    "record-fields": _check_record_fields,
    "reply": check_reply,
    "pattern-rule": check_pattern_rule,
    "header-rule": check_header_rule,
    "pattern-result": check_pattern_result,
    "regex-result": lambda value: check_regex_words(value, 1),
    "header-pattern": check_header_pattern,
    "bool-or-time": _check_bool_or_time,
    "mx-limit": _check_mx_limit,
    "smtp-hosts": _check_smtp_hosts,
    "mx-rollup": _check_mx_rollup,
    "port": _int_checker(0, 65535),
    "map-header": _check_map_header,
    "hex40": _check_hex40,
    "queue-filter": _check_queue_filter,
    "rewrite-mail-from": _check_rewrite_mail_from,
    "from-domain": _check_from_domain,
    "http-url": _check_http_url,
    "abs-path": _check_abs_path,
    "host-port": _check_host_port,
    "proxy-client": _check_proxy_client,
    "string": _check_string,
    "path": _check_string,
}

_FIXED["privacy-policy"] = _enum_checker(
    ("retain", "redact", "siphash", "siphash-hexkey", "hmac-sha256", "hmac-sha256-hexkey"), extra_words=1
)

_CACHE = {}


def checker(type_name):
    """The checker for a schema type name; raises KeyError for an unknown type."""
    found = _CACHE.get(type_name)
    if found is not None:
        return found
    kind, _sep, argument = type_name.partition(":")
    if type_name in _FIXED:
        found = _FIXED[type_name]
    elif kind == "int":
        low, _sep, high = argument.partition("-")
        found = _int_checker(int(low), int(high) if high else None)
    elif kind == "int-or":
        found = _int_checker(words=tuple(argument.split("|")))
    elif kind == "enum":
        found = _enum_checker(argument.split("|"))
    elif kind == "enum+1":
        found = _enum_checker(argument.split("|"), extra_words=1)
    elif kind == "words":
        low, _sep, high = argument.partition("-")
        found = _words_checker(int(low), int(high) if high else None)
    else:
        raise KeyError(type_name)
    _CACHE[type_name] = found
    return found
