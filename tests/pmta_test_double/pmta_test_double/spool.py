# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the message spool on disk.

§3.3.1.4: the spool is "where PowerMTA stores the message files while queued for delivery"; the status page's
"Spool Initialization" (§7) is "reading the message files in the spool and loading queue information into
memory" at startup: queued mail survives a restart. So each accepted message is one file in a ``<spool DIR>``
(written before the 250 reply; removed when its last recipient is delivered, bounced or deleted), and the
daemon loads the files again when it starts. The file format is the double's own (JSON), not PowerMTA's.

§3.3.2.4 ``min-free-space`` (and the deprecated global ``spool-min-free-space N``, in MB, §3.3.1.6): "stop
accepting email into the spool if the space available on the file system falls below the amount specified",
"based on the space available to non-root users" (statvfs f_bavail); accepted again once space is back.
With several spools, §3.3.2.3: higher ``priority`` first, others when it is full. With no spool directory
accepting, the SMTP service refuses new mail with a transient ``452 4.3.1`` (RFC 5321 §4.2.2 "insufficient
system storage", RFC 3463 X.3.1 "mail system full"; the guide documents no reply text). Without any
``<spool>`` in the config the double keeps mail in memory only (and says so in its log).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import threading
import time

FULL_REPLY = (452, "4.3.1 insufficient system storage: spool below min-free-space, try again later")
_SIZES = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def size(text):
    """``N{b|k|m|g|t} | 0`` (§3.3.2.4) in bytes."""
    text = text.strip().lower()
    if text == "0":
        return 0
    if len(text) < 2 or text[-1] not in _SIZES or not text[:-1].isdigit():
        raise ValueError("invalid size %r" % text)
    return int(text[:-1]) * _SIZES[text[-1]]


class SpoolDir:
    def __init__(self, path, min_free=0, priority=1, deliver_only=False):
        self.path = path
        self.min_free = min_free
        self.priority = priority
        self.deliver_only = deliver_only

    def free_bytes(self):
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def accepting(self):
        if self.deliver_only:  # §3.3.2.2
            return False
        try:
            return self.free_bytes() >= self.min_free
        except OSError:
            return False


class Spool:
    """Message files of the queued mail; thread-safe."""

    _names = itertools.count(1)

    def __init__(self, dirs, log):
        self.dirs = sorted(dirs, key=lambda d: -d.priority)
        self.log = log
        self.lock = threading.Lock()
        self.round_robin = itertools.count()
        for spool in self.dirs:
            try:
                os.makedirs(spool.path, mode=0o750, exist_ok=True)
            except OSError as exc:
                log("spool %s: %s" % (spool.path, exc))
        if not self.dirs:
            log("no <spool> directory configured: queued mail is held in memory only (TEST DOUBLE)")

    def reconfigure(self, dirs):
        """New thresholds after a reload; files already written stay where they are."""
        by_path = {d.path: d for d in dirs}
        with self.lock:
            self.dirs = sorted(by_path.values(), key=lambda d: -d.priority)

    def accepting(self):
        """The spool new mail would go to, None when every spool is below its min-free-space."""
        if not self.dirs:
            return True
        return self._choose() is not None

    def _choose(self):
        with self.lock:
            dirs = list(self.dirs)
        for priority in sorted({d.priority for d in dirs}, reverse=True):
            open_dirs = [d for d in dirs if d.priority == priority and d.accepting()]
            if open_dirs:
                return open_dirs[next(self.round_robin) % len(open_dirs)]
        return None

    def write(self, message, recipients):
        """Spool ``message`` for ``recipients`` before it is acknowledged; OSError when it cannot be written
        (full file system, every spool below min-free-space)."""
        if not self.dirs:
            return
        spool = self._choose()
        if spool is None:
            raise OSError(28, "every spool is below its min-free-space")
        message.spool_file = os.path.join(spool.path, "td-%d-%d.msg" % (time.time_ns(), next(self._names)))
        message.spool_recipients = list(recipients)
        self._store(message)

    def done(self, recipient):
        """``recipient`` left its queue for good (delivered, bounced, deleted)."""
        message = recipient.message
        path = getattr(message, "spool_file", None)
        if not path:
            return
        with self.lock:
            remaining = [r for r in message.spool_recipients if r is not recipient]
            message.spool_recipients = remaining
        try:
            if remaining:
                self._store(message)
            else:
                os.unlink(path)
        except OSError as exc:
            self.log("spool file %s: %s" % (path, exc))

    def _store(self, message):
        document = {
            "orig": message.orig, "envid": message.envid, "received": message.received,
            "src_type": message.src_type, "src_mta": message.src_mta, "job_id": message.job_id,
            "local_dsn": getattr(message, "local_dsn", True), "dsn_full": getattr(message, "dsn_full", False),
            "data": base64.b64encode(message.data).decode("ascii"),
            "recipients": [{"rcpt": r.rcpt, "orcpt": r.orcpt, "vmta": r.vmta, "pool": r.pool}
                           for r in message.spool_recipients],
        }
        temporary = message.spool_file + ".tmp"
        try:
            with open(temporary, "w", encoding="ascii") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, message.spool_file)
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def load(self, message_class, recipient_class):
        """[(message, [recipients])] from every spool's files (startup, §7 "Spool Initialization")."""
        loaded = []
        for spool in self.dirs:
            try:
                names = sorted(os.listdir(spool.path))
            except OSError as exc:
                self.log("spool %s: %s" % (spool.path, exc))
                continue
            for name in names:
                path = os.path.join(spool.path, name)
                if name.endswith(".tmp") and name.startswith("td-"):
                    os.unlink(path)  # never acknowledged: the client was not told 250
                    continue
                if not (name.startswith("td-") and name.endswith(".msg")):
                    continue
                try:
                    with open(path, encoding="ascii") as handle:
                        document = json.load(handle)
                    message = message_class(document["orig"], document["envid"],
                                            base64.b64decode(document["data"]), document["received"],
                                            document["src_type"], document["src_mta"], document["job_id"])
                except (OSError, ValueError, KeyError) as exc:
                    self.log("spool file %s unreadable, left on disk: %s" % (path, exc))
                    continue
                message.local_dsn = document.get("local_dsn", True)
                message.dsn_full = document.get("dsn_full", False)
                recipients = [recipient_class(message, r["rcpt"], r["orcpt"], r["vmta"], r["pool"])
                              for r in document["recipients"]]
                message.spool_file = path
                message.spool_recipients = list(recipients)
                loaded.append((message, recipients))
        return loaded

    def owned_paths(self):
        """The spool directories and their message files (for the daemon's drop to user pmta)."""
        paths = []
        for spool in self.dirs:
            paths.append(spool.path)
            try:
                paths += [os.path.join(spool.path, n) for n in os.listdir(spool.path) if n.startswith("td-")]
            except OSError:
                pass
        return paths

    def files(self):
        count = 0
        for spool in self.dirs:
            try:
                count += sum(1 for n in os.listdir(spool.path) if n.startswith("td-") and n.endswith(".msg"))
            except OSError:
                pass
        return count
