# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lookup: the source text of this collection's plain-Python module_utils files (to install them on a host)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: module_utils_source
author:
  - mailops.powermta contributors (@mailops)
version_added: 0.1.0
short_description: The source text of a plain-Python module_utils file of this collection
description:
  - Returns the text of C(plugins/module_utils/NAME) of the installed mailops.powermta collection, read through
    Ansible's collection loader (wherever the collection is installed), so a role can install the collection's
    standard-library code on a host (the monitoring role's health and metrics commands) without a path outside
    the role.
  - Only files of this collection's module_utils are served; a name with C(..) or an absolute path is refused.
options:
  _terms:
    description: File names relative to C(plugins/module_utils), e.g. C(_monitoring/health.py).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Install the health code
  ansible.builtin.copy:
    content: "{{ lookup('mailops.powermta.module_utils_source', '_monitoring/health.py') }}"
    dest: /usr/local/lib/mailops-powermta/_monitoring/health.py
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: The text of each file, in the order of the terms.
  type: list
  elements: str
"""

import importlib  # noqa: E402 - plugins import after their documentation
import os  # noqa: E402
import pkgutil  # noqa: E402
import re  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

PACKAGE = "ansible_collections.mailops.powermta.plugins.module_utils"
NAME_RE = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*\.py$")


def read_source(name):
    """Bytes of ``plugins/module_utils/NAME`` via the import system, or None when the collection lacks it."""
    data = pkgutil.get_data(PACKAGE, name)  # Ansible's collection loader serves package data
    if data is not None:
        return data
    # A plain namespace package (no loader with get_data, e.g. under pytest): its __path__ entries.
    for root in getattr(importlib.import_module(PACKAGE), "__path__", []):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                return handle.read()
    return None


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        texts = []
        for name in terms:
            if not NAME_RE.match(str(name)):
                raise AnsibleLookupError("module_utils_source: %r is not a file name under plugins/module_utils "
                                         "(e.g. _health.py)" % (name,))
            try:
                data = read_source(str(name))
            except (OSError, ImportError) as exc:
                data = None
                reason = str(exc)
            else:
                reason = "not found"
            if data is None:
                raise AnsibleLookupError("module_utils_source: plugins/module_utils/%s of mailops.powermta cannot be "
                                         "read (%s): install the whole collection" % (name, reason))
            texts.append(data.decode("utf-8"))
        return texts
