# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the injector transport export (playbooks/injector_transports.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.mailops.powermta.plugins.module_utils._operations.transports import (
    TransportError,
    build_transports,
    to_csv,
)


def _injector_transports(injectors, nodes, schedule=None, isps=None, full_daily_capacity=None,
                         include_passwords=False):
    """``powermta_injectors | mailops.powermta.injector_transports(nodes, ...)``."""
    try:
        return build_transports(injectors, nodes, schedule=schedule, isps=isps,
                                full_daily_capacity=full_daily_capacity, include_passwords=include_passwords)
    except TransportError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _injector_transports_csv(document):
    """``document | mailops.powermta.injector_transports_csv``."""
    if not isinstance(document, dict) or "transports" not in document:
        raise AnsibleFilterError("injector_transports_csv expects one document from injector_transports")
    return to_csv(document)


class FilterModule:
    def filters(self):
        return {
            "injector_transports": _injector_transports,
            "injector_transports_csv": _injector_transports_csv,
        }
