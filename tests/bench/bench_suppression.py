"""Benchmark of the suppression export (mailops.powermta.pmta_suppression, playbooks/suppression.yml).

Writes synthetic PowerMTA accounting files for HOSTS hosts (default 1,000,000 rows in all: d and b records
in acct-*.csv, rb in remote-bounces-*.csv, f in fbl-*.csv, PowerMTA's own columns, documentation and .test
addresses only), then times the whole export as playbooks/suppression.yml runs it, in one process:

  1. ``read_host`` per host (cursor, parse, classify, per-address summary),
  2. ``export`` once (merge every host's summary, render and atomically write the CSV),
  3. a second round with no new records (the idempotent run),

and prints rows/s of the first round, its seconds (target: 1 M rows in under 10 s), and the rows/s of a
bare ``csv.reader`` pass over the same files (the floor) with the ratio.

    .venv/bin/python tests/bench/bench_suppression.py [--rows N] [--hosts H]
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "plugins", "module_utils")))

from _operations import suppression as _suppression  # noqa: E402  (imported by path, as on a PowerMTA host)

B_HEADER = ("type,timeLogged,timeQueued,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,bounceCat,srcType,"
            "srcMta,dlvType,dlvSourceIp,dlvDestinationIp,dlvEsmtpAvailable,dlvSize,vmta,jobId,envId,queue,"
            "vmtaPool").split(",")
RB_HEADER = ("type,timeLogged,orig,rcpt,orcpt,dsnAction,dsnStatus,dsnDiag,dsnMta,dsnReportingMta,bounceCat,"
             "srcType,srcMta,envId,format").split(",")
F_HEADER = ("type,timeLogged,repSourceIp,feedbackType,format,userAgent,envid,orig,rcpt,reportingMTA,dlvSourceIp,"
            "reportedDomain").split(",")
DOMAINS = ["gmail.test", "yahoo.test", "outlook.test", "icloud.test", "comcast.test", "example.com", "example.net"]
CATEGORIES = ["bad-mailbox"] * 5 + ["inactive-mailbox", "bad-domain", "quota-issues", "policy-related",
                                    "spam-related", "message-expired", "other"]


def write_host(folder, rows, rng, addresses):
    """acct (d 80 %, b 14 %), remote-bounces (rb 3 %), fbl (f 3 %) for one host."""
    os.makedirs(folder)
    start = 1777600000
    with open(os.path.join(folder, "acct-2026-05-01-0000.csv"), "w", newline="") as acct, \
            open(os.path.join(folder, "remote-bounces-2026-05-01-0000.csv"), "w", newline="") as remote, \
            open(os.path.join(folder, "fbl-2026-05-01-0000.csv"), "w", newline="") as fbl:
        writers = {name: csv.writer(handle, lineterminator="\r\n") for name, handle in
                   (("acct", acct), ("rb", remote), ("f", fbl))}
        writers["acct"].writerow(B_HEADER)
        writers["rb"].writerow(RB_HEADER)
        writers["f"].writerow(F_HEADER)
        for n in range(rows):
            when = time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(start + n // 50))
            rcpt = "user%d@%s" % (rng.randrange(addresses), DOMAINS[n % len(DOMAINS)])
            draw = rng.random()
            if draw < 0.80:
                writers["acct"].writerow(["d", when, when, "b@bounces.example.com", rcpt, "", "relayed",
                                          "2.0.0 (success)", "smtp;250 ok", "mx.test (198.18.1.2)", "", "smtp",
                                          "inj (198.18.0.1)", "smtp", "203.0.113.10", "198.18.1.2", "8BITMIME",
                                          "2048", "tx-01", "job", "", "gmail.test/tx-01", "transactional"])
            elif draw < 0.94:
                writers["acct"].writerow(["b", when, when, "b@bounces.example.com", rcpt, "", "failed",
                                          "5.1.1 (bad destination mailbox address)", "smtp;550 5.1.1 unknown",
                                          "mx.test (198.18.1.2)", rng.choice(CATEGORIES), "smtp", "", "", "", "", "",
                                          "", "tx-01", "job", "", "gmail.test/tx-01", "transactional"])
            elif draw < 0.97:
                writers["rb"].writerow(["rb", when, "b@bounces.example.com", rcpt, "", "failed", "5.2.1",
                                        "smtp;550 5.2.1 disabled", "mx.test", "mx.test", rng.choice(CATEGORIES),
                                        "smtp", "mta10.example.com", "", "dsn"])
            else:
                writers["f"].writerow(["f", when, "203.0.113.10", "abuse", "arf", "FBL/1.0", "",
                                       "b@bounces.example.com", rcpt, "fbl.test", "198.18.1.3", "example.com"])


def export_round(folders, states, dest):
    results = []
    for folder in folders:
        result = _suppression.read_host(states.get(folder, {"version": 1, "files": {}, "soft": {}}),
                                        [os.path.join(folder, "*.csv")], now=1777700000)
        states[folder] = result.pop("state")
        results.append(result)
    exported = _suppression.export(dest, results)
    return sum(r["rows"] for r in results), exported


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--addresses", type=int, default=200_000, help="distinct recipients")
    args = parser.parse_args()
    rng = random.Random(21)
    with tempfile.TemporaryDirectory(prefix="bench-suppression-") as work:
        folders = [os.path.join(work, "pmta%d" % n) for n in range(args.hosts)]
        for folder in folders:
            write_host(folder, args.rows // args.hosts, rng, args.addresses)
        started = time.process_time()
        floor_rows = 0
        for path in glob.glob(os.path.join(work, "*", "*.csv")):
            with open(path, newline="") as handle:
                floor_rows += sum(1 for _row in csv.reader(handle)) - 1
        floor = time.process_time() - started

        dest = os.path.join(work, "suppression.csv")
        states = {}
        started = time.process_time()
        rows, exported = export_round(folders, states, dest)
        first = time.process_time() - started
        started = time.process_time()
        _rows, again = export_round(folders, states, dest)
        second = time.process_time() - started

    print("rows read: %d on %d hosts; CSV: %d addresses %s" % (rows, args.hosts, exported["rows"],
                                                               exported["by_reason"]))
    print("csv.reader floor: %10.0f rows/s" % (floor_rows / floor))
    print("export (1st run): %10.0f rows/s  %.2f s  (target: 1,000,000 rows < 10 s: %s)"
          % (rows / first, first, "met" if rows / first >= 100_000 else "NOT met"))
    print("ratio export / floor: %.2f" % ((rows / first) / (floor_rows / floor)))
    print("2nd run, no new records: %.3f s, changed=%s" % (second, again["changed"]))


if __name__ == "__main__":
    main()
