# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of pmta_host_state: checksum the package on the controller, then call the module once.

With the checksum the module can tell whether the cached .deb on the host is the controller's, so the
role copies it only when it is not (ansible.builtin.copy spends two calls on the host to find that out).
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_host.state import sha256_file


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        module_args = dict(self._task.args)
        source = module_args.pop("deb_src", None)
        if source:
            try:
                module_args["deb_checksum"] = sha256_file(source)
            except OSError as exc:
                raise AnsibleActionFail(f"deb_src: cannot read {source} on the controller: {exc}") from exc
        result.update(self._execute_module(module_name="mailops.powermta.pmta_host_state", module_args=module_args,
                                           task_vars=task_vars))
        return result
