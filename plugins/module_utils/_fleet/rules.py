# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet rules beyond item types: domains we may answer for, exposure, names, ports, paths (issue 20).

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. Every function returns problems, one line each, naming the host, the
variable, the item and the fix. ``build_fleet_model`` runs them, so every step that builds the model refuses
the same inventory, with or without playbooks/preflight.yml.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.exposure import INJECTOR_PREFIX_LIMIT
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import (
    WarmupInputError,
    normalize_schedule,
    normalize_thresholds,
)

from .items import (
    FQDN_RE,
    as_bool,
    as_int,
    normalize_domain,
)

# The widest network an injector (SMTP AUTH or open relaying) may cover unless
# powermta_allow_wide_injector_networks is true; 0/0 and ::/0 are refused even then. The config linter's
# open-relay rule warns past the same limit.
WIDEST_INJECTOR_PREFIX = INJECTOR_PREFIX_LIMIT
# Ports other services of the collection listen on, on every PowerMTA host.
EXPORTER_PORTS = {9100: "node_exporter (monitoring role, prometheus-node-exporter's default port)"}
DEFAULT_HTTP_MGMT_PORT = 8080
# Variables these rules read besides those of _fleet_model.SETTINGS (fleet_model reads them from each host).
RULE_SETTINGS = (
    "powermta_bounce_domains", "powermta_fbl_address", "powermta_apex_mx_domains",
    "powermta_allow_wide_injector_networks", "powermta_inbound_enabled",
    "powermta_fbl_enabled",
)
DNS_TTL_MAX = 2147483647  # RFC 2181 §8: a TTL is an unsigned 31-bit number of seconds
# Settings that are strings: a number here is a YAML slip (an unquoted value), refused, never converted.
STRING_SETTINGS = ("powermta_hostname", "powermta_postmaster", "powermta_license", "powermta_dkim_key_dir",
                   "powermta_dkim_controller_dir", "powermta_fbl_address", "powermta_package_src",
                   "powermta_package_name")
ABSOLUTE_PATH_SETTINGS = ("powermta_dkim_key_dir", "powermta_dkim_controller_dir")
MX_PATTERN_RE = re.compile(r"^\*\.(%s)$" % FQDN_RE.pattern.strip("^$"))


def number_problem(label, value, example):
    """A value YAML read as a number where a string is expected (``0777...`` became an octal int)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("%s is the number %r, not a string: YAML reads an unquoted value of digits as a number (and "
                "changes it); quote it in the inventory, e.g. %s" % (label, value, example))
    return None


def settings_problems(host, host_vars):
    problems = []
    for name in STRING_SETTINGS:
        found = number_problem("%s: %s" % (host, name), host_vars.get(name), '%s: "..."' % name)
        if found:
            problems.append(found)
    for name in ABSOLUTE_PATH_SETTINGS:
        value = host_vars.get(name)
        if isinstance(value, str) and value and not value.startswith("/"):
            problems.append("%s: %s must be an absolute path (e.g. /etc/pmta/dkim), got %r" % (host, name, value))
    return problems


def _prefix_limit_problem(host, variable, item, network, allow_wide):
    try:
        net = ipaddress.ip_network("0.0.0.0/0" if str(network).strip() == "0/0" else str(network), strict=False)
    except ValueError:
        return None  # the item check reports it
    if net.prefixlen == 0 or str(network).strip() == "0/0":
        return ("%s: %s item %s: network %s is the whole Internet; list the injector's own addresses (e.g. "
                "198.51.100.0/28); this is refused even with powermta_allow_wide_injector_networks"
                % (host, variable, item, network))
    limit = WIDEST_INJECTOR_PREFIX[net.version]
    if net.prefixlen < limit and not allow_wide:
        return ("%s: %s item %s: network %s is wider than /%d (IPv%d): every address in it may send through this "
                "host; narrow it to the injector's own addresses, or set powermta_allow_wide_injector_networks: "
                "true" % (host, variable, item, network, limit, net.version))
    return None


def exposure_problems(host, host_vars, model):
    """Injector networks: not wider than the limit, not overlapping another injector's."""
    problems = []
    try:
        allow_wide = as_bool(host_vars.get("powermta_allow_wide_injector_networks", False))
    except ValueError:
        allow_wide = False
        problems.append("%s: powermta_allow_wide_injector_networks must be true or false, got %r"
                        % (host, host_vars.get("powermta_allow_wide_injector_networks")))
    seen = []
    for injector in model["injectors"]:
        networks = injector.get("networks")
        for network in networks if isinstance(networks, list) else []:
            found = _prefix_limit_problem(host, "powermta_injectors", injector["name"], network, allow_wide)
            if found:
                problems.append(found)
            try:
                net = ipaddress.ip_network(str(network), strict=False)
            except ValueError:
                continue
            for other_name, other in seen:
                if other_name != injector["name"] and net.version == other.version and net.overlaps(other):
                    problems.append(
                        "%s: powermta_injectors items %s and %s: networks %s and %s overlap; PowerMTA would get two "
                        "<source> blocks with different default-virtual-mta for the same senders; give each "
                        "injector its own network" % (host, other_name, injector["name"], other, net))
            seen.append((injector["name"], net))
    for source in model["sources"]:
        directives = source.get("directives") or {}
        relaying = directives.get("always-allow-relaying") if isinstance(directives, dict) else None
        if relaying in (True, "yes", "true") and source["name"] not in ("127.0.0.1", "::1"):
            found = _prefix_limit_problem(host, "powermta_sources", source["name"], source["name"], allow_wide)
            if found:
                problems.append(found)
    return problems


def naming_problems(host, model):
    """Names unique across vMTAs, pools and ISP groups; ISP domains and MX patterns well formed."""
    problems = []
    owners = {}
    for kind, variable in (("vmtas", "powermta_vmtas"), ("pools", "powermta_pools"),
                           ("isp_policies", "powermta_isp_policies")):
        for item in model[kind]:
            owners.setdefault(item["name"], []).append(variable)
    for name, variables in sorted(owners.items()):
        if len(variables) > 1:
            problems.append("%s: the name %s is used by %s; vMTAs, pools and ISP groups share one name space in "
                            "PowerMTA (virtual-mta, pool and domain-macro names): rename one"
                            % (host, name, " and ".join(variables)))
    group_of = {}
    for policy in model["isp_policies"]:
        where = "%s: powermta_isp_policies item %s" % (host, policy["name"])
        domains = policy.get("domains")
        for domain in domains if isinstance(domains, list) else []:
            if not FQDN_RE.match(str(domain).rstrip(".")):
                problems.append("%s: domains entry %r is not one domain name (write one domain per list entry, "
                                "e.g. [icloud.test, me.test])" % (where, domain))
                continue
            name = normalize_domain(domain)
            if name in group_of and group_of[name] != policy["name"]:
                problems.append("%s: domain %s is also in ISP group %s; a domain belongs to one group only: remove "
                                "it from one" % (where, name, group_of[name]))
            group_of.setdefault(name, policy["name"])
        patterns = policy.get("mx_patterns")
        for pattern in patterns if isinstance(patterns, list) else []:
            if not MX_PATTERN_RE.match(str(pattern).rstrip(".")):
                problems.append("%s: mx_patterns entry %r must be *.suffix (e.g. *.google.com), a wildcard label "
                                "followed by a domain name" % (where, pattern))
    return problems


def port_problems(host, host_vars, model):
    """The listeners, the web monitor (http-mgmt-port) and the exporters each need their own port."""
    users = {}
    for listener in model["listeners"]:
        port = str(listener["name"]).rsplit(":", 1)[-1]
        if port.isdigit():
            users.setdefault(int(port), []).append("powermta_listeners item %s" % listener["name"])
    try:
        http_port = as_int(host_vars.get("powermta_http_mgmt_port", DEFAULT_HTTP_MGMT_PORT))
    except ValueError:
        http_port = None
    if http_port:
        users.setdefault(http_port, []).append("powermta_http_mgmt_port %d (the web monitor)" % http_port)
    for port, service in EXPORTER_PORTS.items():
        if port in users:
            users[port].append(service)
    problems = []
    for port, names in sorted(users.items()):
        # Two listeners on the same port but different addresses are fine; the web monitor binds every address.
        if len(names) > 1 and any(not name.startswith("powermta_listeners") for name in names):
            problems.append("%s: port %d is used by %s; a second service on it fails to start (Address already in "
                            "use): give powermta_http_mgmt_port a free port (default 8080)"
                            % (host, port, " and ".join(names)))
    return problems


def vmta_address_problems(host, model):
    problems = []
    for vmta in model["vmtas"]:
        try:
            ip = ipaddress.ip_address(str(vmta.get("ip")))
        except ValueError:
            continue
        reason = None
        if ip.is_loopback:
            reason = "a loopback address: mail from it never leaves the host"
        elif ip.is_multicast:
            reason = "a multicast address: no TCP connection can come from it"
        elif ip.is_unspecified:
            reason = "the unspecified address: the vMTA needs its own source IP"
        elif ip.is_link_local:
            reason = "a link-local address: it is not routed beyond the local link"
        if reason:
            problems.append("%s: powermta_vmtas item %s: ip %s is %s; give the vMTA a routed address of the host "
                            "(e.g. 203.0.113.10)" % (host, vmta["name"], ip, reason))
    return problems


def _inbound_domains(host_vars, model):
    """(variable, item, domain) of every domain this host answers mail for (an MX points at the fleet)."""
    found = []
    for domain in model["domains"]:
        bounce = domain.get("bounce_domain")
        if bounce:
            found.append(("powermta_domains item %s: bounce_domain" % domain["name"], normalize_domain(bounce)))
    extra = host_vars.get("powermta_bounce_domains")
    for bounce in extra if isinstance(extra, list) else []:
        found.append(("powermta_bounce_domains entry %s" % bounce, normalize_domain(bounce)))
    fbl = host_vars.get("powermta_fbl_address")
    if isinstance(fbl, str) and "@" in fbl:
        found.append(("powermta_fbl_address %s" % fbl, normalize_domain(fbl.rsplit("@", 1)[1])))
    return found


def domain_ownership_problems(host, host_vars, model, sending_domains):
    """Bounce and FBL domains: dedicated subdomains of a sending domain of the fleet; never its apex."""
    problems = []
    apex_allowed = host_vars.get("powermta_apex_mx_domains") or []
    if not isinstance(apex_allowed, list):
        problems.append("%s: powermta_apex_mx_domains must be a list of sending domains, got %r" % (host, apex_allowed))
        apex_allowed = []
    apex_allowed = {normalize_domain(name) for name in apex_allowed}
    for where, domain in _inbound_domains(host_vars, model):
        if domain in sending_domains:
            if domain in apex_allowed:
                continue
            problems.append(
                "%s: %s is the sending domain %s itself: its MX would point at PowerMTA, whose bounce processor "
                "discards every message (postmaster@ and the DMARC reports included); use a dedicated subdomain "
                "(e.g. bounces.%s), or list %s in powermta_apex_mx_domains if this fleet must receive all its mail"
                % (host, where, domain, domain, domain))
        elif not any(domain.endswith("." + zone) for zone in sending_domains):
            problems.append(
                "%s: %s is outside the fleet's sending domains (%s): the fleet may publish an MX only under a "
                "domain it sends for; use a subdomain of one (e.g. bounces.%s)"
                % (host, where, ", ".join(sorted(sending_domains)) or "none",
                   sorted(sending_domains)[0] if sending_domains else "example.com"))
    return problems


def later_role_problems(host, host_vars, defined=None, is_file=None):
    """What the dns and warmup roles refuse, named by the inventory variable (not the module's argument).

    ``host_vars``: what the inventory sets (the fleet_model action passes the values it reads for the argument
    specs; the model itself reads no dns_ or warmup_ variable). ``is_file``: the controller's file test, for the
    package and license files (the action passes os.path.isfile; pure callers leave it out).
    """
    problems = []
    if "dns_ttl" in host_vars:
        ttl = host_vars["dns_ttl"]
        try:
            value = as_int(ttl)
        except ValueError:
            value = None
        if value is None or not 0 <= value <= DNS_TTL_MAX:
            problems.append("%s: dns_ttl must be a number of seconds 0..%d (e.g. 3600), got %r"
                            % (host, DNS_TTL_MAX, ttl))
    if host_vars.get("warmup_schedule"):
        try:
            normalize_schedule(host_vars["warmup_schedule"], [])
        except WarmupInputError as exc:
            problems.append("%s: warmup_%s (docs/warmup.md)" % (host, exc))
    if host_vars.get("warmup_thresholds"):
        try:
            normalize_thresholds(host_vars["warmup_thresholds"])
        except WarmupInputError as exc:
            problems.append("%s: warmup_%s (docs/warmup.md)" % (host, exc))
    problems += _warmup_list_problems(host, host_vars)
    problems += _dns_connection_problems(host, host_vars, host_vars if defined is None else defined)
    problems += _monitoring_problems(host, host_vars)
    problems += _package_problems(host, host_vars, is_file)
    problems += _run_only_problems(host, host_vars if defined is None else defined)
    return problems


# Set by the collection's playbooks for one run, never by an inventory: a value there would switch a check off.
RUN_ONLY_VARIABLES = {
    "powermta_dkim_fleet_checked": "playbooks/powermta.yml sets it after its fleet-wide DKIM key check passed; "
                                   "set in the inventory it would skip the powermta role's own check",
    "mailops_planning": "the playbooks' plan plays set it with check_mode: true; set in the inventory a real run "
                        "would skip the steps that need what an earlier step makes (the package install)",
}


def _run_only_problems(host, defined):
    return ["%s: %s is set by the run, not the inventory (%s): remove it from the inventory and extra vars"
            % (host, name, why) for name, why in sorted(RUN_ONLY_VARIABLES.items()) if name in defined]


# roles/warmup/tasks/preflight.yml: an ISP group name is a domain-macro name of the ISP policies.
WARMUP_ISP_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# roles/monitoring/tasks/preflight.yml: PowerMTA's web monitor is read on loopback only.
STATUS_URL_RE = re.compile(r"^https?://(127\.[0-9]+\.[0-9]+\.[0-9]+|\[::1\]|localhost)(:[0-9]+)?/")
MIN_COLLECTOR_INTERVAL = 10


def _warmup_list_problems(host, host_vars):
    """roles/warmup/tasks/preflight.yml's checks of warmup_isps and warmup_acct_paths."""
    problems = []
    if "warmup_isps" in host_vars:
        isps = host_vars["warmup_isps"]
        if not isinstance(isps, list) or not isps:
            problems.append("%s: warmup_isps must be a non-empty list of ISP group names (e.g. [gmail, other]), "
                            "got %r" % (host, isps))
        else:
            bad = [name for name in isps if not isinstance(name, str) or not WARMUP_ISP_RE.match(name)]
            if bad:
                problems.append("%s: warmup_isps entries %s are not ISP group names: use lowercase names like "
                                "gmail or other ([a-z][a-z0-9_]*), each but other a group of the ISP policies"
                                % (host, ", ".join(repr(name) for name in bad)))
            twice = sorted({str(name) for name in isps if isps.count(name) > 1})
            if twice:
                problems.append("%s: warmup_isps names %s twice; list each ISP group once" % (host, ", ".join(twice)))
    if "warmup_acct_paths" in host_vars:
        paths = host_vars["warmup_acct_paths"]
        if not isinstance(paths, list) or not paths:
            problems.append("%s: warmup_acct_paths must be a non-empty list of accounting file paths (e.g. "
                            "[/var/log/pmta/acct.csv]), got %r" % (host, paths))
    return problems


def _dns_connection_problems(host, host_vars, defined):
    """roles/dns/tasks/preflight.yml: an UPDATE needs the server, the TSIG key's name and its secret. Checked when
    the inventory sets any of them (an inventory without DNS publishes nothing). ``defined``: every variable the
    host defines (a value that cannot be read here, such as a vaulted secret, is defined, not missing)."""
    names = ("dns_server", "dns_key_name", "dns_key_secret")
    given = [name for name in names if name in defined]
    if not given:
        return []
    missing = [name for name in names
               if name not in defined or (name in host_vars and not str(host_vars[name] or "").strip())]
    if not missing:
        return []
    return ["%s: %s set but %s empty or missing: the dns role sends RFC 2136 UPDATEs signed with TSIG and needs "
            "all three (the primary's address, the key's name and its secret, in a vault)"
            % (host, " and ".join(name for name in given if name not in missing) or "the DNS connection is",
               " and ".join(missing))]


def _monitoring_problems(host, host_vars):
    """roles/monitoring/tasks/preflight.yml: the web monitor's URL on loopback, a sane collector interval."""
    problems = []
    if "monitoring_status_url" in host_vars:
        url = host_vars["monitoring_status_url"]
        if not isinstance(url, str) or not STATUS_URL_RE.match(url):
            problems.append("%s: monitoring_status_url must be an http(s) URL on loopback (127.x.x.x, [::1] or "
                            "localhost: PowerMTA's web monitor stays loopback-only), e.g. "
                            "http://127.0.0.1:8080/status?format=json, got %r" % (host, url))
        else:
            port = re.match(r"^https?://[^/]*?:([0-9]+)/", url)
            try:
                http_port = as_int(host_vars.get("powermta_http_mgmt_port", DEFAULT_HTTP_MGMT_PORT))
            except ValueError:
                http_port = None  # reported by the port rule
            if port and http_port is not None and int(port.group(1)) != http_port:
                problems.append("%s: monitoring_status_url %s reads port %s but PowerMTA's web monitor listens on "
                                "powermta_http_mgmt_port %d; leave monitoring_status_url at its default (it follows "
                                "powermta_http_mgmt_port) or use the same port" % (host, url, port.group(1), http_port))
    if "monitoring_collector_interval" in host_vars:
        try:
            interval = as_int(host_vars["monitoring_collector_interval"])
        except ValueError:
            interval = None
        if interval is not None and interval < MIN_COLLECTOR_INTERVAL:
            problems.append("%s: monitoring_collector_interval must be at least %d seconds, got %d"
                            % (host, MIN_COLLECTOR_INTERVAL, interval))
    return problems


def _package_problems(host, host_vars, is_file=None):
    """roles/powermta/tasks/preflight.yml: the package type fits the host; every host is Debian 12 (the
    platforms host_tuning and monitoring accept), so the package is a .deb. With ``is_file`` (the controller's
    file test), the package and license files exist, as the role's `is file` asserts before installing."""
    problems = []
    package = host_vars.get("powermta_package_src")
    if isinstance(package, str) and package and not package.endswith(".deb"):
        problems.append("%s: powermta_package_src %s is not a .deb: the hosts run Debian 12 (the only platform the "
                        "roles accept), give PowerMTA's .deb package" % (host, package))
    if is_file is None:
        return problems
    for name, what in (("powermta_package_src", "your PowerMTA .deb"), ("powermta_license_src", "your license file")):
        path = host_vars.get(name)
        if isinstance(path, str) and path and not is_file(path):
            problems.append("%s: %s %s is not a file on the controller (a relative path is read from the directory "
                            "ansible-playbook runs in): give the path of %s, e.g. \"{{ inventory_dir }}/files/%s\""
                            % (host, name, path, what,
                               "PowerMTA-5.0r8.deb" if name == "powermta_package_src" else "pmta-license"))
    return problems


def inbound_problems(host, host_vars):
    """The powermta role's inbound checks (complaint reports need an address to arrive at, §12.7)."""
    problems = []
    fbl = host_vars.get("powermta_fbl_address")
    if isinstance(fbl, str) and fbl and not re.match(r"^[^@\s#]+@[^@\s#]+$", fbl):
        problems.append("%s: powermta_fbl_address must be one e-mail address (e.g. fbl@fbl.example.com), got %r"
                        % (host, fbl))
    try:
        fbl_enabled = as_bool(host_vars.get("powermta_fbl_enabled", False))
        inbound = as_bool(host_vars.get("powermta_inbound_enabled", True))
    except ValueError:
        fbl_enabled, inbound = False, True  # the argument spec reports the type
    if fbl_enabled and (not inbound or not fbl):
        problems.append("%s: powermta_fbl_enabled needs powermta_fbl_address (where ISPs send complaints, e.g. "
                        "fbl@fbl.example.com) and powermta_inbound_enabled: true (§12.7), or powermta_fbl_enabled: "
                        "false" % host)
    return problems


def host_rule_problems(host, host_vars, model):
    """The rules that need one host's merged lists only."""
    return (settings_problems(host, host_vars) + exposure_problems(host, host_vars, model)
            + naming_problems(host, model) + port_problems(host, host_vars, model)
            + vmta_address_problems(host, model) + inbound_problems(host, host_vars))


def fleet_rule_problems(fleet_vars, hosts):
    """The rules that need the whole fleet (the sending domains of every host)."""
    sending = {domain["name"] for model in hosts.values() for domain in model["domains"]}
    problems = []
    for host in sorted(hosts):
        problems += domain_ownership_problems(host, fleet_vars[host], hosts[host], sending)
    return problems


def _merged_layer(variable):
    """The fleet model's per-host layer for a list variable (merged by name over the others)."""
    if variable.startswith("host_tuning_"):
        return "host_tuning_host_sysctl"
    kind = variable.replace("powermta_default_", "").replace("powermta_group_", "").replace("powermta_host_", "")
    return "powermta_host_%s" % kind.replace("powermta_", "")


def layer_conflict_problems(conflicts):
    """One line per list variable set with different values at two inventory levels (``{(host, var): places}``).

    Ansible keeps one value by precedence and drops the other's items without a word; the model cannot see the
    dropped list, so it refuses instead of guessing.
    """
    problems = []
    for (host, variable), places in sorted(conflicts.items()):
        problems.append(
            "%s: %s is set in %s: Ansible keeps only one of them and the other's items are lost; set %s in one "
            "place and put what one host adds or changes in %s (merged by name, docs/variables.md)"
            % (host, variable, " and in ".join(places), variable, _merged_layer(variable)))
    return problems
