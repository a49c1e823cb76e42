# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``dns_records`` task: its argument spec and its run from validated parameters.

PRIVATE to the collection: no compatibility promise outside it. Shared by the module (run on the host the
task is delegated to) and its action plugin (which runs it in the controller's process when the task's
connection is local: no module payload, no second Python process; see docs/dns.md, Performance).
"""

from __future__ import annotations

from . import sync
from .values import DnsError

RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SRV", "TXT", "CAA"]
TSIG_ALGORITHM_NAMES = ["hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]

ARGUMENT_SPEC = {
    "server": {"type": "str", "required": True},
    "port": {"type": "int", "default": 53},
    "key_name": {"type": "str", "no_log": False},
    "key_secret": {"type": "str", "no_log": True},
    "key_algorithm": {"type": "str", "default": "hmac-sha256", "choices": TSIG_ALGORITHM_NAMES},
    "zone": {"type": "str"},
    "records": {
        "type": "list", "elements": "dict", "required": True,
        "options": {
            "name": {"type": "str", "required": True},
            "type": {"type": "str", "required": True, "choices": RECORD_TYPES},
            "ttl": {"type": "int", "default": 3600},
            "values": {"type": "list", "elements": "str"},
            "state": {"type": "str", "choices": ["present", "absent"]},
            "shared": {"type": "bool", "default": False},
        },
    },
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "owner": {"type": "str"},
    "prune": {"type": "bool", "default": False},
    "prune_zones": {"type": "list", "elements": "str", "default": []},
    "prune_exclude": {"type": "list", "elements": "str", "default": []},
    "adopt": {"type": "bool", "default": False},
    "spf_foreign_terms": {"type": "str", "default": "fail", "choices": ["fail", "keep"]},
    "max_changes": {"type": "int", "default": 100},
    "force": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 10},
    "read_method": {"type": "str", "default": "auto", "choices": ["auto", "query", "axfr"]},
    "return_values": {"type": "bool", "default": False},
}
REQUIRED_TOGETHER = [["key_name", "key_secret"]]


def run(params, check_mode=False, diff=False):
    """``(result, warnings)`` of the task for validated ``params``; a failure is ``result["failed"]``."""
    records = [{key: value for key, value in item.items() if value is not None} for item in params["records"]]
    client = None
    try:
        client = sync.DnsClient(params["server"], params["port"], params["key_name"], params["key_secret"],
                                params["key_algorithm"], params["timeout"])
        with client:
            result = sync.sync_records(
                client, records, state=params["state"], zone=params["zone"],
                max_changes=params["max_changes"], force=params["force"], check_mode=check_mode,
                read_method=params["read_method"], with_diff=diff, owner=params["owner"],
                prune=params["prune"], prune_zones=params["prune_zones"],
                prune_exclude=params["prune_exclude"], adopt=params["adopt"],
                spf_foreign_terms=params["spf_foreign_terms"],
                with_values=diff or params["return_values"],
            )
    except DnsError as exc:
        applied = [zone.to_text() for zone in client.applied_zones] if client else []
        return {"failed": True, "msg": str(exc), "rcode": exc.rcode, "changed": bool(applied),
                "zones_updated": applied}, []
    if result.get("diff") is None:
        result.pop("diff", None)
    # A zone transfer that failed (and was replaced by queries) is told, beside what was kept on purpose.
    return result, list(result["kept"]) + list(client.warnings)
