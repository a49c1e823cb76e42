# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark the fleet at size: H hosts x M IPs (issue 16).

Controller side (default, no hosts): the fleet preflight (playbooks/preflight.yml: the fleet model and its
checks) and the powermta role's preflight (per host: checks, render of the whole config tree, lint) for
every host, with `ansible_connection: local` and each host's addresses given as facts. Nothing but the
controller runs; the staging trees are removed afterwards.

Real converge (--hosts): H nspawn bench hosts `scale-N` with M extra addresses each, the PowerMTA TEST
DOUBLE package (tests/pmta_test_double/build.sh), playbooks/preflight.yml + playbooks/powermta.yml
(rollout as shipped), first converge then the idempotent re-run (must report changed=0).

Prints wall time of the first run and the re-run, per-host and per-IP cost, how they grow between sizes,
and peak memory (the largest child's max RSS from resource.getrusage, and the peak sum of RSS of the
whole ansible-playbook process tree, sampled every 0.2 s).

Whole site (--site, e.g. 4x32): the same bench hosts with a BIND 9 of their own (tests/testbed/bind9.py),
`site.yml` (preflight -> host_tuning -> powermta -> dns -> monitoring) + `playbooks/warmup_step.yml` in one
ansible-playbook run, first run then the no-op run (must report changed=0); prints both in seconds and the
ratio. Target (issue 22): 4x32 no-op <= 40 s and <= 30 % of the first run.

Preflight alone (--preflight, default 50x64): playbooks/preflight.yml (the fleet model, every check, the render
and lint of every host's complete config), target < 10 s (issue 20); prints the ratio to 10 s and the CPU seconds.

    python tests/bench/bench_fleet_scale.py --sizes '' --preflight 50x64

Targets (issue 16): controller side 50x64 < 60 s and < 2 GB; real 4x32 re-run < 90 s and < 40 % of the
first converge; cost per IP flat or falling from 2x8 to 4x32.

    python tests/bench/bench_fleet_scale.py [--sizes 2x8,4x32,50x64] [--hosts 2x8,4x32] [--site 4x32]
        [--forks 10] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
TESTBED = os.path.join(ROOT, "tests", "testbed", "testbed.py")
DOUBLE_BUILD = os.path.join(ROOT, "tests", "pmta_test_double", "build.sh")
sys.path.insert(0, os.path.join(ROOT, "tests", "testbed"))
from fleet_inventory import vmta_addresses, write_inventory  # noqa: E402  (shared with the fleet-size tests)

CONTROLLER_BUDGET_S = 60.0
PREFLIGHT_BUDGET_S = 10.0  # issue 20: playbooks/preflight.yml alone on 50x64
MEMORY_BUDGET_MB = 2048.0
RERUN_BUDGET_S = 90.0
RERUN_RATIO_BUDGET = 0.40
SITE_NOOP_BUDGET_S = 40.0  # issue 22: site.yml + warm-up step, no-op run on 4x32
SITE_NOOP_RATIO_BUDGET = 0.30

# Bench-only action: sets the facts a host would report (no connection), so the controller side runs
# without hosts. Lives in the run's temporary directory, never in the collection.
FACTS_ACTION = '''
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(changed=False, ansible_facts=dict(self._task.args["facts"]))
        return result
'''

CONTROLLER_PLAYBOOK = """---
- name: Give each host the facts it would report (bench only, no connection)
  hosts: pmta_fleet
  gather_facts: false
  tasks:
    - name: Set the facts
      bench_facts:
        facts:
          os_family: Debian
          distribution: Debian
          distribution_major_version: "12"
          fqdn: "{{{{ inventory_hostname }}}}.example.com"
          hostname: "{{{{ inventory_hostname }}}}"
          all_ipv4_addresses: "{{{{ bench_ipv4 }}}}"
          all_ipv6_addresses: "{{{{ bench_ipv6 }}}}"

- name: Fleet preflight
  ansible.builtin.import_playbook: {root}/playbooks/preflight.yml

- name: Per-host preflight, render and lint (controller only)
  hosts: pmta_fleet
  gather_facts: false
  tasks:
    - name: Run the powermta role's preflight (checks, render, lint)
      ansible.builtin.include_role:
        name: mailops.powermta.powermta
        tasks_from: preflight.yml

    - name: Remove every host's staging tree (one command for the fleet)
      ansible.builtin.command:
        argv: "{{{{ ['rm', '-rf', '--'] + ansible_play_hosts | map('extract', hostvars, ['powermta_rendered', 'path'])
                 | list }}}}"
      run_once: true
      delegate_to: localhost
      changed_when: false
"""

CONVERGE_PLAYBOOK = """---
- name: Fleet preflight
  ansible.builtin.import_playbook: {root}/playbooks/preflight.yml

- name: PowerMTA
  ansible.builtin.import_playbook: {root}/playbooks/powermta.yml
"""

SITE_PLAYBOOK = """---
- name: Whole fleet
  ansible.builtin.import_playbook: {root}/site.yml

- name: Warm-up step
  ansible.builtin.import_playbook: {root}/playbooks/warmup_step.yml
"""


class TreeMemory:
    """Peak of the summed RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for pid in self._tree():
                try:
                    with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
                        match = re.search(r"^VmRSS:\s+(\d+)", handle.read(), re.M)
                except OSError:
                    continue
                if match:
                    total += int(match.group(1))
            self.peak_kb = max(self.peak_kb, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024.0


def run_playbook(workdir: str, playbook: str, forks: int, extra: list[str] | None = None) -> dict:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".ansible", "collections"),
               ANSIBLE_ACTION_PLUGINS=os.path.join(workdir, "action_plugins"),
               ANSIBLE_FORKS=str(forks), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-tmp"),
               # Per-task times at the end of each log (the slowest 30), to see where a run spends them.
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="30")
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(workdir, "hosts.json"), playbook]
    cmd += extra or []
    for item in EXTRA:
        cmd += ["-e", item]
    log_path = os.path.join(workdir, f"run-{int(time.time() * 1000)}.log")
    start = time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        proc.wait()
        tree_mb = memory.stop()
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the run (user + system): the wall time on a shared 2-core bench depends on its load.
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    with open(log_path, encoding="utf-8") as handle:
        output = handle.read()
    recap = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "failed": int(m.group(4))}
             for m in re.finditer(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)",
                                  output, re.M)}
    return {"rc": proc.returncode, "seconds": elapsed, "cpu": cpu, "tree_mb": tree_mb, "recap": recap, "log": log_path,
            "tail": "\n".join(output.splitlines()[-25:])}


def prepare_workdir(hosts: int, ips: int, keep: bool) -> str:
    workdir = tempfile.mkdtemp(prefix=f"bench-fleet-{hosts}x{ips}-")
    os.makedirs(os.path.join(workdir, "action_plugins"))
    os.makedirs(os.path.join(workdir, "ansible-tmp"))
    with open(os.path.join(workdir, "action_plugins", "bench_facts.py"), "w", encoding="utf-8") as handle:
        handle.write(FACTS_ACTION)
    if keep:
        print(f"  (work directory kept: {workdir})")
    return workdir


EXTRA: list[str] = []


def controller_inventory(workdir: str, hosts: int, ips: int) -> None:
    """The inventory of a controller-side run, with a stand-in package file (only its existence is checked)."""
    package = os.path.join(workdir, "pmta-bench.deb")
    with open(package, "wb") as handle:
        handle.write(b"not a package: the controller side only checks that the file exists\n")
    write_inventory(workdir, hosts, ips, package, None)


def controller_side(hosts: int, ips: int, forks: int, keep: bool) -> dict:
    workdir = prepare_workdir(hosts, ips, keep)
    try:
        controller_inventory(workdir, hosts, ips)
        playbook = os.path.join(workdir, "controller.yml")
        with open(playbook, "w", encoding="utf-8") as handle:
            handle.write(CONTROLLER_PLAYBOOK.format(root=ROOT))
        first = run_playbook(workdir, playbook, forks)
        if first["rc"] != 0:
            return {"first": first}
        again = run_playbook(workdir, playbook, forks)
        return {"first": first, "again": again}
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def preflight_only(hosts: int, ips: int, forks: int, keep: bool) -> dict:
    """playbooks/preflight.yml alone (the fleet model, every role's argument spec, the fleet rules)."""
    workdir = prepare_workdir(hosts, ips, keep)
    try:
        controller_inventory(workdir, hosts, ips)
        playbook = os.path.join(ROOT, "playbooks", "preflight.yml")
        first = run_playbook(workdir, playbook, forks)
        if first["rc"] != 0:
            return {"first": first}
        return {"first": first, "again": run_playbook(workdir, playbook, forks)}
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def bench_hosts(names: list[str], addresses: list[list[str]]) -> dict:
    specs = [{"name": name, "kind": "nspawn", "extra_addresses": [f"{a}/{128 if ':' in a else 32}" for a in addrs],
              "memory_mb": 512} for name, addrs in zip(names, addresses, strict=True)]
    subprocess.run([sys.executable, TESTBED, "down", *names], capture_output=True, check=False)
    res = subprocess.run([sys.executable, TESTBED, "up-many", "-"], input=json.dumps(specs), text=True,
                         capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"testbed up-many failed: {res.stderr.strip()[-2000:]}")
    return {item["instance"]: item for item in json.loads(res.stdout)}


def start_fleet(workdir: str, names: list[str], ips: int, playbook_name: str, playbook_text: str) -> tuple:
    """Build the test double, start the bench hosts, write the inventory and the playbook: (boot s, playbook)."""
    subprocess.run([DOUBLE_BUILD, os.path.join(workdir, "double")], check=True, capture_output=True)
    package = os.path.join(workdir, "double", "pmta-test-double_all.deb")
    start = time.monotonic()
    connections = bench_hosts(names, vmta_addresses(len(names), ips))
    boot = time.monotonic() - start
    write_inventory(workdir, len(names), ips, package, connections)
    playbook = os.path.join(workdir, playbook_name)
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(playbook_text.format(root=ROOT))
    return boot, playbook


def real_converge(hosts: int, ips: int, forks: int, keep: bool) -> dict:
    workdir = prepare_workdir(hosts, ips, keep)
    names = [f"scale-{h + 1}" for h in range(hosts)]
    try:
        boot, playbook = start_fleet(workdir, names, ips, "converge.yml", CONVERGE_PLAYBOOK)
        first = run_playbook(workdir, playbook, forks)
        out = {"boot": boot, "first": first}
        if first["rc"] == 0:
            out["again"] = run_playbook(workdir, playbook, forks)
        return out
    finally:
        if not keep:
            subprocess.run([sys.executable, TESTBED, "down", *names], capture_output=True, check=False)
            shutil.rmtree(workdir, ignore_errors=True)


def site_vars(workdir: str, server) -> str:
    """Extra vars of a whole-site run: the bench's named, lab-sized hosts, reports in the work directory."""
    with open(os.path.join(workdir, "group_vars", "pmta_fleet.json"), encoding="utf-8") as handle:
        domains = json.load(handle)["powermta_domains"]
    for domain in domains:  # the dns role publishes DMARC: it needs where the reports go
        domain.setdefault("dmarc_rua", f"mailto:dmarc-reports@{domain['name']}")
    path = os.path.join(workdir, "site.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"powermta_domains": domains, "dns_server": server.address, "dns_port": server.port,
                   "dns_key_name": server.key_name, "dns_key_secret": server.key_secret,
                   "dns_key_algorithm": server.key_algorithm,
                   "host_tuning_min_ram_mb": 256,  # bench hosts have 512 MiB
                   "warmup_report_dir": os.path.join(workdir, "warmup-report")}, handle)
    os.chmod(path, 0o600)
    return path


def real_site(hosts: int, ips: int, forks: int, keep: bool) -> dict:
    """site.yml + the warm-up step on nspawn hosts: the first run and the no-op run."""
    from bind9 import Bind9Server  # noqa: PLC0415  (tests/testbed; needs named only for this mode)

    workdir = prepare_workdir(hosts, ips, keep)
    names = [f"scale-{h + 1}" for h in range(hosts)]
    server = Bind9Server(os.path.join(workdir, "bind9"))
    try:
        server.start(detach=keep)  # detached: --keep leaves it running after the bench
        boot, playbook = start_fleet(workdir, names, ips, "site.yml", SITE_PLAYBOOK)
        extra = ["-e", "@" + site_vars(workdir, server)]
        first = run_playbook(workdir, playbook, forks, extra)
        out = {"boot": boot, "first": first}
        if first["rc"] == 0:
            out["again"] = run_playbook(workdir, playbook, forks, extra)
        return out
    finally:
        if keep:  # hosts, BIND 9 and the extra vars stay, to run other code against the same fleet
            print(f"  (BIND 9 left running: python3 tests/testbed/bind9.py stop --dir {server.workdir})")
        else:
            server.stop()
            subprocess.run([sys.executable, TESTBED, "down", *names], capture_output=True, check=False)
            shutil.rmtree(workdir, ignore_errors=True)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in filter(None, text.split(",")):
        match = re.fullmatch(r"(\d+)x(\d+)", part.strip())
        if not match:
            raise SystemExit(f"size {part!r} must look like HOSTSxIPS, e.g. 4x32")
        sizes.append((int(match.group(1)), int(match.group(2))))
    return sizes


def report(kind: str, size: tuple[int, int], result: dict, rows: list) -> bool:
    hosts, ips = size
    first, again = result["first"], result.get("again")
    if first["rc"] != 0 or (again and again["rc"] != 0):
        bad = first if first["rc"] != 0 else again
        print(f"{kind} {hosts}x{ips}: FAILED (rc {bad['rc']}), log {bad['log']}\n{bad['tail']}")
        return False
    changed = sum(h["changed"] for h in again["recap"].values())
    line = (f"{kind:10s} {hosts:3d}x{ips:<3d} first {first['seconds']:7.1f} s  re-run {again['seconds']:7.1f} s "
            f"(changed={changed}, {again['seconds'] / first['seconds']:.0%} of first)  "
            f"per host {again['seconds'] / hosts:6.2f} s  per IP {again['seconds'] / (hosts * ips) * 1000:7.1f} ms  "
            f"peak tree RSS {max(first['tree_mb'], again['tree_mb']):7.0f} MB")
    if "boot" in result:
        line += f"  (hosts up in {result['boot']:.1f} s)"
    print(line, flush=True)
    rows.append({"kind": kind, "hosts": hosts, "ips": ips, "first": first["seconds"], "again": again["seconds"],
                 "again_cpu": again["cpu"], "load": os.getloadavg()[0],
                 "changed": changed, "tree_mb": max(first["tree_mb"], again["tree_mb"])})
    return True


def growth(rows: list[dict], kind: str) -> None:
    mine = [r for r in rows if r["kind"] == kind]
    for before, after in zip(mine, mine[1:], strict=False):
        per_ip_before = before["again"] / (before["hosts"] * before["ips"])
        per_ip_after = after["again"] / (after["hosts"] * after["ips"])
        print(f"{kind:10s} {before['hosts']}x{before['ips']} -> {after['hosts']}x{after['ips']}: "
              f"{after['hosts'] * after['ips'] / (before['hosts'] * before['ips']):.1f}x the IPs, "
              f"{after['again'] / before['again']:.2f}x the time, per-IP cost x{per_ip_after / per_ip_before:.2f} "
              f"({'flat or falling' if per_ip_after <= per_ip_before * 1.05 else 'RISING'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2x8,4x32,50x64", help="controller-side sizes HOSTSxIPS (''=skip)")
    parser.add_argument("--preflight", default="50x64", help="playbooks/preflight.yml alone, sizes HOSTSxIPS")
    parser.add_argument("--hosts", default="", help="real converge on nspawn hosts, e.g. 2x8,4x32 (needs root)")
    parser.add_argument("--site", default="", help="site.yml + warm-up step on nspawn hosts, e.g. 4x32 (needs root)")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--keep", action="store_true",
                        help="keep work directories and bench hosts (and --site's BIND 9)")
    parser.add_argument("-e", "--extra-vars", action="append", default=[], help="passed to ansible-playbook -e")
    args = parser.parse_args()
    EXTRA.extend(args.extra_vars)
    rows: list[dict] = []
    ok = True
    for size in parse_sizes(args.sizes):
        ok &= report("controller", size, controller_side(*size, args.forks, args.keep), rows)
    for size in parse_sizes(args.preflight):
        ok &= report("preflight", size, preflight_only(*size, args.forks, args.keep), rows)
    for size in parse_sizes(args.hosts):
        ok &= report("converge", size, real_converge(*size, args.forks, args.keep), rows)
    for size in parse_sizes(args.site):
        ok &= report("site", size, real_site(*size, args.forks, args.keep), rows)
    growth(rows, "controller")
    growth(rows, "converge")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(f"largest child process max RSS (getrusage): {children:.0f} MB")
    for row in rows:
        if row["kind"] == "controller" and (row["hosts"], row["ips"]) == (50, 64):
            verdict = row["again"] < CONTROLLER_BUDGET_S and row["tree_mb"] < MEMORY_BUDGET_MB
            print(f"target controller 50x64 < {CONTROLLER_BUDGET_S:.0f} s and < {MEMORY_BUDGET_MB:.0f} MB: "
                  f"{'MET' if verdict else 'MISSED'}")
        if row["kind"] == "preflight" and (row["hosts"], row["ips"]) == (50, 64):
            print(f"target preflight.yml 50x64 (fleet model, checks, render and lint of every host's config) "
                  f"< {PREFLIGHT_BUDGET_S:.0f} s: {'MET' if row['again'] < PREFLIGHT_BUDGET_S else 'MISSED'} "
                  f"({row['again']:.1f} s, ratio {row['again'] / PREFLIGHT_BUDGET_S:.2f} of the budget; "
                  f"{row['again_cpu']:.1f} CPU s; load average {row['load']:.1f} on {os.cpu_count()} cores)")
        if row["kind"] == "converge" and (row["hosts"], row["ips"]) == (4, 32):
            verdict = (row["again"] < RERUN_BUDGET_S and row["again"] < RERUN_RATIO_BUDGET * row["first"]
                       and row["changed"] == 0)
            print(f"target converge 4x32 re-run < {RERUN_BUDGET_S:.0f} s, < {RERUN_RATIO_BUDGET:.0%} of first, "
                  f"changed=0: {'MET' if verdict else 'MISSED'}")
        if row["kind"] == "site" and (row["hosts"], row["ips"]) == (4, 32):
            verdict = (row["again"] <= SITE_NOOP_BUDGET_S and row["again"] <= SITE_NOOP_RATIO_BUDGET * row["first"]
                       and row["changed"] == 0)
            print(f"target site.yml + warm-up 4x32 no-op <= {SITE_NOOP_BUDGET_S:.0f} s, "
                  f"<= {SITE_NOOP_RATIO_BUDGET:.0%} of first, changed=0: {'MET' if verdict else 'MISSED'} "
                  f"(first {row['first']:.1f} s, no-op {row['again']:.1f} s, ratio {row['again'] / row['first']:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
