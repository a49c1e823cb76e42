# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the metrics collector's incremental accounting read versus re-reading the whole file.

Builds an accounting file of N records, reads it once (the first run), appends M records and
reads again (a normal timer run). Prints CPU times and the ratio; the ratio should be close to
N / M, i.e. a run costs what was appended, not the size of the file.

    python tests/bench/bench_metrics_collector.py [N] [M]     (default 200000 2000)
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))

from _monitoring import metrics as _metrics  # noqa: E402

HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,srcMta,"
          "dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool\n")
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "icloud.com", "comcast.net"]


def records(count, start=0):
    lines = []
    for i in range(start, start + count):
        kind = "b" if i % 50 == 0 else "d"
        lines.append("%s,2026-11-22 05:%02d:%02d+0000,2026-11-22 05:00:00+0000,news@example.com,u%d@%s,,relayed,"
                     "2.0.0,smtp;250 ok,mx.example.test (192.0.2.25),,smtp,injector.example.com,smtp,203.0.113.%d,"
                     "192.0.2.25,PIPELINING,1024,mk-%02d,job1,,,marketing\n"
                     % (kind, (i // 60) % 60, i % 60, i, DOMAINS[i % len(DOMAINS)], 10 + i % 8, i % 8))
    return "".join(lines)


def timed(function):
    start = time.process_time()
    result = function()
    return time.process_time() - start, result


def main():
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    appended = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory() as work:
        acct = pathlib.Path(work) / "acct.csv"
        acct.write_text(HEADER + records(total))
        state = {"version": 1, "files": {}, "counters": {}}
        size = acct.stat().st_size
        first, summary = timed(lambda: _metrics.read_new_accounting(state, [str(acct)], max_bytes=size))
        with acct.open("a") as handle:
            handle.write(records(appended, total))
        second, summary2 = timed(lambda: _metrics.read_new_accounting(state, [str(acct)]))
        assert summary["records"] == total and summary2["records"] == appended
        print("records in file: %d, appended: %d" % (total + appended, appended))
        print("first run (whole file): %.3f s CPU, %.0f records/s" % (first, total / first))
        print("next run (appended only): %.3f s CPU" % second)
        print("ratio whole/incremental: %.1f (records ratio %.1f)" % (first / second, total / appended))


if __name__ == "__main__":
    main()
