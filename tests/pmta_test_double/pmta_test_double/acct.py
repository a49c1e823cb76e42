# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: accounting CSV writer.

Field names and order are PowerMTA's (User's Guide v5.0 §11.2.2-§11.2.8):
RFC 4180 (§11.2.9), header row first, ``type`` first; a file holding several
record types gets the union of their columns. Times follow the test clock
(clock.py).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time

from .clock import CLOCK

FIELDS = {
    "d": [
        "type", "timeLogged", "timeQueued", "orig", "rcpt", "orcpt", "dsnAction", "dsnStatus", "dsnDiag",
        "dsnMta", "bounceCat", "srcType", "srcMta", "dlvType", "dlvSourceIp", "dlvDestinationIp",
        "dlvEsmtpAvailable", "dlvSize", "vmta", "jobId", "envId", "queue", "vmtaPool",
    ],
    "r": [
        "type", "timeLogged", "orig", "rcpt", "orcpt", "srcType", "srcMta", "rcvSourceIp", "rcvDestinationIp",
        "vmta", "vmtaPool", "jobId", "envId",
    ],
}
FIELDS["b"] = FIELDS["d"]
FIELDS["t"] = FIELDS["d"]
# §11.2.5 (the guide's table order; readers parse by header).
FIELDS["tq"] = ["type", "timeLogged", "queue", "vmta", "dsnStatus", "dsnDiag", "dsnMta", "dlvType", "dlvSourceIp",
                "dlvDestinationIp"]
# §11.2.7
FIELDS["rb"] = ["type", "timeLogged", "orig", "rcpt", "orcpt", "dsnAction", "dsnStatus", "dsnDiag", "dsnMta",
                "dsnReportingMta", "bounceCat", "srcType", "srcMta", "envId", "format"]
FIELDS["rs"] = FIELDS["rb"]
# §11.2.8
FIELDS["f"] = ["type", "timeLogged", "repSourceIp", "feedbackType", "format", "userAgent", "envid", "orig", "rcpt",
               "reportingMTA", "dlvSourceIp", "reportedDomain"]
ORDER = ("d", "b", "t", "tq", "r", "rb", "rs", "f")

_LOCK = threading.Lock()


def iso_time(epoch=None):
    """PowerMTA's default ``iso-times`` form: ``2019-02-08 21:54:05+0000`` (test clock by default)."""
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(CLOCK.now() if epoch is None else epoch))


def header_for(records):
    """The union of the columns of the record types a file holds, ``type`` first."""
    columns = []
    for record in ORDER:
        if record in records:
            for field in FIELDS[record]:
                if field not in columns:
                    columns.append(field)
    return columns


def wants(acct_files, record_type):
    return any(record_type in records for _path, records in acct_files)


def write(acct_files, record_type, rows):
    """Append ``rows`` (dicts) of ``record_type`` to every file that takes it."""
    if not rows:
        return
    with _LOCK:
        for path, records in acct_files:
            if record_type not in records or path.startswith("|"):
                continue  # pipes are not run by the double
            columns = header_for(records)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            new = not os.path.exists(path) or os.path.getsize(path) == 0
            if new:
                writer.writerow(columns)
            for row in rows:
                values = dict(row, type=record_type)
                writer.writerow([values.get(column, "") for column in columns])
            with open(path, "a", encoding="utf-8", newline="") as handle:
                handle.write(buffer.getvalue())
            if CLOCK.hooked:
                # The file was last written at the test clock's time, as its records say: readers that skip files
                # not modified since a time (the warm-up step's accounting) see what PowerMTA's files would show.
                now = CLOCK.now()
                os.utime(path, (now, now))
