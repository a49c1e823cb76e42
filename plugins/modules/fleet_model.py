#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_model
short_description: Merge, normalize and check the fleet model of every PowerMTA host at once
version_added: 0.2.0
description:
  - An action plugin that runs on the controller only and never contacts a host. Run it once per play
    (C(run_once=true)); C(playbooks/preflight.yml) does, and the C(powermta) role does when the model is missing.
  - Reads, from C(hostvars), only the variables the model needs of every host of O(group) (the layered lists
    C(powermta_[default_|group_|host_]{listeners,sources,injectors,domains,pools,vmtas,isp_policies,acct_files}),
    the global settings and the C(host_tuning_*sysctl) layers), merges each list by name (defaults, all, group,
    host; C(state=absent) removes), normalizes types and names (booleans, integers, domain names lower-case
    without the trailing dot) and checks every item, its keys and types, and the fleet as a whole (an IP on one
    vMTA only, pools and selectors that exist, DKIM key sharing).
  - Fails with every problem at once, each naming the host, the variable and the fix. On success the result
    (censored in the output, as it holds injector passwords) is the model; register it as C(mailops_fleet).
author:
  - mailops.powermta contributors (@mailops)
options:
  group:
    description: Inventory group of the fleet, usually C(mailops_fleet_group).
    type: str
    default: pmta_fleet
  hosts:
    description: Hosts to model. Default the hosts of O(group) plus the hosts of the play.
    type: list
    elements: str
  include_secrets:
    description: Read injector passwords into the model. V(false) never templates them (vault stays closed).
    type: bool
    default: true
  fail_on_problems:
    description: Fail when there are problems; V(false) returns them in RV(problems).
    type: bool
    default: true
  scope:
    description:
      - V(fleet) builds the model. V(host) checks, for the host the task runs on and after its facts were
        gathered, what the fleet scope cannot know on the controller - O(vmtas) IPs configured on the host
        (O(addresses)), and C(powermta_hostname), C(powermta_postmaster), C(powermta_spool_dirs) templated from facts.
    type: str
    choices: [fleet, host]
    default: fleet
  vmtas:
    description: With O(scope=host), the host's vMTAs from the model.
    type: list
    elements: dict
    default: []
  addresses:
    description: With O(scope=host), the host's addresses (C(ansible_facts.all_ipv4_addresses) and IPv6).
    type: list
    elements: str
    default: []
  listeners:
    description:
      - With O(scope=host), the host's merged listeners (the model's C(listeners)), checked against this task's
        own C(powermta_http_mgmt_port) (extra vars and play vars included) as the fleet check does.
    type: list
    elements: dict
    default: []
  render:
    description:
      - With O(scope=fleet) and a consistent model, render every host's complete PowerMTA config on the controller
        as the C(mailops.powermta.powermta) role does (its templates, defaults and vars over the host's inventory
        and the model) and lint it with the role's linter (the host's C(powermta_lint_*) settings).
      - Each finding is one problem naming the host, the inventory variable and item that rendered the line, and
        the fix. Nothing is written outside a private
        temporary directory, which is removed.
    type: bool
    default: false
  controller_files:
    description:
      - Check that C(powermta_package_src) and C(powermta_license_src) are files on the controller, as the
        C(mailops.powermta.powermta) role asserts before installing. A run that installs nothing (rendering only)
        may leave it out.
    type: bool
    default: true
extends_documentation_fragment:
  - mailops.powermta.attributes.READ_ONLY
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
notes:
  - The model is computed from inventory variables only; checks that need the host's facts (an IP configured on
    an interface) stay in the C(powermta) role's preflight.
"""

EXAMPLES = r"""
- name: Build and check the fleet model once
  mailops.powermta.fleet_model:
    group: "{{ mailops_fleet_group | default('pmta_fleet') }}"
  register: mailops_fleet
  run_once: true
  delegate_to: localhost

- name: The vMTAs of this host
  ansible.builtin.debug:
    msg: "{{ mailops_fleet.hosts[inventory_hostname].vmtas | map(attribute='name') }}"
"""

RETURN = r"""
hosts:
  description:
    - Per host the merged, normalized lists C(vmtas), C(pools), C(domains), C(injectors), C(isp_policies),
      C(listeners), C(sources), C(acct_files), plus C(dkim_keys) (C({domain, selector, bits, path})) and
      C(warmup_files) (the files the warmup role owns).
  returned: success
  type: dict
vmtas:
  description: Every vMTA of the fleet, with C(inventory_host).
  returned: success
  type: list
  elements: dict
ips:
  description:
    - Every sending IP, C({ip, vmta, host, hostname, pool, warmup, retiring, retiring_from_pool, reroute_to}).
    - A retiring vMTA (C(retire) true, playbooks/retire_ip.yml) has no C(pool); C(retiring_from_pool) is the pool it
      left and C(reroute_to) the peer its mail is rerouted to (none without one on its host).
  returned: success
  type: list
  elements: dict
domains:
  description:
    - Every sending domain of the fleet (normalized names; the settings of the first host that has it), with
      the C(hosts) that sign for it.
    - C(fleet_dkim_selectors) - every host's C(dkim_selectors) of the domain, united in first-seen order (what
      DNS publishes).
    - "C(differs) - C({setting: {host: value}}) for the settings the hosts give different values for
      (C(dkim_selectors) aside); empty when they agree. The dns role refuses a domain with such settings, as
      DNS holds one record per domain."
  returned: success
  type: list
  elements: dict
problems:
  description: Every problem found, each naming host, variable and fix.
  returned: always
  type: list
  elements: str
group:
  description: The fleet group.
  returned: success
  type: str
"""
