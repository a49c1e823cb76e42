# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side: where in the inventory a variable is set (groups, group_vars, host, host_vars).

Ansible's precedence keeps ONE value of a variable set at two levels (host_vars over group_vars, a child group
over its parent): a list set twice silently loses the other level's items. The fleet model merges lists by
name only across its own layers (powermta_X, powermta_group_X, powermta_host_X), so the same variable set at
two inventory levels with different values is refused, naming both places (docs/variables.md).
"""

from __future__ import annotations

import os

from ansible.plugins.loader import vars_loader


def _entity_vars(loader, sources, entity):
    """Inline inventory vars and the group_vars/ host_vars/ files next to each inventory source."""
    found = dict(entity.get_vars())
    plugin = vars_loader.get("ansible.builtin.host_group_vars")
    for source in sources:
        if not source or ("," in source and not os.path.exists(source)):
            continue  # a host list, not a path
        path = source if os.path.isdir(source) else os.path.dirname(source)
        try:
            found.update(plugin.get_vars(loader, path, [entity]))
        except Exception:  # a file that fails here fails again, with its own message, when Ansible loads it
            continue
    return found


def set_twice(hostvars, loader, hosts, variables):
    """``{(host, variable): [place, ...]}`` for each variable set with different values at 2+ inventory levels.

    A place is ``group NAME`` or ``host NAME`` (inline inventory vars, group_vars/ and host_vars/ alike).
    """
    inventory = getattr(hostvars, "_inventory", None)
    if inventory is None:
        return {}
    sources = list(getattr(inventory, "_sources", []) or [])
    wanted = set(variables)
    group_cache = {}
    found = {}
    for name in hosts:
        host = inventory.get_host(name)
        if host is None:
            continue
        places = []
        for group in sorted(host.get_groups(), key=lambda group: (group.depth, group.name)):
            if group.name not in group_cache:
                group_cache[group.name] = {key: value for key, value in _entity_vars(loader, sources, group).items()
                                           if key in wanted}
            places.append(("group %s" % group.name, group_cache[group.name]))
        places.append(("host %s" % name, {key: value for key, value in _entity_vars(loader, sources, host).items()
                                          if key in wanted}))
        for variable in variables:
            holders = [(place, values[variable]) for place, values in places if variable in values]
            distinct = {repr(value) for _place, value in holders}
            if len(holders) > 1 and len(distinct) > 1:
                found[(name, variable)] = [place for place, _value in holders]
    return found
