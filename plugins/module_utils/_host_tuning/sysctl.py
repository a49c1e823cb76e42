# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""host_tuning's sysctl layers, merged once in Python (not re-evaluated as a Jinja variable per reference).

PRIVATE to the collection: no compatibility promise outside it. Plain Python, no Ansible imports.

Order: the profile's defaults, then the all-hosts, group and host layers (``host_tuning_sysctl``,
``host_tuning_group_sysctl``, ``host_tuning_host_sysctl``), merged by name (``state: absent`` drops a key).
"""

from __future__ import annotations

from ansible_collections.mailops.powermta.plugins.module_utils._fleet.layers import LayerError, merge_by_name

# The kernel's fs.nr_open default: the highest LimitNOFILE a unit may set unless fs.nr_open is raised.
DEFAULT_NR_OPEN = 1048576


def merge_layers(defaults, layers):
    """Merge ``layers`` (``[{variable, items}]``, in order) over ``defaults`` by name.

    Returns ``(items, problems)``; a malformed layer is a problem naming its variable, and leaves the result empty.
    """
    names = ["host_tuning_profile"] + [str(layer.get("variable") or "sysctl layer") for layer in layers]
    try:
        return merge_by_name(defaults, *[layer.get("items") for layer in layers], layer_names=names), []
    except LayerError as exc:
        return [], [str(exc)]


def nr_open(items):
    """fs.nr_open as the merged items set it, else the kernel default."""
    for item in items:
        if item.get("name") == "fs.nr_open":
            try:
                return int(" ".join(str(item.get("value")).split()))
            except ValueError:
                return DEFAULT_NR_OPEN  # check_sysctl_items reports the bad value
    return DEFAULT_NR_OPEN


def check_limit_nofile(limit_nofile, items, variable="host_tuning_limit_nofile"):
    """A LimitNOFILE above fs.nr_open makes systemd refuse to start the unit; refuse it before any change."""
    ceiling = nr_open(items)
    if limit_nofile and int(limit_nofile) > ceiling:
        return ["%s: %d exceeds fs.nr_open (%d); lower it or add fs.nr_open to host_tuning_sysctl"
                % (variable, int(limit_nofile), ceiling)]
    return []


def annotate_skipped(items, skipped):
    """The merged items in order, each with ``skipped``: the reason this host cannot set it, or ''."""
    reasons = {item["name"]: item["reason"] for item in skipped}
    return [dict(item, skipped=reasons.get(item.get("name"), "")) for item in items]
