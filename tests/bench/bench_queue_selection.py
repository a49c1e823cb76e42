"""Benchmark of the fleet-name resolution behind mailops.powermta.pmta_queue (and playbooks/incident.yml).

Builds a fleet model of HOSTS x IPS vMTAs (two pools, five ISP groups), then times
``_pmta_queue.resolve_selection`` for the selections an incident uses (an ISP on one IP, an ISP on a pool,
a whole host, the whole fleet) and prints the time of each, its patterns, and its ratio to a bare pass over
every vMTA of the fleet (the floor: the resolution must stay linear in the fleet's size).

    .venv/bin/python tests/bench/bench_queue_selection.py [--hosts 50] [--ips 64] [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "plugins", "module_utils")))
from _operations import queue as _pmta_queue  # noqa: E402

GROUPS = [{"name": name, "domains": ["%s.example" % name, "%s-mail.example" % name], "mx_patterns": ["*.%s" % name]}
          for name in ("gmail", "yahoo", "microsoft", "apple", "comcast")]


def fleet(hosts, ips):
    model = {"hosts": {}, "vmtas": []}
    for h in range(hosts):
        vmtas = [{"name": "v%03d-%02d" % (h, n), "ip": "198.18.%d.%d" % (h, n + 1),
                  "pool": "marketing" if n % 2 else "transactional"} for n in range(ips)]
        model["hosts"]["pmta%03d" % h] = {"vmtas": vmtas, "isp_policies": GROUPS}
        model["vmtas"] += [dict(v, inventory_host="pmta%03d" % h) for v in vmtas]
    return model


def timed(repeat, function):
    started = time.perf_counter()
    for _index in range(repeat):
        result = function()
    return (time.perf_counter() - started) / repeat, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--ips", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    model = fleet(args.hosts, args.ips)
    floor, _result = timed(args.repeat, lambda: [v["name"] for h in model["hosts"].values() for v in h["vmtas"]])
    cases = {
        "isp on one IP": {"isp": "gmail", "ip": "198.18.7.3"},
        "isp on a pool": {"isp": "gmail", "pool": "marketing"},
        "one host": {"vmta": [v["name"] for v in model["hosts"]["pmta001"]["vmtas"]]},
        "whole fleet": {"isp": "gmail"},
    }
    print("fleet: %d hosts x %d IPs = %d vMTAs; floor (one pass over the vMTAs): %.2f ms"
          % (args.hosts, args.ips, len(model["vmtas"]), floor * 1000))
    for name, selection in cases.items():
        seconds, by_host = timed(args.repeat, lambda s=selection: _pmta_queue.resolve_selection(model, **s))
        patterns = sum(len(p) for p in by_host.values())
        print("%-14s %7.2f ms  %4d host(s) %6d pattern(s)  ratio to floor %5.1f"
              % (name, seconds * 1000, len(by_host), patterns, seconds / floor))


if __name__ == "__main__":
    main()
