# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action mailops.powermta.fleet_model: build the fleet model once, on the controller (docs in plugins/modules)."""

from __future__ import annotations

import os
import re

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.model import (
    FACT_SETTINGS,
    LAYERS,
    SECRET_KEYS,
    SYSCTL_LAYERS,
    build_fleet_model,
    host_problems,
    wanted_variables,
)
from ansible_collections.mailops.powermta.plugins.module_utils._fleet.rules import (
    later_role_problems,
    layer_conflict_problems,
    port_problems,
)
from ansible_collections.mailops.powermta.plugins.plugin_utils._config_preflight import config_problems
from ansible_collections.mailops.powermta.plugins.plugin_utils._inventory_layers import set_twice
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import plain as _plain
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import trusted
from ansible_collections.mailops.powermta.plugins.plugin_utils._role_specs import role_specs, spec_problems

ARGUMENT_SPEC = {
    "group": {"type": "str", "default": "pmta_fleet"},
    "hosts": {"type": "list", "elements": "str"},
    "include_secrets": {"type": "bool", "default": True},
    "fail_on_problems": {"type": "bool", "default": True},
    "scope": {"type": "str", "default": "fleet", "choices": ["fleet", "host"]},
    "vmtas": {"type": "list", "elements": "dict", "default": []},
    "addresses": {"type": "list", "elements": "str", "default": []},
    "listeners": {"type": "list", "elements": "dict", "default": []},
    # Render and lint every host's complete PowerMTA config, as the powermta role would (playbooks/preflight.yml).
    "render": {"type": "bool", "default": False},
    # The package and license files exist on the controller (the powermta role asserts it before installing);
    # a run that installs nothing (tools/render_pmta_configs.yml) leaves it out.
    "controller_files": {"type": "bool", "default": True},
}


# The powermta role's defaults: hostvars outside the role do not hold them, so the model reads them here.
ROLE_DEFAULTS = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "powermta", "defaults", "main.yml")


def role_defaults():
    with open(ROLE_DEFAULTS, encoding="utf-8") as handle:
        return trusted(yaml.safe_load(handle) or {})


def _referenced_names(defaults):
    """Variable names the defaults' templates mention (only these are read from the host for templating)."""
    words = set()
    for text in _strings(defaults):
        for expression in re.findall(r"\{\{(.*?)\}\}", text):
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression))
    return sorted(words)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def play_overrides(task_vars, defaults, skip_keys, templar):
    """Variables of the play (vars, vars_files, role and include params) that hostvars do not show.

    hostvars hold inventory, facts and extra vars only; a play's vars apply to every host of the play and win
    over inventory variables, so a model variable whose value in this task differs from the host's hostvars
    is one of them. Where the value is the role's default (lower than inventory), it is left to
    ``read_fleet_vars``, which templates the default per host.
    """
    current = task_vars.get("inventory_hostname")
    hostvars = task_vars.get("hostvars", {})
    host_vars = hostvars.raw_get(current) if current in hostvars else {}
    host_templar = templar.copy_with_new_env(available_variables=host_vars)
    overrides = {}
    for name in wanted_variables():
        if name not in task_vars:
            continue
        try:
            value = _plain(task_vars[name], skip_keys, templar)
            if name in host_vars:
                differs = value != _plain(host_vars[name], skip_keys, host_templar)
            elif name in defaults:  # the role's default, or a play variable over it
                differs = value != _plain(defaults[name], skip_keys, templar)
            else:
                differs = True
            if differs:
                overrides[name] = value
        except Exception:  # unreadable here: the per-host read reports it
            continue
    return overrides


def read_fleet_vars(hostvars, hosts, templar, include_secrets=True, defaults=None, overrides=None):
    """({host: {variable: value}}, {(host, variable): reason}) for the variables the model needs.

    Reads each host's raw variables once (hostvars.raw_get) and templates only the leaves of the variables the
    model needs, so a skipped key (a password) is never templated and a closed vault does not matter. A variable
    the host does not define comes from ``defaults`` (the role's defaults), templated with the host's variables.
    """
    skip = () if include_secrets else SECRET_KEYS
    defaults = defaults or {}
    overrides = overrides or {}
    fleet_vars = {}
    unreadable = {}
    names = wanted_variables()
    referenced = _referenced_names(defaults)
    for host in hosts:
        raw = hostvars.raw_get(host)
        host_templar = templar.copy_with_new_env(available_variables=raw)
        values = {}
        defaults_templar = None
        for name in names:
            try:
                if name in overrides:
                    values[name] = overrides[name]
                elif name in raw:
                    values[name] = _plain(raw[name], skip, host_templar)
                elif name in defaults:
                    if defaults_templar is None:
                        scope = dict(defaults)
                        scope.update((key, raw[key]) for key in referenced if key in raw)
                        defaults_templar = templar.copy_with_new_env(available_variables=scope)
                    values[name] = _plain(defaults[name], skip, defaults_templar)
            except Exception as exc:  # an undefined or failing template: reported, never fatal here
                if name in FACT_SETTINGS:
                    continue  # they depend on facts; the role checks them on the host (scope=host)
                unreadable[(host, name)] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fleet_vars[host] = values
    return fleet_vars, unreadable


def inventory_spec_problems(hostvars, hosts, templar, skip_keys, is_file=os.path.isfile):
    """Every role's argument spec against what each host's inventory sets (values that cannot be read are the
    model's or the role's to report)."""
    specs = role_specs()
    cache = {}
    problems = []
    for host in hosts:
        raw = hostvars.raw_get(host)
        host_templar = templar.copy_with_new_env(available_variables=raw)
        values = {}
        for name in raw:
            if name not in specs:
                continue
            try:
                values[name] = _plain(raw[name], skip_keys, host_templar)
            except Exception:  # undefined (a vault not opened) or failing: reported where it is read
                continue
        problems += spec_problems(host, values, specs, cache)
        problems += later_role_problems(host, values, set(raw), is_file=is_file)
    return problems


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleError("fleet_model: %s" % "; ".join(validation.error_messages))
        args = validation.validated_parameters
        task_vars = task_vars or {}
        if args["scope"] == "host":
            return self._check_host(result, args, task_vars)
        group = args["group"]
        hosts = args["hosts"]
        if hosts is None:
            hosts = list(task_vars.get("groups", {}).get(group, []))
            hosts += [host for host in task_vars.get("ansible_play_hosts_all", []) if host not in hosts]
        defaults = role_defaults()
        skip = () if args["include_secrets"] else SECRET_KEYS
        play_hosts = set(task_vars.get("ansible_play_hosts_all", []))
        overrides = play_overrides(task_vars, defaults, skip, self._templar)
        in_play = [host for host in hosts if host in play_hosts]
        fleet_vars, unreadable = read_fleet_vars(task_vars["hostvars"], in_play, self._templar,
                                                 args["include_secrets"], defaults, overrides)
        others, unreadable_others = read_fleet_vars(task_vars["hostvars"], [h for h in hosts if h not in play_hosts],
                                                    self._templar, args["include_secrets"], defaults)
        fleet_vars.update(others)
        unreadable.update(unreadable_others)
        model, problems = build_fleet_model(fleet_vars, unreadable, group=group, secrets=args["include_secrets"])
        layered = [name for layers in LAYERS.values() for name in layers] + list(SYSCTL_LAYERS)
        problems += layer_conflict_problems(set_twice(task_vars["hostvars"], self._loader, hosts, layered))
        problems += inventory_spec_problems(task_vars["hostvars"], hosts, self._templar, skip,
                                            os.path.isfile if args["controller_files"] else None)
        if args["render"] and not problems:  # a config is rendered from a consistent model only
            problems += config_problems(self._loader, self._templar, task_vars["hostvars"], model, defaults)
        result.update(changed=False, problems=problems)
        if problems and args["fail_on_problems"]:
            result.update(failed=True, msg="Fix the inventory before anything changes (%d problem(s)):\n%s"
                          % (len(problems), "\n".join(problems)))
            return result
        result.update(model)
        result["msg"] = "Fleet model consistent: %d host(s), %d IP(s)." % (len(hosts), len(model["ips"]))
        # The model holds injector passwords: keep it out of the output (a registered value still has it).
        result["_ansible_no_log"] = bool(args["include_secrets"])
        return result

    def _check_host(self, result, args, task_vars):
        """Per host, after facts: settings templated from facts and vMTA IPs on the host's interfaces."""
        host = task_vars.get("inventory_hostname")
        settings = {}
        for name in FACT_SETTINGS:
            if name in task_vars:
                try:
                    settings[name] = _plain(task_vars[name], (), self._templar)
                except Exception as exc:  # reported, with the variable named
                    settings[name] = "<cannot be read: %s>" % str(exc).splitlines()[0]
        problems = host_problems(host, settings, args["vmtas"], args["addresses"])
        # The port rule again with this task's own value of the web monitor's port: extra vars and play vars
        # included, whatever model the run was given (a port taken twice leaves pmtahttp crash-looping).
        if "powermta_http_mgmt_port" in task_vars:
            try:
                http_port = _plain(task_vars["powermta_http_mgmt_port"], (), self._templar)
            except Exception:  # unreadable: the fleet model names it
                http_port = None
            if http_port is not None:
                problems += [text for text in port_problems(host, {"powermta_http_mgmt_port": http_port},
                                                            {"listeners": args["listeners"]})
                             if text not in problems]
        result.update(changed=False, problems=problems)
        if problems and args["fail_on_problems"]:
            result.update(failed=True, msg="Fix the inventory of %s before anything changes (%d problem(s)):\n%s"
                          % (host, len(problems), "\n".join(problems)))
        return result
