# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Item schemas of the fleet model: types, keys and names of every layered list item.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. ``check_item`` normalizes one item (bools, ints, lower-case domain
names without the trailing dot) and returns the problems, each naming the variable and the fix.
"""

from __future__ import annotations

import ipaddress
import re

FQDN_RE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
VMTA_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
INJECTOR_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
ISP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A DKIM selector is one or more DNS labels (RFC 6376 §3.1): it becomes SELECTOR._domainkey.DOMAIN.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SELECTOR_RE = re.compile(r"^%s(\.%s)*$" % (_LABEL, _LABEL))
DIRECTIVE_NAME_RE = re.compile(r"^[a-z][a-z0-9.-]*$")
NETWORK_RE = re.compile(r"^[0-9a-fA-F:.]+(/[0-9]{1,3})?$")
LISTENER_RE = re.compile(r"^(0/0|[0-9a-fA-F:.]+):[0-9]{1,5}$")
DMARC_POLICIES = ("none", "quarantine", "reject")
DKIM_KEY_BITS = (1024, 2048, 3072, 4096)
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")

# Per list: key -> kind. Kinds: str, bool, int, dict, list (of str), ip, fqdn, domains (nested
# {name, directives}), reply_patterns ([{regex, action}]).
# The one schema of the layered list items: tools/gen-argument-specs.py writes the item ``options`` of
# roles/powermta/meta/argument_specs.yml from it (item_specs.py: the keys' descriptions); its --check, run by
# tests/unit/plugins/module_utils/test_fleet_item_schemas.py, fails when the file differs. The key order here is
# the spec's and docs/variables.md's.
SCHEMAS = {
    "vmtas": {"name": "str", "ip": "ip", "hostname": "fqdn", "pool": "str", "warmup": "bool", "paused": "bool",
              "traffic": "str", "region": "str", "max_smtp_out": "int", "max_smtp_msg_rate": "str",
              "daily_capacity": "int", "retire": "bool", "directives": "dict", "domains": "domains"},
    "pools": {"name": "str", "traffic": "str", "region": "str", "directives": "dict", "domains": "domains"},
    "domains": {"name": "str", "dkim_selectors": "list", "dkim_key_bits": "int", "dmarc_policy": "str",
                "dmarc_subdomain_policy": "str", "dmarc_rua": "str", "bounce_domain": "fqdn", "bounce_mx": "list",
                "spf_ips": "list", "spf_extra_terms": "list", "mta_sts_id": "str", "tls_rpt_rua": "str"},
    "injectors": {"name": "str", "password": "str", "networks": "list", "auth": "bool",
                  "process_x_virtual_mta": "bool", "default_virtual_mta": "str", "directives": "dict",
                  "pools": "list", "vmtas": "list", "username": "str", "smtp_user": "str"},
    "isp_policies": {"name": "str", "domains": "list", "mx_patterns": "list", "throttle_patterns": "list",
                     "directives": "dict", "reply_patterns": "reply_patterns"},
    "listeners": {"name": "str", "starttls": "bool", "source": "str", "directives": "dict"},
    "sources": {"name": "str", "directives": "dict"},
    "acct_files": {"name": "str", "records": "list", "enabled": "bool", "directives": "dict"},
}
# kind -> the variables holding its items, the layers lowest first (the role's defaults layer, powermta_default_*,
# first where there is one); each is declared in the powermta role's argument spec with SCHEMAS[kind]'s options.
LAYERS = {
    "listeners": ("powermta_default_listeners", "powermta_listeners", "powermta_group_listeners",
                  "powermta_host_listeners"),
    "sources": ("powermta_default_sources", "powermta_sources", "powermta_group_sources", "powermta_host_sources"),
    "injectors": ("powermta_injectors", "powermta_group_injectors", "powermta_host_injectors"),
    "domains": ("powermta_domains", "powermta_group_domains", "powermta_host_domains"),
    "pools": ("powermta_pools", "powermta_group_pools", "powermta_host_pools"),
    "vmtas": ("powermta_vmtas", "powermta_group_vmtas", "powermta_host_vmtas"),
    "isp_policies": ("powermta_default_isp_policies", "powermta_isp_policies", "powermta_group_isp_policies",
                     "powermta_host_isp_policies"),
    "acct_files": ("powermta_default_acct_files", "powermta_acct_files", "powermta_group_acct_files",
                   "powermta_host_acct_files"),
}
REQUIRED = {"vmtas": ("ip", "hostname"), "injectors": ("networks",)}
ACCT_RECORDS = ("d", "b", "t", "tq", "f", "r", "rb", "rs", "rr")
# String keys where a bare number is a meaningful value (max-smtp-msg-rate, §3.3.12.2).
NUMBER_AS_STRING_KEYS = ("max_smtp_msg_rate",)


def normalize_domain(name):
    """Domain names compare without case and trailing dot (``Example.COM.`` is ``example.com``)."""
    return str(name).strip().rstrip(".").lower()


def as_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be true or false")


def as_int(value):
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r"^-?[0-9]+$", value.strip()):
        return int(value.strip())
    raise ValueError("must be an integer")


def directive_problems(where, directives):
    problems = []
    if directives is None:
        return problems
    if not isinstance(directives, dict):
        return ["%s: directives must be a dict {directive: value}, got %s" % (where, type(directives).__name__)]
    for name, value in directives.items():
        values = value if isinstance(value, list) else [value]
        if not DIRECTIVE_NAME_RE.match(str(name)) or any(re.search(r"[#\n]", str(v)) for v in values):
            problems.append(
                "%s: directive %s cannot be written (lower-case directive names; no # or newline in values)"
                % (where, name)
            )
    return problems


def _check_value(where, key, kind, value):
    """Return (normalized value, problems) for one key of an item."""
    label = "%s: %s" % (where, key)
    if kind == "bool":
        try:
            return as_bool(value), []
        except ValueError:
            return value, ["%s must be true or false, got %r" % (label, value)]
    if kind == "int":
        try:
            return as_int(value), []
        except ValueError:
            return value, ["%s must be an integer, got %r" % (label, value)]
    if kind == "dict":
        return value, directive_problems(where, value) if key == "directives" else []
    if kind == "list":
        if not isinstance(value, list):
            return value, ["%s must be a list (e.g. %s: [%s]), got the %s %r; a string would be used one character "
                           "at a time" % (label, key, value, type(value).__name__, value)]
        bad = [item for item in value if not isinstance(item, (str, int)) or isinstance(item, bool)]
        if bad:
            return value, ["%s must be a list of strings, got items %r" % (label, bad)]
        return [str(item).strip() for item in value], []
    if kind == "domains":
        if not isinstance(value, list):
            return value, ["%s must be a list of {name, directives}, got %s" % (label, type(value).__name__)]
        problems = []
        for item in value:
            if not isinstance(item, dict) or not item.get("name"):
                problems.append("%s items must be dicts with a name (a recipient domain pattern), got %r"
                                % (label, item))
                continue
            problems += directive_problems("%s %s" % (label, item["name"]), item.get("directives"))
        return value, problems
    if kind == "reply_patterns":
        if not isinstance(value, list):
            return value, ["%s must be a list of {regex, action}, got %s" % (label, type(value).__name__)]
        problems = []
        for item in value:
            problems += reply_pattern_problems(label, item)
        return value, problems
    # str-like kinds
    if isinstance(value, (dict, list, bool)) or value is None:
        return value, ["%s must be a string, got the %s %r" % (label, type(value).__name__, value)]
    if isinstance(value, (int, float)) and key not in NUMBER_AS_STRING_KEYS:
        # YAML read an unquoted value as a number (0777... as octal): refused, never converted.
        return value, ["%s is the number %r, not a string: YAML reads unquoted digits as a number (and may change "
                       "them); quote it in the inventory, e.g. %s: \"...\"" % (label, value, key)]
    text = str(value).strip()
    if kind == "ip":
        try:
            return str(ipaddress.ip_address(text)), []
        except ValueError:
            return text, ["%s %r is not an IP address; give the vMTA's source IP, e.g. 203.0.113.10" % (label, value)]
    if kind == "fqdn":
        if not FQDN_RE.match(text.rstrip(".")):
            return text, ["%s must be a fully qualified host name (the HELO name; A and PTR match the IP), got %r"
                          % (label, value)]
        return text.rstrip(".").lower(), []
    return text, []


def reply_pattern_problems(where, pattern):
    if not isinstance(pattern, dict) or "regex" not in pattern:
        return ["%s: reply pattern must be {regex, action}, got %r" % (where, pattern)]
    regex = str(pattern.get("regex", ""))
    problems = []
    if re.search(r"#|\n|(?<!\\)/", regex):
        problems.append("%s: reply regex %s may not hold #, a newline or an unescaped / (write \\x23, \\/)"
                        % (where, regex))
    try:
        re.compile(regex)
    except re.error as exc:
        problems.append("%s: reply regex %s is not a regular expression (%s)" % (where, regex, exc))
    return problems


def check_item(kind, variable, item, secrets=True):
    """Normalize a merged item of list ``kind``; return (item, problems).

    ``secrets=False``: passwords were not read (left out on purpose), so they are not checked.
    """
    schema = SCHEMAS[kind]
    name = item.get("name")
    where = "%s item %s" % (variable, name)
    problems = []
    out = dict(item)
    for key, value in item.items():
        if key in ("name", "state") or key not in schema:
            continue
        out[key], found = _check_value(where, key, schema[key], value)
        problems += found
    for key in REQUIRED.get(kind, ()):
        if out.get(key) in (None, "", []):
            problems.append("%s: %s is missing" % (where, key))
    name_problem = _name_problem(kind, where, name)
    if name_problem:
        problems.append(name_problem)
    extra = _EXTRA_CHECKS.get(kind)
    if extra:
        problems += extra(where, out, secrets)
    return out, problems


def _name_problem(kind, where, name):
    text = str(name)
    if not text.isascii():
        return "%s: the name must be ASCII (it is written into the PowerMTA config), got %r" % (where, text)
    if kind in ("vmtas", "pools") and not VMTA_NAME_RE.match(text):
        return "%s: the name may hold letters, digits, . _ - only" % where
    if kind == "injectors" and not INJECTOR_NAME_RE.match(text):
        return "%s: the name is the SMTP AUTH user: letters, digits, . _ @ - only" % where
    if kind == "isp_policies" and not ISP_NAME_RE.match(text):
        return "%s: the name becomes a domain-macro: [a-z][a-z0-9_]*" % where
    if kind == "domains" and not FQDN_RE.match(text):
        return "%s: %r is not a domain name (e.g. example.com)" % (where, text)
    if kind == "listeners" and not LISTENER_RE.match(text):
        return "%s: the name must be IP:PORT (0/0:25 for every address), got %r" % (where, text)
    if kind == "acct_files" and not text.startswith(("/", "|/")):
        return "%s: the name must be an absolute path (or |/path/program for a pipe), got %r" % (where, text)
    return None


def _check_domains(where, domain, secrets):
    problems = []
    selectors = domain.get("dkim_selectors") or []
    if isinstance(selectors, list):
        for selector in selectors:
            if not SELECTOR_RE.match(selector):
                problems.append("%s: DKIM selector %r must be a DNS label (letters, digits, -; e.g. s2026a)"
                                % (where, selector))
        if len(set(selectors)) != len(selectors):
            problems.append("%s: dkim_selectors lists a selector twice: %r" % (where, selectors))
    for key in ("dmarc_policy", "dmarc_subdomain_policy"):
        policy = domain.get(key)
        if policy is not None and policy not in DMARC_POLICIES:
            problems.append("%s: %s must be one of %s, got %r" % (where, key, ", ".join(DMARC_POLICIES), policy))
    exchanges = domain.get("bounce_mx")
    if isinstance(exchanges, list):
        bad = [name for name in exchanges if not FQDN_RE.match(name.rstrip("."))]
        if bad:
            problems.append("%s: bounce_mx must list MX host names (e.g. [mx1.example.com]), not %r" % (where, bad))
    spf_ips = domain.get("spf_ips")
    if isinstance(spf_ips, list):
        bad = [ip for ip in spf_ips if not _is_ip(ip)]
        if bad:
            problems.append("%s: spf_ips must list IP addresses (e.g. [203.0.113.10]), not %r" % (where, bad))
    rua = domain.get("dmarc_rua")
    if rua not in (None, "") and not all(part.strip().startswith("mailto:") for part in str(rua).split(",")):
        problems.append("%s: dmarc_rua must be mailto: URIs (e.g. mailto:dmarc-reports@example.com), got %r"
                        % (where, rua))
    bits = domain.get("dkim_key_bits")
    if isinstance(bits, int) and bits not in DKIM_KEY_BITS:
        problems.append("%s: dkim_key_bits must be one of %s, got %r" % (where, DKIM_KEY_BITS, bits))
    return problems


def _check_injectors(where, injector, secrets):
    problems = []
    networks = injector.get("networks")
    if isinstance(networks, list):
        bad = [net for net in networks if not _is_network(net)]
        if not networks or bad:
            problems.append("%s: networks must list the IPs/CIDRs the injector connects from (e.g. [198.51.100.0/28])"
                            "%s" % (where, ", not %r" % bad if bad else ""))
    if secrets and injector.get("auth", True) is True:
        password = injector.get("password")
        if not isinstance(password, str) or not re.match(r"^[^\s#]{12,}$", password):
            problems.append("%s: password must have 12+ characters without spaces or # (vault it)" % where)
    return problems


def _is_ip(text):
    try:
        ipaddress.ip_address(str(text))
    except ValueError:
        return False
    return True


def _is_network(text):
    if not NETWORK_RE.match(str(text)):
        return False
    try:
        ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return False
    return True


def _check_isp_policies(where, policy, secrets):
    problems = []
    if not policy.get("domains") and not policy.get("mx_patterns"):
        problems.append("%s: needs domains or mx_patterns" % where)
    patterns = policy.get("throttle_patterns")
    for pattern in patterns if isinstance(patterns, list) else []:
        if re.search(r"[#\n]", pattern):
            problems.append("%s: throttle_patterns %r may not hold # or a newline (write \\x23)" % (where, pattern))
        else:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append("%s: throttle_patterns %r is not a regular expression (%s)" % (where, pattern, exc))
    return problems


def _check_vmtas(where, vmta, secrets):
    problems = []
    value = vmta.get("max_smtp_out")
    if isinstance(value, int) and value < 0:
        problems.append("%s: max_smtp_out must be 0 or more, got %d" % (where, value))
    # max_smtp_msg_rate's grammar is the config linter's (PowerMTA's own rules, _pmta_config/values.py).
    return problems


def _check_acct_files(where, acct, secrets):
    records = acct.get("records")
    if isinstance(records, list):
        bad = [record for record in records if record not in ACCT_RECORDS]
        if bad:
            return ["%s: records %r unknown; use %s" % (where, bad, ", ".join(ACCT_RECORDS))]
    return []


_EXTRA_CHECKS = {
    "domains": _check_domains,
    "injectors": _check_injectors,
    "isp_policies": _check_isp_policies,
    "vmtas": _check_vmtas,
    "acct_files": _check_acct_files,
}


# ---------------------------------------------------------------- the injector's mailbox (powermta_bounce_mailbox)
BOUNCE_MAILBOX_KEYS = ("host", "port", "bounce_address")


def bounce_mailbox(value, domains, bounce_domains=None, fbl_address=""):
    """Normalize ``powermta_bounce_mailbox``; return (mailbox, problems).

    ``{}`` (the default): processed bounces and complaint reports are discarded. Else ``{host, port,
    bounce_address, smtp_hosts, domains}``: ``smtp_hosts`` is the §3.3.10.89 value (``[IP]:PORT`` or
    ``NAME:PORT``) and ``domains`` the bounce domains (those of ``domains`` and ``bounce_domains``) plus the
    FBL address's domain, each routed there instead of by MX (which is the fleet itself: a loop)."""
    label = "powermta_bounce_mailbox"
    if value in (None, {}, ""):
        return {}, []
    if not isinstance(value, dict):
        return {}, ["%s must be a dict {host, port, bounce_address} (or {} to discard processed bounces and "
                    "complaints), got %r" % (label, value)]
    problems = ["%s: unknown key %s (known: %s)" % (label, key, ", ".join(BOUNCE_MAILBOX_KEYS))
                for key in sorted(set(value) - set(BOUNCE_MAILBOX_KEYS))]
    host = str(value.get("host") or "").strip().rstrip(".")
    literal = None
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if not FQDN_RE.match(host):
            problems.append("%s: host must be the mailbox's IP address or host name (e.g. host: "
                            "mx.mailbox.example.com), got %r" % (label, value.get("host")))
    try:
        port = as_int(value.get("port", 25))
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        problems.append("%s: port must be a TCP port 1-65535 (the mailbox's SMTP port, e.g. 25), got %r"
                        % (label, value.get("port")))
    served = [normalize_domain(d.get("bounce_domain")) for d in domains if d.get("bounce_domain")]
    served += [normalize_domain(d) for d in (bounce_domains or []) if d]
    served = list(dict.fromkeys(served))
    address = str(value.get("bounce_address") or "").strip()
    if address:
        local, _at, domain = address.rpartition("@")
        if not local or normalize_domain(domain) not in served:
            served_text = ", ".join(served) or "none: set bounce_domain on a powermta_domains item"
            problems.append("%s: bounce_address %s must be an address at a bounce domain (%s), the MAIL FROM the "
                            "injector sets, or PowerMTA's DSNs never reach the mailbox" % (label, address, served_text))
    if not served:
        problems.append("%s is set but no bounce domain is (bounce_domain on a powermta_domains item, or "
                        "powermta_bounce_domains)" % label)
    fbl_domain = normalize_domain(str(fbl_address or "").rpartition("@")[2]) if fbl_address else ""
    routed = served + ([fbl_domain] if fbl_domain and fbl_domain not in served else [])
    if literal is None:
        spec = "%s:%d" % (host, port)
    elif literal.version == 4:
        spec = "[%s]:%d" % (literal, port)
    else:
        spec = "[IPv6:%s]:%d" % (literal, port)
    mailbox = {"host": host, "port": port, "bounce_address": address, "smtp_hosts": spec, "domains": routed}
    return (mailbox if not problems else {}), problems
