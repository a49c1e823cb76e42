#!/usr/bin/python
# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pmta_config_render
short_description: Render many templates into a staging directory on the controller in one step
version_added: 0.1.0
description:
  - Action plugin (runs on the controller only). Renders every template of O(templates) with the task's
    variables, as M(ansible.builtin.template) would, and writes it below O(root); writes O(stand_ins)
    (literal content) the same way.
  - One task call for a host's whole config tree instead of one C(template) task per file, which is what
    makes rendering a fleet of hosts with many vMTAs fast.
  - O(root) is scratch space (the staging tree linted before anything reaches the host), so the task never
    reports C(changed); RV(written) lists the files whose bytes differed.
author:
  - mailops.powermta contributors (@mailops)
options:
  root:
    description:
      - Absolute directory on the controller; every destination is relative to it.
      - Omitted, a new private directory is made (C(mkdtemp), mode C(0700)) and returned as RV(path); it is
        removed again when rendering fails. The caller removes it when done.
    type: path
  prefix:
    description: Name prefix of the directory made when O(root) is omitted.
    type: str
    default: powermta-staging-
  templates:
    description:
      - "Templates to render. Each item is a dict C({src: TEMPLATE, dest: PATH}), or C({path: PATH}) or a plain
        string PATH for a template whose path mirrors its destination (C(PATH.j2) renders to C(PATH)).
        C({src: TEMPLATE, path: PATH}) renders TEMPLATE to PATH, so the same list can be given to
        M(mailops.powermta.pmta_config_install) (which installs staged PATH at C(/PATH))."
      - TEMPLATE is looked up like M(ansible.builtin.template)'s C(src) (the role's C(templates/));
        PATH is relative to O(root), e.g. V(etc/pmta/config).
      - The template sees its whole list item as C(item), as in a loop, so per-file data (e.g. C(item.name)) can
        ride along in extra keys.
    type: list
    elements: raw
    default: []
  stand_ins:
    description:
      - Files with literal content (e.g. stand-ins for include files owned by another role, so the includes
        of the staging tree resolve when it is linted).
      - "Each item is a dict C({dest: PATH, content: TEXT}) (PATH relative to O(root); C(path) is taken when
        C(dest) is absent, so the files M(mailops.powermta.warmup_plan) returns can be given as they are), or a
        plain string PATH, which gets a one-line comment as content."
    type: list
    elements: raw
    default: []
  mode:
    description: Mode of the written files; directories are created C(0700).
    type: str
    default: "0600"
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options run on the controller.
    support: full
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: It writes only the controller-side O(root) it is given, in check mode too, so the tree can be linted.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: Run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
notes:
  - Templates are rendered with C(trim_blocks=true), like M(ansible.builtin.template)'s default.
"""

EXAMPLES = r"""
- name: Render the whole configuration tree into a staging directory
  mailops.powermta.pmta_config_render:
    root: "{{ staging.path }}"
    templates:
      - etc/pmta/config                # renders templates/etc/pmta/config.j2
      - {src: vmtas.conf.j2, dest: etc/pmta/conf.d/vmtas.conf}
    stand_ins:
      - {dest: etc/pmta/conf.d/warmup.conf, content: "# stand-in\n"}
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The directory written (O(root), or the one made when O(root) was omitted).
  returned: success
  type: str
files:
  description: Every file rendered or written, relative to O(root).
  returned: always
  type: list
  elements: str
written:
  description: The files whose content differed from what was already below O(root).
  returned: always
  type: list
  elements: str
"""
