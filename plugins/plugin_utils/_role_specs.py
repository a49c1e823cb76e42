# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: every role's argument spec checked at preflight, one line per problem (issue 20).

The roles validate their own argument specs again when they start (a second line of defence when preflight is
skipped); here the same specs validate what each host's inventory sets, before any host is contacted, and each
error becomes one line naming the host, the variable, the list item and the fix, instead of Ansible's dump of
the whole spec. A list of dicts is validated item by item, so the message names the item.
"""

from __future__ import annotations

import os
import re

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "roles")
# The roles site.yml runs on the fleet's hosts, in order.
ROLES = ("host_tuning", "powermta", "dns", "warmup", "monitoring")
_SPECS = {}


def role_specs():
    """``{variable: (role, spec)}`` of the main entry points (loaded once per process)."""
    if not _SPECS:
        for role in ROLES:
            path = os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")
            with open(path, encoding="utf-8") as handle:
                options = yaml.safe_load(handle)["argument_specs"]["main"].get("options") or {}
            for name, spec in options.items():
                _SPECS.setdefault(name, (role, spec))
    return _SPECS


def _one_line(message, variable):
    """Ansible's validator message, shortened to the problem and the fix."""
    message = " ".join(str(message).split())
    # Ansible writes "KEYS. Supported parameters include: ..." (or with an "Unsupported parameters for (...)
    # module: " prefix, "found in X" for nested options); the list of every supported key is the dump left out.
    unsupported = re.match(r"(?:Unsupported parameters for \(.*?\) module: )?(.*?)(?: found in (\S+?))?\. "
                           r"Supported parameters include: (.*)$", message)
    if unsupported:
        keys, nested, _supported = unsupported.groups()
        where = " in %s" % nested if nested else ""
        return ("unknown key(s) %s%s: check the spelling (docs/variables.md, %s, lists the keys)"
                % (keys, where, variable))
    message = re.sub(r"<class '(\w+)'>", r"\1", message)
    message = re.sub(r"^argument '%s' " % re.escape(variable), "", message)
    return message


def _validate(spec, params):
    return ArgumentSpecValidator(spec).validate(params).error_messages


def _variable_problems(variable, value, role, spec):
    """Problems of one variable, without the host."""
    problems = []
    item_spec = spec.get("options") if spec.get("type") == "list" and spec.get("elements") == "dict" else None
    if item_spec and isinstance(value, list):
        for index, item in enumerate(value):
            name = item.get("name", index) if isinstance(item, dict) else index
            if not isinstance(item, dict):
                problems.append("%s item %s must be a dict (role %s), got %r" % (variable, name, role, item))
                continue
            for message in _validate(item_spec, item):
                problems.append("%s item %s: %s" % (variable, name, _one_line(message, variable)))
        return problems
    for message in _validate({variable: spec}, {variable: value}):
        problems.append("%s: %s (role %s)" % (variable, _one_line(message, variable), role))
    return problems


def spec_problems(host, values, specs=None, cache=None):
    """Problems of ``values`` ({variable: plain value} the inventory sets for ``host``) against the specs.

    ``cache`` ({}): shared across hosts, so a group's value is validated once for the fleet.
    """
    specs = specs if specs is not None else role_specs()
    cache = cache if cache is not None else {}
    problems = []
    for variable in sorted(values):
        if variable not in specs:
            continue
        role, spec = specs[variable]
        key = (variable, repr(values[variable]))
        if key not in cache:
            cache[key] = _variable_problems(variable, values[variable], role, spec)
        problems += ["%s: %s" % (host, text) for text in cache[key]]
    return problems
