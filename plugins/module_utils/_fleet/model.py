# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet model: layered inventory merged, normalized and checked for the whole fleet at once.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, no Ansible imports. Input: ``{host: {variable: value}}`` holding only the variables named in
``wanted_variables()`` (a variable that could not be read is absent, or listed in ``unreadable``).
Output of ``build_fleet_model``: ``(model, problems)``; every problem names the host, the variable and the fix.
The action plugin ``mailops.powermta.fleet_model`` runs it once per play (docs/architecture.md).
"""

from __future__ import annotations

import re

from ansible_collections.mailops.powermta.plugins.module_utils._host_tuning.probe import check_sysctl_items
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.ownership import directory_problems

from .checks import fleet_problems
from .derived import DERIVED_SETTINGS, authenticating, derive, is_warming, starttls_offered, with_item_defaults
from .items import (
    FQDN_RE,
    LAYERS,
    as_bool,
    as_int,
    bounce_mailbox,
    check_item,
    directive_problems,
    normalize_domain,
    reply_pattern_problems,
)
from .layers import LayerError, merge_by_name
from .retire import retire_vmtas
from .rules import (
    RULE_SETTINGS,
    fleet_rule_problems,
    host_rule_problems,
)

SYSCTL_LAYERS = ("host_tuning_sysctl", "host_tuning_group_sysctl", "host_tuning_host_sysctl")
SETTINGS = (
    "powermta_package_src", "powermta_package_name", "powermta_license", "powermta_license_src",
    "powermta_hostname", "powermta_postmaster", "powermta_http_mgmt_port", "powermta_http_access",
    "powermta_spool_dirs", "powermta_lint_fail_on", "powermta_dkim_key_source", "powermta_dkim_controller_dir",
    "powermta_dkim_key_bits", "powermta_dkim_key_dir", "powermta_dkim_sign", "powermta_allow_unencrypted_auth",
    "powermta_domain_defaults", "powermta_auth_source_directives", "powermta_generic_reply_patterns",
    "powermta_log_file",  # _ownership: only directories the collection owns
)
# The injector's mailbox (_fleet_items.bounce_mailbox), checked against the bounce domains and the FBL address.
MAILBOX_SETTINGS = ("powermta_bounce_mailbox", "powermta_bounce_domains", "powermta_fbl_address")
# Settings whose defaults come from facts: checked again on the host (host_problems), after facts are gathered.
FACT_SETTINGS = ("powermta_hostname", "powermta_postmaster", "powermta_spool_dirs")
HTTP_LEVELS = ("none", "monitor", "operator", "admin")
DEFAULTS = {"powermta_dkim_key_bits": 2048, "powermta_dkim_key_dir": "/etc/pmta/dkim", "powermta_dkim_sign": True,
            "powermta_dkim_key_source": "host", "powermta_allow_unencrypted_auth": False}
SECRET_KEYS = ("password",)


def wanted_variables():
    """Every variable the model reads from a host's vars (nothing else is templated)."""
    names = [name for layers in LAYERS.values() for name in layers]
    names += list(SYSCTL_LAYERS) + list(SETTINGS) + list(MAILBOX_SETTINGS) + list(RULE_SETTINGS)
    names += list(DERIVED_SETTINGS)
    return list(dict.fromkeys(names))  # once each (the mailbox and the rules share a few)


def _merge_layers(host, kind, host_vars, problems):
    layers = []
    for variable in LAYERS[kind]:
        layer = host_vars.get(variable)
        if layer is None:
            layers.append([])
            continue
        if not isinstance(layer, list):
            problems.append("%s: %s must be a list of dicts with a name, got the %s %r"
                            % (host, variable, type(layer).__name__, layer))
            layers.append([])
            continue
        seen = set()
        clean = []
        for index, item in enumerate(layer):
            if not isinstance(item, dict) or item.get("name") in (None, ""):
                problems.append("%s: %s item %d must be a dict with a name, got %r" % (host, variable, index, item))
                continue
            item = dict(item)
            if kind == "domains":
                item["name"] = normalize_domain(item["name"])
            name = item["name"] if isinstance(item["name"], str) else str(item["name"])
            item["name"] = name
            if name in seen:
                problems.append("%s: %s names %s twice; one list holds each name once (an override goes into a later "
                                "layer, e.g. powermta_host_%s)" % (host, variable, name, kind))
                continue
            seen.add(name)
            clean.append(item)
        layers.append(clean)
    try:
        return merge_by_name(*layers, layer_names=list(LAYERS[kind]))
    except LayerError as exc:
        problems.append("%s: %s" % (host, exc))
        return []


def _setting(host_vars, name):
    return host_vars.get(name, DEFAULTS.get(name))


def _settings_problems(host, host_vars):
    """The global settings, each checked on its own; settings that could not be read are left to the role."""
    problems = []
    where = host + ": "

    def given(name):
        return name in host_vars

    if given("powermta_hostname") and not FQDN_RE.match(str(host_vars["powermta_hostname"])):
        problems.append(where + "powermta_hostname must be a FQDN, got %r" % host_vars["powermta_hostname"])
    if given("powermta_postmaster") and not re.match(r"^[^@\s#]+@[^@\s#]+$", str(host_vars["powermta_postmaster"])):
        problems.append(where + "powermta_postmaster must be an e-mail address, got %r"
                        % host_vars["powermta_postmaster"])
    if given("powermta_http_mgmt_port"):
        value = host_vars["powermta_http_mgmt_port"]
        try:
            port = as_int(value)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            problems.append(where + "powermta_http_mgmt_port must be a port number 0-65535, got %r" % value)
    if given("powermta_http_access"):
        access = host_vars["powermta_http_access"]
        if not isinstance(access, list):
            problems.append(where + "powermta_http_access must be a list of {name: CIDR, level}, got %r" % access)
        else:
            for item in access:
                if not isinstance(item, dict) or item.get("level") not in HTTP_LEVELS:
                    problems.append(where + "powermta_http_access item %r: level must be one of %s"
                                    % (item, "|".join(HTTP_LEVELS)))
    if given("powermta_spool_dirs"):
        spools = host_vars["powermta_spool_dirs"]
        if not isinstance(spools, list) or not spools:
            problems.append(where + "powermta_spool_dirs must be a non-empty list of absolute paths "
                            "(e.g. [/var/spool/pmta]), got %r" % (spools,))
        else:
            relative = [path for path in spools if not str(path).startswith("/")]
            if relative:
                problems.append(where + "powermta_spool_dirs must hold absolute paths, got %r" % relative)
    if given("powermta_lint_fail_on") and host_vars["powermta_lint_fail_on"] not in ("error", "warning"):
        problems.append(where + "powermta_lint_fail_on must be error or warning, got %r"
                        % host_vars["powermta_lint_fail_on"])
    source = _setting(host_vars, "powermta_dkim_key_source")
    if source not in ("host", "controller"):
        problems.append(where + "powermta_dkim_key_source must be host or controller, got %r" % source)
    elif (source == "controller" and given("powermta_dkim_controller_dir")
          and not host_vars["powermta_dkim_controller_dir"]):
        problems.append(where + "powermta_dkim_key_source: controller needs powermta_dkim_controller_dir (a directory "
                        "on the controller)")
    for name in ("powermta_dkim_sign", "powermta_allow_unencrypted_auth"):
        try:
            as_bool(_setting(host_vars, name))
        except ValueError:
            problems.append(where + "%s must be true or false, got %r" % (name, host_vars.get(name)))
    try:
        as_int(_setting(host_vars, "powermta_dkim_key_bits"))
    except ValueError:
        problems.append(where + "powermta_dkim_key_bits must be an integer, got %r"
                        % host_vars.get("powermta_dkim_key_bits"))
    for name in ("powermta_domain_defaults", "powermta_auth_source_directives"):
        if given(name):
            problems += [where + text for text in directive_problems(name, host_vars[name])]
    if given("powermta_generic_reply_patterns"):
        patterns = host_vars["powermta_generic_reply_patterns"]
        if not isinstance(patterns, list):
            problems.append(where + "powermta_generic_reply_patterns must be a list of {regex, action}")
        else:
            for pattern in patterns:
                found = reply_pattern_problems("powermta_generic_reply_patterns", pattern)
                problems += [where + text for text in found]
    both_packages = host_vars.get("powermta_package_src") and host_vars.get("powermta_package_name")
    if both_packages:
        problems.append(where + "set only one of powermta_package_src and powermta_package_name")
    for layer in SYSCTL_LAYERS:
        items = host_vars.get(layer)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            problems.append(where + "%s must be a list of {name, value}, got %r" % (layer, items))
            continue
        present = [item for item in items if item.get("state", "present") != "absent"]
        problems += [where + text for text in check_sysctl_items(present, variable=layer)]
    return problems


def _host_model(host, host_vars, problems, secrets):
    model = {}
    for kind in LAYERS:
        merged = _merge_layers(host, kind, host_vars, problems)
        checked = []
        for item in merged:
            item, found = check_item(kind, "powermta_%s" % kind, item, secrets)
            problems += ["%s: %s" % (host, text) for text in found]
            checked.append(with_item_defaults(kind, item))
        model[kind] = checked
    problems += ["%s: %s" % (host, text) for text in directory_problems(host_vars, model["acct_files"])]
    model["vmtas"] = retire_vmtas(model["vmtas"])  # retire: true -> out of its pool, rerouted (retire_ip.yml)
    bits = _setting(host_vars, "powermta_dkim_key_bits")
    key_dir = str(_setting(host_vars, "powermta_dkim_key_dir")).rstrip("/")
    model["dkim_keys"] = [
        {"domain": domain["name"], "selector": selector, "bits": _int_or(domain.get("dkim_key_bits", bits), 2048),
         "path": "%s/%s/%s.pem" % (key_dir, domain["name"], selector)}
        for domain in model["domains"] for selector in _list_or_empty(domain.get("dkim_selectors"))
    ]
    model["warmup_files"] = [
        {"src": "etc/pmta/conf.d/warmup.conf.j2", "dest": "etc/pmta/conf.d/warmup.conf", "name": ""}]
    model["bounce_mailbox"], found = bounce_mailbox(host_vars.get("powermta_bounce_mailbox"), model["domains"],
                                                    host_vars.get("powermta_bounce_domains"),
                                                    host_vars.get("powermta_fbl_address"))
    problems += ["%s: %s" % (host, text) for text in found]
    model.update(derive(host_vars, model))
    # Every vMTA whose block includes a warm-up file gets one (a comment until the warmup role writes it).
    model["warmup_files"] += [
        {"src": "etc/pmta/conf.d/warmup.d/vmta.conf.j2", "dest": "etc/pmta/conf.d/warmup.d/%s.conf" % name,
         "name": name}
        for name in model["warmup_includes"]
    ]
    problems += _reference_problems(host, host_vars, model)
    problems += host_rule_problems(host, host_vars, model)
    return model


def _int_or(value, fallback):
    try:
        return as_int(value)
    except ValueError:
        return fallback


def _list_or_empty(value):
    return value if isinstance(value, list) else []


def _reference_problems(host, host_vars, model):
    """Names one item gives that another list must define."""
    problems = []
    vmta_names = [vmta["name"] for vmta in model["vmtas"]]
    pool_names = [pool["name"] for pool in model["pools"]]
    for injector in model["injectors"]:
        target = injector.get("default_virtual_mta")
        if target and target not in vmta_names + pool_names:
            problems.append("%s: powermta_injectors item %s: default_virtual_mta %s is neither a vMTA nor a pool of "
                            "this host" % (host, injector["name"], target))
    # One IP on one vMTA of one host: _fleet.ip_owner_problems, for the whole fleet at once.
    try:
        allow_plain = as_bool(_setting(host_vars, "powermta_allow_unencrypted_auth"))
    except ValueError:
        allow_plain = False
    if authenticating(model["injectors"]) and not starttls_offered(model["listeners"]) and not allow_plain:
        problems.append("%s: powermta_injectors authenticate with SMTP AUTH, but no listener in powermta_listeners has "
                        "starttls: true, so passwords would cross the network in clear: enable STARTTLS on the "
                        "injection listener, or set powermta_allow_unencrypted_auth: true (a trusted network only)"
                        % host)
    return problems


def _view(host_vars, model):
    """What the cross-host checks of _fleet/checks.py read."""
    try:
        sign = as_bool(_setting(host_vars, "powermta_dkim_sign"))
    except ValueError:
        sign = True
    return {
        "vmtas": model["vmtas"],
        "pools": [pool["name"] for pool in model["pools"]],
        "domains": [dict(domain, dkim_selectors=_list_or_empty(domain.get("dkim_selectors")))
                    for domain in model["domains"]],
        "dkim_sign": sign,
        "dkim_key_source": _setting(host_vars, "powermta_dkim_key_source"),
        "package_given": bool(host_vars.get("powermta_package_src") or host_vars.get("powermta_package_name")),
        "license_given": bool(host_vars.get("powermta_license") or host_vars.get("powermta_license_src")),
    }


def host_problems(host, settings, vmtas, addresses):
    """Checks that need the host's facts: settings templated from facts, vMTA IPs configured on the host."""
    problems = _settings_problems(host, {name: settings[name] for name in FACT_SETTINGS if name in settings})
    configured = set()
    for address in addresses or []:
        configured.add(str(address).split("%", maxsplit=1)[0].lower())
    for vmta in vmtas or []:
        ip = str(vmta.get("ip", "")).lower()
        if ip and ip not in configured:
            known = ", ".join(sorted(configured)) or "none"
            problems.append("%s: powermta_vmtas item %s: IP %s is not configured on %s (its addresses: %s); add it to "
                            "an interface first, or fix the ip" % (host, vmta.get("name"), ip, host, known))
    return problems


def _fleet_view_of_domain(per_host):
    """What one DNS record per domain needs from ``[(host, domain item)]`` (hosts sorted).

    ``fleet_dkim_selectors``: every host's selectors, united in first-seen order (each host signs with
    its own; DNS publishes them all). ``differs``: ``{setting: {host: value}}`` of the settings the hosts
    give different values for (``dkim_selectors`` aside); empty when they agree.
    """
    selectors = []
    for _host, domain in per_host:
        for selector in _list_or_empty(domain.get("dkim_selectors")):
            if selector not in selectors:
                selectors.append(selector)
    differs = {}
    keys = sorted({key for _host, domain in per_host for key in domain} - {"name", "dkim_selectors"})
    for key in keys:
        values = {host: domain.get(key) for host, domain in per_host}
        if len({repr(value) for value in values.values()}) > 1:
            differs[key] = values
    return {"fleet_dkim_selectors": selectors, "differs": differs}


def build_fleet_model(fleet_vars, unreadable=None, group="pmta_fleet", secrets=True):
    """Merge and check every host of ``fleet_vars`` ({host: {variable: value}}); return (model, problems).

    ``secrets=False``: injector passwords were left out on purpose and are not checked.
    """
    problems = ["%s: %s cannot be read: %s" % (host, variable, reason)
                for (host, variable), reason in sorted((unreadable or {}).items())]
    hosts = {}
    views = {}
    for host in sorted(fleet_vars):
        host_vars = fleet_vars[host]
        problems += _settings_problems(host, host_vars)
        hosts[host] = _host_model(host, host_vars, problems, secrets)
        views[host] = _view(host_vars, hosts[host])
    problems += fleet_problems(views)
    problems += fleet_rule_problems(fleet_vars, hosts)
    vmtas = [dict(vmta, inventory_host=host) for host in sorted(hosts) for vmta in hosts[host]["vmtas"]]
    used_pools = {vmta.get("pool") for vmta in vmtas}
    empty_pools = sorted({pool["name"] for host in hosts.values() for pool in host["pools"]} - used_pools)
    for pool in empty_pools:
        problems.append("pool %s has no vMTA on any host of %s: give a vMTA pool: %s, or remove the pool from "
                        "powermta_pools (or mark it state: absent)" % (pool, group, pool))
    domains = {}
    for host in sorted(hosts):
        for domain in hosts[host]["domains"]:
            domains.setdefault(domain["name"], dict(domain, hosts=[]))["hosts"].append(host)
    for name, merged in domains.items():
        merged.update(_fleet_view_of_domain([(host, domain) for host in merged["hosts"]
                                             for domain in hosts[host]["domains"] if domain["name"] == name]))
    model = {
        "group": group,
        "secrets": bool(secrets),  # injector passwords read (roles/fleet rebuilds a model without them if needed)
        "hosts": hosts,
        "vmtas": vmtas,
        "ips": [{"ip": vmta.get("ip"), "vmta": vmta["name"], "host": vmta["inventory_host"],
                 "hostname": vmta.get("hostname"), "pool": vmta.get("pool"), "warmup": is_warming(vmta),
                 "retiring": "retiring_from_pool" in vmta, "retiring_from_pool": vmta.get("retiring_from_pool"),
                 "reroute_to": vmta.get("reroute_to")}
                for vmta in vmtas],
        "domains": [domains[name] for name in sorted(domains)],
    }
    return model, problems
