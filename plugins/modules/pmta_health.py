#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pmta_health
short_description: Check the health of a PowerMTA host
version_added: 0.1.0
description:
  - Read-only checks of a PowerMTA host, returned as structured results with Nagios states
    (V(OK), V(WARNING), V(CRITICAL), V(UNKNOWN)).
  - "Checks: the systemd services are active; the HTTP status endpoint answers (on loopback); recipients and
    domains queued against thresholds; queues in backoff (C(pmta --json show queues --mode=backoff));
    free space of every spool file system; licence expiry (the licence file, else C(pmta show license));
    age of the last accounting write (alarming only while PowerMTA delivered mail in the last hour)."
  - The status endpoint being unreachable gives V(UNKNOWN) for that check; a stopped service gives
    V(CRITICAL). The overall state is the worst, CRITICAL > WARNING > UNKNOWN > OK.
  - The same checks are installed on hosts as the Nagios plugin C(check_pmta) by the
    C(mailops.powermta.monitoring) role (see docs/monitoring.md).
author:
  - mailops.powermta contributors (@mailops)
options:
  services:
    description: systemd units that must be active.
    type: list
    elements: str
    default: [pmta]
  status_url:
    description:
      - URL of PowerMTA's C(/status?format=json). Keep it on loopback; set V('') to skip the status checks.
    type: str
    default: http://127.0.0.1:8080/status?format=json
  timeout:
    description: Seconds to wait for the status endpoint.
    type: float
    default: 5.0
  api_key:
    description: Value of the C(X-API-Key) header, when C(http-api-key) protects the endpoint.
    type: str
  validate_certs:
    description: Verify the certificate of an https O(status_url).
    type: bool
    default: true
  pmta_binary:
    description: The C(pmta) command, for the backoff and licence checks; V('') to skip both CLI checks.
    type: str
    default: /usr/sbin/pmta
  check_backoff:
    description: Count queues in backoff mode.
    type: bool
    default: true
  check_license:
    description: Check the licence expiry.
    type: bool
    default: true
  license_file:
    description: The licence file; when it cannot be read, C(pmta show license) is asked instead.
    type: path
    default: /etc/pmta/license
  spool_dirs:
    description: Spool directories whose file systems must have free space.
    type: list
    elements: path
    default: [/var/spool/pmta]
  acct_file:
    description: The accounting file whose last write is checked; V('') to skip.
    type: str
    default: /var/log/pmta/acct.csv
  thresholds:
    description:
      - Overrides of the default thresholds, by name.
      - "C(queued_recipients_warning) 50000, C(queued_recipients_critical) 200000,
        C(queued_domains_warning) 5000, C(queued_domains_critical) 20000,
        C(backoff_queues_warning) 1, C(backoff_queues_critical) 20,
        C(spool_free_percent_warning) 20, C(spool_free_percent_critical) 10,
        C(license_days_warning) 30, C(license_days_critical) 7,
        C(acct_age_seconds_warning) 900, C(acct_age_seconds_critical) 3600,
        C(spool_min_free_bytes) 0 (PowerMTA's C(min-free-space) of the spools in bytes, guide 3.3.2.4: below it the
        spool check says full and is CRITICAL, as PowerMTA then refuses new mail)."
    type: dict
    default: {}
  fail_on:
    description:
      - Fail the task when the overall state is this bad or worse. V(never) only reports.
    type: str
    choices: [never, unknown, warning, critical]
    default: never
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - Runs on the PowerMTA host. Reading the licence file or running C(pmta) needs root or the C(pmta) group.
seealso:
  - name: Monitoring (docs/monitoring.md)
    description: The Nagios/Zabbix command and the Prometheus metrics.
    link: https://github.com/mailops/powermta/blob/main/docs/monitoring.md
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Check PowerMTA after the reload, fail when critical
  mailops.powermta.pmta_health:
    spool_dirs: "{{ host_tuning_spool_dirs | default(['/var/spool/pmta']) }}"
    thresholds:
      queued_recipients_warning: 100000
    fail_on: critical
  register: pmta_health

- name: Show the Nagios line
  ansible.builtin.debug:
    msg: "{{ pmta_health.summary }}"
"""

RETURN = r"""
state:
  description: The overall state.
  returned: always
  type: str
  sample: WARNING
exit_code:
  description: The Nagios exit code of the overall state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
  returned: always
  type: int
  sample: 1
summary:
  description: One Nagios status line with perfdata, as C(check_pmta) prints it.
  returned: always
  type: str
  sample: "PMTA WARNING - 60003 recipients queued (warning at 50000) | queued_recipients=60003;50000;200000;0"
checks:
  description: One item per check.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Check name, also the perfdata label.
      type: str
      sample: queued_recipients
    state:
      description: OK, WARNING, CRITICAL or UNKNOWN.
      type: str
    message:
      description: What was found.
      type: str
    value:
      description: The measured number, if any.
      type: raw
    warning:
      description: Warning threshold.
      type: raw
    critical:
      description: Critical threshold.
      type: raw
    unit:
      description: Perfdata unit (V(%), V(s) or empty).
      type: str
status:
  description: Numbers read from the status endpoint (queued recipients, connections, traffic), or null.
  returned: always
  type: dict
"""

import datetime  # noqa: E402 - Ansible modules import after their documentation
import urllib.error  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import ConnectionError as UrlConnectionError  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._monitoring.health import (  # noqa: E402
    STATE_NAMES,
    HealthError,
    run_checks,
    summarize,
)

_FAIL_LEVELS = {"never": (), "unknown": ("UNKNOWN", "WARNING", "CRITICAL"), "warning": ("WARNING", "CRITICAL"),
                "critical": ("CRITICAL",)}


def fetch_with_open_url(url, headers, timeout, validate_certs=True, max_bytes=None):
    """The status fetcher ``_health.probe_http_json`` expects, over Ansible's ``open_url``."""
    try:
        with open_url(url, headers=headers, timeout=timeout, validate_certs=validate_certs) as response:
            return response.read(max_bytes)
    except UrlConnectionError as exc:  # TLS and connection errors of open_url itself
        raise urllib.error.URLError(str(exc)) from exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="str", default=["pmta"]),
            status_url=dict(type="str", default="http://127.0.0.1:8080/status?format=json"),
            timeout=dict(type="float", default=5.0),
            api_key=dict(type="str", no_log=True),
            validate_certs=dict(type="bool", default=True),
            pmta_binary=dict(type="str", default="/usr/sbin/pmta"),
            check_backoff=dict(type="bool", default=True),
            check_license=dict(type="bool", default=True),
            license_file=dict(type="path", default="/etc/pmta/license"),
            spool_dirs=dict(type="list", elements="path", default=["/var/spool/pmta"]),
            acct_file=dict(type="str", default="/var/log/pmta/acct.csv"),
            thresholds=dict(type="dict", default={}),
            fail_on=dict(type="str", default="never", choices=list(_FAIL_LEVELS)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    options = {
        "services": params["services"],
        "systemctl": module.get_bin_path("systemctl"),
        "status_url": params["status_url"] or None,
        "timeout": params["timeout"],
        "api_key": params["api_key"],
        "insecure": not params["validate_certs"],
        "pmta_binary": params["pmta_binary"] or None,
        "check_backoff": params["check_backoff"],
        "check_license": params["check_license"],
        "license_file": params["license_file"] if params["check_license"] else None,
        "spool_dirs": params["spool_dirs"],
        "acct_file": params["acct_file"] or None,
        "thresholds": params["thresholds"],
    }
    try:
        results, status = run_checks(options, today=datetime.date.today(), fetch=fetch_with_open_url)
    except HealthError as exc:
        module.fail_json(msg="pmta_health: %s (see the thresholds option)" % exc)
    code, line = summarize(results)
    result = {
        "changed": False,
        "state": STATE_NAMES[code],
        "exit_code": code,
        "summary": line,
        "checks": [r.as_dict() for r in results],
        "status": status,
    }
    if STATE_NAMES[code] in _FAIL_LEVELS[params["fail_on"]]:
        module.fail_json(msg="PowerMTA health is %s: %s" % (STATE_NAMES[code], line), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
