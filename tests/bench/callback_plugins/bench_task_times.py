# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark helper: write each task's wall time on the controller as JSON lines.

A task's time runs from the previous task's result (or the start of the play) to its own result, so it
holds everything the controller does for the task, also before the task-start callback (the linear strategy
loads the task's action plugin, and so imports what it imports, before announcing the task). Plays run on
one host.

Enabled only by the benchmarks (ANSIBLE_CALLBACKS_ENABLED=bench_task_times), which set
BENCH_TASK_TIMES to the output file.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: bench_task_times
type: aggregate
short_description: Task wall times for the benchmarks
description:
  - "Appends one JSON line (task name, seconds from the previous result to this one) for every task result
    to the file named by the environment variable E(BENCH_TASK_TIMES)."
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
        self._last = None
        self._path = os.environ.get("BENCH_TASK_TIMES")

    def v2_playbook_on_play_start(self, play):
        self._last = time.perf_counter()

    def _record(self, result):
        now = time.perf_counter()
        if self._last is not None and self._path:
            with open(self._path, "a", encoding="utf-8") as output:
                output.write(json.dumps({"task": result._task.get_name(), "seconds": now - self._last}) + "\n")
        self._last = now

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result)
