#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: warmup_plan
short_description: Plan one adaptive IP warm-up step per source IP and ISP group
version_added: 0.1.0
description:
  - Pure computation, nothing on the target changes. Takes the previous warm-up state, what was observed
    since the last step (from M(mailops.powermta.pmta_acct_stats)), the DNSBL listings
    (from M(mailops.powermta.warmup_dnsbl_check)) and the time, and returns the new state and one decision per
    IP and ISP group.
  - "Actions: V(advance) one stage when enough of the stage was delivered, all rates are under their
    thresholds and the stage lasted long enough; V(hold) when too little was sent or a rate is borderline;
    V(rollback) one or more stages on throttling, bounce or complaint spikes, or after an idle period (re-warm);
    V(pause) (daily limit 0) while the IP is blocklisted; V(done) when the last stage was held cleanly."
  - The same inputs always give the same plan. The rules, defaults and their sources are in docs/warmup.md.
author:
  - mailops.powermta contributors (@mailops)
options:
  state:
    description:
      - The RV(state) a previous run returned, V({}) for the first step.
      - The warmup role keeps it as the local fact C(/etc/ansible/facts.d/pmta_warmup.fact).
    type: dict
    default: {}
  observations:
    description:
      - "Counters since the last step: C({ip: {isp: {sent, delivered, bounced, deferred, complaints, throttled}}})."
      - C(sent) counts messages with a final outcome (delivered + bounced); when left out it is computed.
      - C(deferred) counts transient failures, C(throttled) those matching the ISP's throttling replies.
    type: dict
    default: {}
  blocklisted:
    description:
      - "Listings that pause an IP: C({ip: [zone, ...]}). An empty list means not listed."
    type: dict
    default: {}
  now:
    description:
      - The time of this step, ISO 8601 (a time without zone is UTC). Defaults to the current time.
      - Pass it explicitly to replay or test a step.
    type: str
  ips:
    description:
      - The warm-up IPs to plan. Default is every IP found in O(state), O(observations) and O(blocklisted).
      - State of IPs not listed is kept unchanged in the new state.
    type: list
    elements: str
  isps:
    description:
      - ISP group names to plan for each IP. Default is the collection's ISP groups
        (gmail, yahoo, microsoft, apple, comcast, other).
    type: list
    elements: str
  schedule:
    description:
      - "Daily volume per stage: C({isp_group: [n1, n2, ...]}), key C(default) for groups not named.
        Strictly increasing positive integers."
      - Default is the SparkPost Auto-Warmup stages, 200 to 1,000,000 per day in 20 stages.
    type: dict
    default: {}
  min_interval_hours:
    description:
      - When the previous step (C(state.updated_at)) is more recent than this, and every IP and group is
        already in the state, nothing is planned; the state and the previous decisions come back unchanged
        and RV(replayed) is true. This makes a repeated run change nothing and never counts traffic twice.
      - V(0) always plans.
    type: float
    default: 0
  thresholds:
    description:
      - Overrides of the decision thresholds; see docs/warmup.md for every key, its default and source.
      - "Keys: min_delivered_share, min_stage_hours, min_sample, bounce_rate_hold, bounce_rate_rollback,
        complaint_rate_hold, complaint_rate_rollback, deferral_rate_hold, throttle_min_events,
        throttle_rate_rollback, rollback_stages, spike_rollback_stages, pause_rollback_stages, idle_rewarm_days,
        ceiling_cooldown_days, ceiling_approach_steps."
    type: dict
    default: {}
  vmtas:
    description:
      - "The host's vMTAs (C(powermta_vmtas): C({name, ip, pool, warmup, max_smtp_msg_rate})). When given, RV(files)
        holds the PowerMTA fragment of every warming vMTA and of every warm vMTA that sponsors cold ones
        (C(cold-virtual-mta)); see docs/warmup.md."
    type: list
    elements: dict
  state_path:
    description:
      - Where the state is kept, named in the comments of RV(files).
    type: str
    default: /etc/ansible/facts.d/pmta_warmup.fact
  conf_dir:
    description:
      - The directory of the fragments on the host (the C(path) of each of RV(files)).
    type: str
    default: /etc/pmta/conf.d/warmup.d
notes:
  - Runs anywhere (usually on the controller or the PowerMTA host); needs only the Python standard library.
seealso:
  - module: mailops.powermta.pmta_acct_stats
  - module: mailops.powermta.warmup_dnsbl_check
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Plan the next warm-up step
  mailops.powermta.warmup_plan:
    state: "{{ ansible_local.pmta_warmup | default({}) }}"
    observations: "{{ acct.observations }}"
    blocklisted: "{{ dnsbl.blocklisted }}"
    ips: ["203.0.113.11"]
    schedule:
      default: [200, 500, 1000, 2000, 5000, 10000]
      yahoo: [100, 250, 500, 1000, 2500, 5000]
    thresholds:
      complaint_rate_rollback: 0.002
  register: warmup

- name: Show what changes
  ansible.builtin.debug:
    msg: "{{ warmup.decisions | rejectattr('action', 'equalto', 'hold') | list }}"
"""

RETURN = r"""
state:
  description: The new state; pass it as O(state) next time.
  returned: success
  type: dict
  sample:
    version: 1
    updated_at: "2026-05-02T06:00:00Z"
    ips:
      203.0.113.11:
        gmail:
          stage: 2
          status: warming
          stage_started_at: "2026-05-02T06:00:00Z"
          last_sent_at: "2026-05-02T06:00:00Z"
          stage_totals: {sent: 0, delivered: 0, bounced: 0, deferred: 0, complaints: 0, throttled: 0}
          history: [{at: "2026-05-02T06:00:00Z", action: advance, stage: 2}]
decisions:
  description: One decision per IP and ISP group, IPs in address order, groups in O(isps) order.
  returned: success
  type: list
  elements: dict
  contains:
    ip: {description: Source IP., type: str}
    isp: {description: ISP group., type: str}
    action: {description: "advance, hold, rollback, pause or done.", type: str}
    stage: {description: Stage after this step (1-based)., type: int}
    stages: {description: Number of stages in this group's schedule., type: int}
    previous_stage: {description: Stage before this step., type: int}
    daily_limit: {description: Messages per day for this IP at this ISP group; 0 while paused., type: int}
    reason: {description: "Why, in words, with the numbers that decided.", type: str}
    observed: {description: The counters this step used., type: dict}
  sample:
    - {ip: 203.0.113.11, isp: gmail, action: advance, stage: 2, stages: 20, previous_stage: 1, daily_limit: 500,
       reason: "stage 1 delivered cleanly (195 delivered, bounce 1.01%, complaints 0.00%)"}
decisions_by_ip:
  description: The decisions grouped by IP, keyed by the IP text exactly as given in O(ips).
  returned: when O(ips) is given
  type: dict
files:
  description:
    - "One PowerMTA fragment per vMTA to write to C(/etc/pmta/conf.d/warmup.d/<vmta>.conf):
      C(kind=warming) (caps, or a reroute while paused) or C(kind=sponsor) (a warm vMTA's
      C(cold-virtual-mta) lines and C(max-cold-virtual-mta-msg) per ISP group)."
    - "C(mode) is V(cold) (PowerMTA's cold vMTA, the pool has a warm IP) or V(capped) (rate limits)."
    - "C(paused) is true while the vMTA's IP is paused at every ISP group; C(reroute_to) (warming files) names
      the vMTA its mail then goes to, V(null) when there is none (the warm-up step pauses its queues)."
    - "C(path) is the file's path without the leading C(/); C(install) the C({path, secret, restart}) entry the
      powermta role's apply tasks take."
  returned: when O(vmtas) is given
  type: list
  elements: dict
queues_to_pause:
  description:
    - "The queues to pause before the new rates are loaded (C(*/<vmta>), for M(mailops.powermta.pmta_queue)): each
      vMTA of RV(files) that is paused with no vMTA to reroute its mail to (C(reroute_to=null))."
  returned: when O(vmtas) is given
  type: list
  elements: str
  sample: ["*/ip-03"]
queues_to_resume:
  description:
    - "The queues to resume (C(*/<vmta>)): each warming vMTA not paused by this plan whose IP O(state) had paused
      at every ISP group, so a previous step paused its queues."
  returned: when O(vmtas) is given
  type: list
  elements: str
  sample: ["*/ip-03"]
plan_lines:
  description:
    - "One line per warming vMTA of O(vmtas) and ISP group of its IP, for the run's output:
      C(<vmta> <ip> <isp>: stage <n>/<stages>, <limit>/d, <action>: <reason>)."
  returned: when O(vmtas) and O(ips) are given
  type: list
  elements: str
  sample: ["ip-03 203.0.113.13 gmail: stage 2/20, 500/d, advance: stage 1 delivered cleanly"]
replayed:
  description:
    - True when the previous step was more recent than O(min_interval_hours) and nothing was planned (the previous
      decisions come back). Not named C(skipped), which Ansible would read as "the task was skipped".
  returned: success
  type: bool
summary:
  description: Number of decisions per action.
  returned: success
  type: dict
  sample: {advance: 3, hold: 2, rollback: 1, pause: 0, done: 0}
"""

import datetime  # noqa: E402 - Ansible modules import after their documentation

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.engine import (  # noqa: E402
    ACTIONS,
    WarmupInputError,
    format_time,
    normalize_ip,
    plan,
)
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.queues import (  # noqa: E402
    queues_to_pause,
    queues_to_resume,
)
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.render import (  # noqa: E402
    WarmupRenderError,
    render,
)
from ansible_collections.mailops.powermta.plugins.module_utils._warmup.report import (  # noqa: E402
    plan_lines,
    warming_vmtas,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="dict", default={}),
            observations=dict(type="dict", default={}),
            blocklisted=dict(type="dict", default={}),
            now=dict(type="str"),
            ips=dict(type="list", elements="str"),
            isps=dict(type="list", elements="str"),
            schedule=dict(type="dict", default={}),
            thresholds=dict(type="dict", default={}),
            min_interval_hours=dict(type="float", default=0),
            vmtas=dict(type="list", elements="dict"),
            state_path=dict(type="str", default="/etc/ansible/facts.d/pmta_warmup.fact"),
            conf_dir=dict(type="str", default="/etc/pmta/conf.d/warmup.d"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    now = params["now"] or format_time(datetime.datetime.now(datetime.timezone.utc))  # noqa: UP017
    try:
        result = plan(
            state=params["state"],
            observations=params["observations"],
            blocklisted=params["blocklisted"],
            now=now,
            schedule=params["schedule"],
            thresholds=params["thresholds"],
            ips=params["ips"],
            isps=params["isps"],
            min_interval_hours=params["min_interval_hours"],
        )
        if params["vmtas"] is not None:
            isps = params["isps"] or list(dict.fromkeys(d["isp"] for d in result["decisions"]))
            extra_files = render(params["vmtas"], result["decisions"], isps, result["state"]["updated_at"],
                                 params["state_path"], params["conf_dir"])
    except (WarmupInputError, WarmupRenderError) as exc:
        module.fail_json(msg=str(exc))
    summary = dict.fromkeys(ACTIONS, 0)
    for decision in result["decisions"]:
        summary[decision["action"]] += 1
    extra = {}
    if params["vmtas"] is not None:
        extra["files"] = extra_files
        extra["queues_to_pause"] = queues_to_pause(extra_files)
        extra["queues_to_resume"] = queues_to_resume(extra_files, params["vmtas"], params["state"])
    if params["ips"] is not None:
        extra["decisions_by_ip"] = {
            given: [d for d in result["decisions"] if d["ip"] == normalize_ip(given, "ips")] for given in params["ips"]
        }
        if params["vmtas"] is not None:
            extra["plan_lines"] = plan_lines(warming_vmtas(params["vmtas"]), extra["decisions_by_ip"])
    module.exit_json(changed=False, state=result["state"], decisions=result["decisions"], summary=summary,
                     replayed=result["replayed"], **extra)


if __name__ == "__main__":
    main()
