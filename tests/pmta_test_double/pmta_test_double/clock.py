# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the daemon's clock, with a test hook to run it fast.

``/etc/pmta/TEST-DOUBLE-clock`` (JSON, read at start and on ``pmta reload``):
``{"start": "2026-11-29T23:59:00+00:00", "speed": 60}`` makes the test time
begin at ``start`` (default: now) and run ``speed`` times faster than the wall
clock. Rates, retry-after, bounce-after, the per-day counters that reset at
midnight (cold vMTAs, N/d rates) and accounting timestamps all follow it.
PowerMTA has nothing like it.
"""

from __future__ import annotations

import datetime
import json
import threading
import time


class Clock:
    def __init__(self):
        self._lock = threading.Lock()
        self._anchor_real = time.monotonic()
        self._anchor_virtual = time.time()
        self.speed = 1.0
        self.hooked = False
        self._hook_text = None

    def now(self):
        with self._lock:
            return self._anchor_virtual + (time.monotonic() - self._anchor_real) * self.speed

    def real_seconds(self, virtual_seconds):
        """How long to sleep (wall clock) for ``virtual_seconds`` of test time."""
        return max(0.0, virtual_seconds / self.speed)

    def day(self, epoch=None):
        """The UTC calendar day (midnight resets, §10.7) as an ordinal."""
        epoch = self.now() if epoch is None else epoch
        return datetime.datetime.fromtimestamp(epoch, datetime.UTC).date().toordinal()

    def load_hook(self, path):
        """Apply the TEST-DOUBLE-clock hook; a missing file keeps the real clock running on."""
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            if self.hooked:
                self.set(time.time(), 1.0)
                self.hooked = False
                self._hook_text = None
            return
        if text == self._hook_text:
            return  # unchanged: a reload must not turn the test clock back
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError("cannot read %s: %s" % (path, exc)) from exc
        start = data.get("start")
        speed = float(data.get("speed", 1))
        if speed <= 0:
            raise ValueError("%s: speed must be > 0" % path)
        epoch = self.now() if start is None else datetime.datetime.fromisoformat(start).timestamp()
        self.set(epoch, speed)
        self.hooked = True
        self._hook_text = text

    def set(self, epoch, speed):
        with self._lock:
            self._anchor_real = time.monotonic()
            self._anchor_virtual = epoch
            self.speed = speed


CLOCK = Clock()
