#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pmta_activation_gate
short_description: Gate a PowerMTA reload or restart (room in the spool before, serving after)
version_added: 0.1.0
description:
  - V(before) an activation, fails when a C(<spool>) file system of the installed config has less free space
    than O(spool_min_free_percent), so a config is never reloaded into a full spool.
  - V(after) a reload or restart, waits until PowerMTA serves again. The O(services) are active, every
    C(smtp-listener) of the installed config greets with an SMTP 220 banner, and the web monitor answers HTTP on
    C(http-mgmt-port) (skipped when it is 0, no web monitor). It fails after O(timeout) seconds, with
    PowerMTA's own log lines, so the caller can restore the previous files and restart.
  - The listeners, the management port and the spools are read from the config on the host (with its
    includes), which is what PowerMTA itself reads at start.
author:
  - mailops.powermta contributors (@mailops)
options:
  phase:
    description: V(before) checks the spool; V(after) waits until PowerMTA serves.
    type: str
    choices: [before, after]
    required: true
  config:
    description: PowerMTA's main configuration file.
    type: path
    default: /etc/pmta/config
  services:
    description: systemd units that must be active (V(after)). V(pmtahttp) is skipped when C(http-mgmt-port) is 0.
    type: list
    elements: str
    default: [pmta, pmtahttp]
  timeout:
    description: Seconds to wait for every check to pass (V(after)).
    type: int
    default: 60
  spool_min_free_percent:
    description: Least free space, in percent of each spool file system, to accept an activation (V(before)).
    type: float
    default: 10
  log_files:
    description:
      - PowerMTA's log files whose last lines are returned when the gate fails (those changed in the last
        minutes). The config's C(log-file) is added.
    type: list
    elements: path
    default: [/var/log/pmta/pmta-startuperr.log, /var/log/pmta/pmtahttp.log]
notes:
  - Reads only; runs on the PowerMTA host (as root, to read the config and the logs).
seealso:
  - module: mailops.powermta.pmta_health
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Refuse to reload into a full spool
  mailops.powermta.pmta_activation_gate:
    phase: before
    spool_min_free_percent: 10

- name: Wait until PowerMTA serves again after the reload
  mailops.powermta.pmta_activation_gate:
    phase: after
    timeout: 60
"""

RETURN = r"""
checks:
  description: The last round of checks (V(after)), each C({name, ok, detail}).
  returned: always
  type: list
  elements: dict
  sample: [{name: smtp-listener 0/0:25, ok: true, detail: "220 mta10.example.com ESMTP"}]
spool:
  description:
    - Spool file systems below O(spool_min_free_percent) (V(before)), each C({spool, free_percent, free_bytes}).
  returned: always
  type: list
  elements: dict
seconds:
  description: Seconds waited (V(after)).
  returned: always
  type: float
log:
  description: When the gate fails, PowerMTA's own recent log lines, each C({source, lines}).
  returned: always
  type: list
  elements: dict
"""

import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.activation_gate import (  # noqa: E402
    GateError,
    log_lines,
    read_endpoints,
    spool_problems,
    wait_until_serving,
)

# The reload or restart ran just before this gate: older log lines say nothing about it.
LOG_WINDOW = 30


def main():
    module = AnsibleModule(
        argument_spec={
            "phase": {"type": "str", "choices": ["before", "after"], "required": True},
            "config": {"type": "path", "default": "/etc/pmta/config"},
            "services": {"type": "list", "elements": "str", "default": ["pmta", "pmtahttp"]},
            "timeout": {"type": "int", "default": 60},
            "spool_min_free_percent": {"type": "float", "default": 10},
            "log_files": {"type": "list", "elements": "path",
                          "default": ["/var/log/pmta/pmta-startuperr.log", "/var/log/pmta/pmtahttp.log"]},
        },
        supports_check_mode=True,
    )
    params = module.params
    started = time.time()
    result = {"changed": False, "checks": [], "spool": [], "seconds": 0.0, "log": []}
    try:
        endpoints = read_endpoints(params["config"])
    except GateError as exc:
        module.fail_json(msg="pmta_activation_gate: %s" % exc, **result)
    if params["phase"] == "before":
        result["spool"] = spool_problems(endpoints["spools"], params["spool_min_free_percent"])
        if result["spool"]:
            module.fail_json(msg="the spool has no room for an activation (%s; at least %s%% free wanted): free space "
                                 "on the spool disk first; queued mail stays where it is" % (
                                     "; ".join("%s %s" % (p["spool"], "%.1f%% free" % p["free_percent"]
                                                          if "free_percent" in p else p["error"])
                                               for p in result["spool"]),
                                     params["spool_min_free_percent"]), **result)
        module.exit_json(**result)
    ok, checks, waited = wait_until_serving(params["services"], endpoints, params["timeout"])
    result.update(checks=checks, seconds=round(waited, 1))
    if not ok:
        files = params["log_files"] + ([endpoints["log_file"]] if endpoints["log_file"] else [])
        result["log"] = log_lines(files, params["services"], since=started - LOG_WINDOW)
        failed = "; ".join("%s: %s" % (c["name"], c["detail"]) for c in checks if not c["ok"])
        module.fail_json(msg="PowerMTA does not serve %d s after the activation: %s" % (params["timeout"], failed),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
