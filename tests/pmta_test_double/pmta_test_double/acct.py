# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: accounting CSV writer.

Field names and order are PowerMTA's (User's Guide v5.0 §11.2): RFC 4180,
header row first, ``type`` first. The double "delivers" every accepted
recipient straight into a ``d`` record; nothing leaves the host.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time

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

_LOCK = threading.Lock()


def iso_time(epoch=None):
    """PowerMTA's default ``iso-times`` form: ``2019-02-08 21:54:05+0000``."""
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(epoch))


def header_for(records):
    """The union of the columns of the record types a file holds, ``type`` first."""
    columns = []
    for record in ("d", "b", "t", "r"):
        if record in records:
            for field in FIELDS[record]:
                if field not in columns:
                    columns.append(field)
    return columns


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
