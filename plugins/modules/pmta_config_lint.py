#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmta_config_lint
short_description: Check a PowerMTA configuration before it is installed
version_added: 0.1.0
description:
  - Parses a PowerMTA config (blocks, C(#) comments, C(include) with wildcards) and checks it against the
    directive schema of the PowerMTA v5.0 User's Guide, without PowerMTA or a licence.
  - Reports unknown directives (with a suggestion), directives in the wrong block, bad values, duplicate
    non-repeatable directives, unbalanced or unknown blocks.
  - Cross-checks names, e.g. every vMTA named in a pool, C(default-virtual-mta), C(cold-virtual-mta) or
    C(backoff-reroute-to-virtual-mta) exists, C(smtp-pattern-list) and C(pattern-list) names exist, a vMTA
    is not in two pools that both hold C(<domain>) blocks, C(domain-key) fields are in order.
  - Security checks, e.g. C(always-allow-relaying yes) on C(0/0) or another wide range and C(http-access 0/0 admin)
    are errors; C(run-as-root) unset or yes is a warning.
  - Checks the rules the guide states across directives ("must", "requires", "ignored unless"), e.g. a wildcard
    C(<mx-rollup-list>) entry needs C(rollup-by-ip) or C(smtp-hosts) (§10.17), C(records) only once per
    C(<acct-file>), reply actions only those §3.3.15 lists, C(require-auth) needs C(allow-starttls); each
    finding cites its § of the guide.
  - Deprecated directives are warnings naming the replacement; see C(docs/config-lint.md) for every check.
  - Pure Python, runs wherever the module runs (the controller with C(delegate_to=localhost), or the host).
author:
  - mailops.powermta contributors (@mailops)
options:
  path:
    description:
      - The main config file to check, e.g. C(/etc/pmta/config).
      - Its C(include) lines are followed; relative include paths resolve against its directory.
      - Mutually exclusive with O(content).
    type: path
  content:
    description:
      - Config text to check, e.g. a rendered template (C(lookup('template', ...))).
      - Mutually exclusive with O(path). It may hold passwords, so it is not logged.
    type: str
  filename:
    description:
      - The file name O(content) is reported under, and relative includes in O(content) resolve against.
    type: str
    default: /etc/pmta/config
  include_root:
    description:
      - Where included files are looked up. With O(content) and no O(include_root), includes are not followed
        (then names defined only in included files give warnings instead of errors).
      - V(/) reads the real file system. Another directory is used like a chroot
        (C(include /etc/pmta/conf.d/*.conf) reads C(<include_root>/etc/pmta/conf.d/*.conf)), for a staging tree.
      - With O(path), the default is V(/).
    type: path
  fragment:
    description:
      - Check a file meant to be included rather than a whole config, so whole-config checks
        (C(run-as-root), C(http-mgmt-port) without C(http-access)) are skipped and undefined names only warn.
    type: bool
    default: false
  scope:
    description:
      - Lint the file as if it sat inside this block, for a fragment included inside a block, e.g.
        V(virtual-mta) for C(/etc/pmta/conf.d/warmup.d/NAME.conf) included in C(<virtual-mta NAME>).
      - V(global) (the default) is the top level. Any other value implies O(fragment=true).
    type: str
    default: global
  fail_on:
    description:
      - V(error) fails when there is at least one error; V(warning) also fails on warnings.
    type: str
    choices: [error, warning]
    default: error
  extra_directives:
    description:
      - Directives your PowerMTA build accepts that the v5.0 User's Guide does not list (for example the
        C(dummy-smtp-*) family of a sink build, or a directive of a newer release), with the blocks they may
        appear in. A declared directive takes any value and may repeat.
      - A name the schema already knows gains the listed scopes.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The directive name, e.g. C(dummy-smtp-blackhole).
        type: str
        required: true
      scopes:
        description:
          - Where it may appear; V(global) is the top level, any other value is a block tag such as
            V(domain), V(virtual-mta), V(virtual-mta-pool), V(source), V(acct-file), V(smtp-listener).
        type: list
        elements: str
        default: [global]
  unknown_directives:
    description:
      - How to report a directive that is neither in the schema nor in O(extra_directives).
      - V(error) (the default) matches PowerMTA, which refuses to load it; V(warning) reports it with the
        closest real name and lets the run go on (unless O(fail_on=warning)).
    type: str
    choices: [error, warning]
    default: error
notes:
  - The schema covers the v5.0 User's Guide directive index (§3.3, §10, §14). Names seen in working configs
    but missing from it (C(dk-sign), C(sync-msg-create), ...) are warnings, not errors.
  - It does not replace C(pmta test config) on a licensed host; it catches mistakes before the file gets there.
seealso:
  - name: PowerMTA config linter
    description: docs/config-lint.md in the collection lists every check and its code.
    link: https://github.com/mailops/powermta/blob/main/docs/config-lint.md
extends_documentation_fragment:
  - mailops.powermta.attributes.read_only
"""

EXAMPLES = r"""
- name: Check the rendered config on the controller before copying it
  mailops.powermta.pmta_config_lint:
    content: "{{ lookup('ansible.builtin.template', 'etc/pmta/config.j2') }}"
  delegate_to: localhost

- name: Check the installed config and its conf.d includes, warnings fail too
  mailops.powermta.pmta_config_lint:
    path: /etc/pmta/config
    fail_on: warning

- name: Check a config rendered into a staging tree (includes read below /tmp/stage)
  mailops.powermta.pmta_config_lint:
    path: /tmp/stage/etc/pmta/config
    include_root: /tmp/stage

- name: Accept the sink directives a test build of PowerMTA knows, in the global scope
  mailops.powermta.pmta_config_lint:
    path: /etc/pmta/config
    extra_directives:
      - name: dummy-smtp-blackhole
        scopes: [global]
    unknown_directives: warning

- name: Check an include fragment on its own, as it sits inside <virtual-mta vmta1>
  mailops.powermta.pmta_config_lint:
    path: /etc/pmta/conf.d/warmup.d/vmta1.conf
    scope: virtual-mta
"""

RETURN = r"""
errors:
  description: Errors, in file and line order.
  returned: always
  type: list
  elements: dict
  contains:
    file:
      description: File the finding is in (an included file where relevant).
      type: str
      sample: /etc/pmta/config
    line:
      description: Line number (1-based).
      type: int
      sample: 44
    message:
      description: What is wrong.
      type: str
      sample: unknown directive throttle
    hint:
      description: How to fix it.
      type: str
      sample: throttle does not exist in PowerMTA; use max-msg-rate or max-connect-rate in <domain>
    code:
      description: Stable identifier of the check, see docs/config-lint.md.
      type: str
      sample: unknown-directive
  sample:
    - file: /etc/pmta/config
      line: 44
      message: unknown directive throttle
      hint: "throttle does not exist in PowerMTA; use max-msg-rate or max-connect-rate in <domain>"
      code: unknown-directive
lint_warnings:
  description:
    - Warnings, same shape as RV(errors). (C(warnings) is Ansible's own result key, so the structured list
      is returned under this name; each warning is also shown as an Ansible warning, so C(warnings)
      holds them as text.)
  returned: always
  type: list
  elements: dict
  sample:
    - file: /etc/pmta/config
      line: 12
      message: max-msg-per-hour is deprecated (§3.3.10.35)
      hint: use max-msg-rate (e.g. 500/h) instead
      code: deprecated
ok:
  description: True when there are no errors.
  returned: always
  type: bool
  sample: true
files:
  description: Files read, the main one first, then the included ones.
  returned: always
  type: list
  elements: str
  sample: [/etc/pmta/config, /etc/pmta/conf.d/vmtas.conf]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.task import (  # noqa: E402
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    run_lint,
)


def main():
    # The action plugin of the same name runs run_lint() in the controller's process when the task runs
    # there (the role lints its staging tree on the controller); this module serves every other case.
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
                           required_one_of=REQUIRED_ONE_OF, supports_check_mode=True)
    out, warnings = run_lint(module.params)
    for warning in warnings:
        module.warn(warning)
    if out.get("failed"):
        out.pop("failed")
        module.fail_json(**out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
