"""Benchmark of the accounting parser behind mailops.powermta.pmta_acct_stats.

Writes a synthetic PowerMTA accounting file (default 1,000,000 rows: d/b/t/tq/f
records under one union header, documentation addresses only), then times

  1. a bare ``csv.reader`` pass over the file (the floor: read and split only),
  2. ``_acct.AcctStats`` over the same file (the whole aggregation),

and prints rows/s for both, their ratio (target >= 0.5) and the peak memory of
each pass (tracemalloc, Python allocations) plus the process's max RSS.

    .venv/bin/python tests/bench/bench_acct_stats.py [--rows N] [--keep FILE]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_UTILS = os.path.join(HERE, "..", "..", "plugins", "module_utils")
sys.path.insert(0, os.path.abspath(MODULE_UTILS))

from _warmup import acct as _acct  # noqa: E402  (imported by path, as on a PowerMTA host)

HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
          "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,vmtaPool,"
          "repSourceIp,feedbackType,format,userAgent,reportingMTA,reportedDomain").split(",")

DOMAINS = ["gmail.com"] * 30 + ["yahoo.com"] * 12 + ["aol.com"] * 3 + ["hotmail.com"] * 10 + ["outlook.com"] * 6 + \
    ["icloud.com"] * 5 + ["comcast.net"] * 3 + ["example.com", "example.net", "example.org"] * 5 + \
    ["d%d.example" % n for n in range(16)]
MX = {"gmail.com": "gmail-smtp-in.l.google.com (192.0.2.26)", "yahoo.com": "mta5.am0.yahoodns.net (192.0.2.27)",
      "hotmail.com": "hotmail-com.olc.protection.outlook.com (192.0.2.28)"}
IPS = [("203.0.113.%d" % n, "mk-%02d" % n) for n in range(10, 18)]
DIAGS = [
    "smtp;250 2.0.0 OK 1714550400 abc123",
    "smtp;421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address",
    "smtp;421 4.7.0 [TSS04] Messages from 203.0.113.11 temporarily deferred due to unexpected volume",
    "smtp;451 4.3.0 Mail server temporarily rejected message.",
    "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
]
CATEGORIES = ["bad-mailbox", "inactive-mailbox", "policy-related", "spam-related", "quota-issues"]


def write_file(path, rows, seed=7):
    rng = random.Random(seed)
    width = len(HEADER)
    col = {name: i for i, name in enumerate(HEADER)}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            roll = rng.random()
            kind = "d" if roll < 0.78 else "b" if roll < 0.82 else "t" if roll < 0.97 else "tq" if roll < 0.995 else "f"
            ip, vmta = IPS[n % len(IPS)]
            domain = DOMAINS[rng.randrange(len(DOMAINS))]
            second = n * 86400 // rows
            stamp = "2026-05-01 %02d:%02d:%02d+0000" % (second // 3600, second // 60 % 60, second % 60)
            row = [""] * width
            row[col["type"]] = kind
            row[col["timeLogged"]] = stamp
            row[col["vmta"]] = vmta
            row[col["dlvSourceIp"]] = ip
            if kind == "tq":
                row[col["queue"]] = "%s/%s" % (domain, vmta)
                row[col["dsnDiag"]] = DIAGS[3]
            else:
                row[col["timeQueued"]] = stamp
                row[col["orig"]] = "bounce-%d@bounces.example.com" % n
                row[col["rcpt"]] = "user%d@%s" % (n % 50000, domain)
                row[col["dsnMta"]] = MX.get(domain, "mx.%s (192.0.2.30)" % domain)
                row[col["dlvDestinationIp"]] = "192.0.2.30"
                row[col["dlvSize"]] = str(2000 + n % 5000)
                row[col["jobId"]] = "job-%d" % (n // 1000)
                row[col["vmtaPool"]] = "marketing-eu"
            if kind == "d":
                row[col["dsnAction"]], row[col["dsnStatus"]] = "relayed", "2.0.0 (success)"
                row[col["dsnDiag"]] = DIAGS[0]
            elif kind == "b":
                row[col["dsnAction"]], row[col["dsnStatus"]], row[col["dsnDiag"]] = "failed", "5.1.1", DIAGS[4]
                row[col["bounceCat"]] = CATEGORIES[n % len(CATEGORIES)]
            elif kind == "t":
                row[col["dsnAction"]], row[col["dsnStatus"]] = "delayed", "4.7.0"
                row[col["dsnDiag"]] = DIAGS[1 + n % 3]
            elif kind == "f":
                row[col["feedbackType"]], row[col["format"]] = "abuse", "arf"
                row[col["reportingMTA"]] = "feedback.example.net"
            writer.writerow(row)


def bare_csv(path):
    rows = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for _row in csv.reader(handle):
            rows += 1
    return rows


def parser_pass(path):
    stats = _acct.AcctStats(since="2026-04-30T00:00:00Z")
    stats.add_file(path)
    return stats.totals["rows"] + 1, stats  # + header row, to count the same rows as csv.reader


def timed_pair(first, second, path, repeat):
    """Best of ``repeat`` for both, interleaved so load from other processes hits both alike.

    Timed in CPU time of this process (``time.process_time``): on a shared machine, wall time
    measures the neighbours as much as the parser.
    """
    timings = ([], [])
    results = {}
    for _round in range(repeat):
        for index, function in enumerate((first, second)):
            start = time.process_time()
            results[index] = function(path)
            timings[index].append(time.process_time() - start)
    return [min(timing) for timing in timings], [results[0], results[1]]


def peak(function, path):
    tracemalloc.start()
    function(path)
    _current, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N interleaved timed passes (default 3)")
    parser.add_argument("--keep", help="write the accounting file here and keep it")
    args = parser.parse_args()

    path = args.keep or os.path.join(tempfile.mkdtemp(prefix="bench-acct-"), "acct.csv")
    start = time.perf_counter()
    write_file(path, args.rows)
    size = os.path.getsize(path)
    print("file: %s, %d rows, %.1f MiB, written in %.1fs" % (
        path, args.rows, size / 2**20, time.perf_counter() - start))

    (csv_time, acct_time), (csv_rows, (acct_rows, stats)) = timed_pair(bare_csv, parser_pass, path, args.repeat)
    if csv_rows != acct_rows:
        print("row counts differ: csv.reader %d, parser %d" % (csv_rows, acct_rows))
        return 1
    csv_rate = csv_rows / csv_time
    acct_rate = acct_rows / acct_time
    ratio = acct_rate / csv_rate
    csv_peak = peak(bare_csv, path)
    acct_peak = peak(parser_pass, path)
    result = stats.result()
    print("bare csv.reader : %10.0f rows/s (%.2fs CPU), peak traced memory %.2f MiB" % (
        csv_rate, csv_time, csv_peak / 2**20))
    print("pmta_acct_stats : %10.0f rows/s (%.2fs CPU), peak traced memory %.2f MiB" % (
        acct_rate, acct_time, acct_peak / 2**20))
    print("ratio           : %.2fx csv.reader (target >= 0.50) -> %s" % (
        ratio, "OK" if ratio >= 0.5 else "BELOW TARGET"))
    print("max RSS of this process: %.1f MiB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print("aggregated: %d keys, used %d rows, corrupt %d, throttled %d" % (
        len(result["stats"]), result["used"], result["corrupt"], sum(s["throttled"] for s in result["stats"])))
    if not args.keep:
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
    return 0 if ratio >= 0.5 else 2


if __name__ == "__main__":
    sys.exit(main())
