# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pmta_config_lint: lint in the controller's own process when the task runs there.

The powermta role lints every host's staging tree on the controller (delegate_to: localhost). Running
the module there costs a Python start and a module payload per host for work that takes milliseconds;
this action runs the same code (module_utils/_pmta_config/task.py) in process. On any other host it
runs the module as usual.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._pmta_config.task import (
    ARGUMENT_SPEC,
    MUTUALLY_EXCLUSIVE,
    REQUIRED_ONE_OF,
    run_lint,
)

LOCAL_CONNECTIONS = frozenset(("local", "ansible.builtin.local"))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        if self._connection.transport not in LOCAL_CONNECTIONS or self._task.become:
            result.update(self._execute_module(module_name="mailops.powermta.pmta_config_lint",
                                               module_args=self._task.args, task_vars=task_vars))
            return result
        validated = ArgumentSpecValidator(ARGUMENT_SPEC, mutually_exclusive=MUTUALLY_EXCLUSIVE,
                                          required_one_of=REQUIRED_ONE_OF).validate(self._task.args)
        if validated.error_messages:
            result.update(failed=True, msg="; ".join(validated.error_messages))
            return result
        out, warnings = run_lint(validated.validated_parameters)
        result.update(out)
        if warnings:
            result["warnings"] = result.get("warnings", []) + warnings
        return result
