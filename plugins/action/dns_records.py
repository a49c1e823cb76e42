# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action mailops.powermta.dns_records: publish DNS RRsets (docs in plugins/modules/dns_records.py).

The task talks to a DNS server from the controller (``delegate_to: localhost``). When its connection is
local, it runs in the controller's process (the same code as the module, ``_dns/task.py``): no module
payload to build and no second Python process to start, which cost more than the DNS work itself. Over any
other connection (a bastion that can reach the server) the module runs there, as any module does.
"""

from __future__ import annotations

import json
import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.mailops.powermta.plugins.module_utils._dns import task
from ansible_collections.mailops.powermta.plugins.module_utils._dns import values as dns_values
from ansible_collections.mailops.powermta.plugins.plugin_utils._plain import plain as _plain


def _censored(outcome, no_log_values):
    """``outcome`` with every no_log value (key_secret) masked, as a module's output is.

    ``remove_values`` copies the whole result (hundreds of changes), which cost more than the DNS reads: it
    runs only when a no_log value occurs in the result's text at all.
    """
    text = json.dumps(outcome, ensure_ascii=False, default=str)
    for value in no_log_values:
        value = str(value)
        if value and (value in text or json.dumps(value, ensure_ascii=False)[1:-1] in text):
            return remove_values(outcome, no_log_values)
    return outcome


_BARE_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    @classmethod
    def finalize_task_arg(cls, name, value, templar, context):
        """``records: "{{ var }}"`` (how the dns role passes a whole fleet's RRsets): the variable's value,
        templating only the leaves that hold a template. Templating the list as one value cost ansible-core
        2.19 about 0.25 ms per record (1.6 s for a 50 x 64 fleet), more than reading and planning them."""
        if name == "records" and isinstance(value, str):
            match = _BARE_VARIABLE.fullmatch(value.strip())
            variables = templar.available_variables
            if match and match.group(1) in variables:
                return _plain(variables[match.group(1)], (), templar)
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if getattr(self._connection, "transport", None) != "local" or not dns_values.HAS_DNSPYTHON:
            result.update(self._execute_module(module_name="mailops.powermta.dns_records", task_vars=task_vars))
            return result
        validator = ArgumentSpecValidator(task.ARGUMENT_SPEC, required_together=task.REQUIRED_TOGETHER)
        validation = validator.validate(_plain(self._task.args))
        if validation.error_messages:
            raise AnsibleActionFail("dns_records: %s" % "; ".join(validation.error_messages))
        outcome, warnings = task.run(validation.validated_parameters, check_mode=bool(self._task.check_mode),
                                     diff=bool(self._task.diff))
        if warnings:
            outcome["warnings"] = warnings
        # As a module's output is: no value of a no_log argument (key_secret) in any message.
        result.update(_censored(outcome, validation._no_log_values))
        return result
