# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark the PowerMTA config linter on a big fleet config.

Target (issue 23; issue 4 said 2 s): 512 vMTAs x 40 <domain> blocks lint in under 1 s of CPU time on the
bench machine. The budget is judged on CPU time: on a shared 2-core machine the wall time mostly measures the
wait for a CPU (both are printed, with the load average). Prints rows (config lines) per second and the ratio
to the budget; the PowerMTA test double re-parses on every reload, so peak memory is printed too.

    python tests/bench/bench_config_lint.py [--vmtas 512] [--domains 40] [--runs 3]
"""

import argparse
import os
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "plugins", "module_utils"))

from _pmta_config import lint_text  # noqa: E402

BUDGET_SECONDS = 1.0


def fleet_config(vmtas, domains):
    """A fleet config in the generated shape: each vMTA with its own IP, DKIM key and per-domain policy."""
    lines = [
        "postmaster postmaster@example.com",
        "run-as-root no",
        "log-file /var/log/pmta/pmta.log",
        "http-mgmt-port 8080",
        "http-access 127.0.0.1 admin",
        "smtp-listener 127.0.0.1:25",
        "domain-macro gmail gmail.com,googlemail.com",
        "<smtp-pattern-list blocking-errors>",
        "    reply /too many connections/ mode=backoff",
        "</smtp-pattern-list>",
        "<source 127.0.0.1>",
        "    always-allow-relaying yes",
        "    default-virtual-mta pool-all",
        "</source>",
    ]
    for v in range(vmtas):
        name = "vmta-%04d" % v
        lines += [
            "<virtual-mta %s>" % name,
            "    smtp-source-host 198.18.%d.%d mta%04d.example.com" % (v // 250, v % 250 + 1, v),
            "    domain-key s2026,example.com,/etc/pmta/dkim/s2026.example.com.pem",
            "    max-smtp-msg-rate 100/m",
        ]
        for d in range(domains):
            lines += [
                "    <domain isp%02d.example.net>   # policy %d" % (d, d),
                "        max-smtp-out 10",
                "        max-msg-rate %d/h" % (100 + d),
                "        retry-after 10m,30m,1h",
                "        backoff-max-msg-rate 50/h",
                "        smtp-pattern-list blocking-errors",
                "        dkim-sign yes",
                "    </domain>",
            ]
        lines.append("</virtual-mta>")
    lines.append("<virtual-mta-pool pool-all>")
    lines += ["    virtual-mta vmta-%04d" % v for v in range(vmtas)]
    lines.append("</virtual-mta-pool>")
    return "\n".join(lines) + "\n", len(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vmtas", type=int, default=512)
    parser.add_argument("--domains", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    text, rows = fleet_config(args.vmtas, args.domains)
    timings = []
    cpu_timings = []
    result = None
    for _run in range(args.runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = lint_text(text)
        timings.append(time.perf_counter() - start)
        cpu_timings.append(time.process_time() - cpu_start)
        result = None  # drop the tree between runs
    best = min(timings)
    best_cpu = min(cpu_timings)

    tracemalloc.start()
    result = lint_text(text)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        "config: %d vMTAs x %d <domain> blocks = %d lines, %.1f MB of text"
        % (args.vmtas, args.domains, rows, len(text) / 1e6)
    )
    print("findings: %d errors, %d warnings (expected 0 and 0)" % (len(result.errors), len(result.warnings)))
    print("lint time: best %.3f s, runs %s" % (best, ", ".join("%.3f" % t for t in timings)))
    print("cpu time: best %.3f s (wall time above includes waiting for a shared CPU)" % best_cpu)
    print("load average: %.2f (%d CPUs)" % (os.getloadavg()[0], os.cpu_count() or 1))
    print("rows/s: %.0f" % (rows / best))
    print("peak memory while linting: %.1f MB (%.2f x the text size)" % (peak / 1e6, peak / len(text)))
    print(
        "budget %.1f s of CPU time: %.2f x faster than needed -> %s"
        % (BUDGET_SECONDS, BUDGET_SECONDS / best_cpu, "OK" if best_cpu < BUDGET_SECONDS else "TOO SLOW")
    )
    return 0 if best_cpu < BUDGET_SECONDS and result.ok and not result.warnings else 1


if __name__ == "__main__":
    sys.exit(main())
