# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper: write each task's wall time (start to result on the controller) as JSON lines.

Enabled only by the benchmarks (ANSIBLE_CALLBACKS_ENABLED=bench_task_times), which set
BENCH_TASK_TIMES to the output file.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_task_times
type: aggregate
short_description: Task wall times for the benchmarks
description:
  - "Appends one JSON line (task name, seconds from task start to its result) for every task result to the
    file named by the environment variable E(BENCH_TASK_TIMES)."
"""

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from ansible.plugins.callback import CallbackBase  # noqa: E402


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = {}
        self._path = os.environ.get("BENCH_TASK_TIMES")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started[task._uuid] = time.perf_counter()

    def _record(self, result):
        started = self._started.get(result._task._uuid)
        if started is None or not self._path:
            return
        with open(self._path, "a", encoding="utf-8") as output:
            output.write(json.dumps({"task": result._task.get_name(),
                                     "seconds": time.perf_counter() - started}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result)
