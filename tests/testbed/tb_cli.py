# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument parsing for testbed.py (see its docstring)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import tb_hosts
import tb_image


def _disk(text: str, key: str) -> dict:
    name, _sep, size = text.partition(":")
    return {key: name, "size": size or "1G"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="testbed.py", description="mailops.powermta test bench")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("image", help="build the host image if its recipe changed (a no-op otherwise)")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    p = sub.add_parser("up", help="start hosts (removing stale ones of the same names first)")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--kind", choices=["nspawn", "qemu"], default="nspawn")
    p.add_argument("--address", help="nspawn: fixed address, 2nd host of a /30 in 198.18.0.0/15 (one NAME only)")
    p.add_argument("--extra-address", action="append", default=[], metavar="IP[/LEN]",
                   help="nspawn: extra address inside the host's netns (vMTA source IP)")
    p.add_argument("--loop-disk", action="append", default=[], metavar="NAME:SIZE",
                   help="nspawn: sparse loop device bound in as /dev/NAME")
    p.add_argument("--nvme-disk", action="append", default=[], metavar="SERIAL:SIZE",
                   help="qemu: NVMe disk with this serial")
    p.add_argument("--memory-mb", type=int, default=1024)
    p.add_argument("--json", action="store_true", help="print Molecule instance configs as JSON")
    p = sub.add_parser("up-many", help="start hosts described as Molecule platforms (JSON list) in parallel")
    p.add_argument("spec", help="JSON file, or - for stdin")
    p = sub.add_parser("down", help="remove hosts and everything they left behind")
    p.add_argument("names", nargs="+", metavar="NAME")
    sub.add_parser("down-all", help="remove every bench host, including stale ones")
    p = sub.add_parser("list", help="bench hosts on this machine")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("leftovers", help="print what of NAME is still on this machine (exit 1 if anything)")
    p.add_argument("name")
    p = sub.add_parser("ssh", help="open a shell (or run a command) on a bench host")
    p.add_argument("name")
    p.add_argument("remote", nargs=argparse.REMAINDER)
    p = sub.add_parser("lab-up", help="start the hosts of an inventory (ansible-inventory --list JSON)")
    p.add_argument("inventory_json")
    p.add_argument("--prefix", default="lab-", help="bench host name = PREFIX + inventory name")
    p.add_argument("--group", default="pmta_fleet")
    p = sub.add_parser("_supervise")
    p.add_argument("name")
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except tb_hosts.BenchError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    if args.command == "image":
        img = tb_image.build_image(force=args.force)
        tb_image.prune_images(tb_hosts.images_in_use() | {img.name})
        print(img)
    elif args.command == "up":
        if args.address and len(args.names) > 1:
            raise tb_hosts.BenchError("--address needs exactly one NAME")
        specs = [{
            "name": name, "kind": args.kind, "address": args.address,
            "extra_addresses": args.extra_address,
            "loop_disks": [_disk(d, "name") for d in args.loop_disk],
            "nvme_disks": [_disk(d, "serial") for d in args.nvme_disk],
            "memory_mb": args.memory_mb,
        } for name in args.names]
        states = tb_hosts.up_many(specs)
        _print_states(states, as_json=args.json)
    elif args.command == "up-many":
        text = sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text()
        states = tb_hosts.up_many(json.loads(text))
        print(json.dumps([tb_hosts.instance_config(s) for s in states], indent=2))
    elif args.command == "down":
        tb_hosts.down_many(args.names)
    elif args.command == "down-all":
        tb_hosts.down_many(tb_hosts.stale_names())
    elif args.command == "list":
        _print_states(tb_hosts.all_states(), as_json=args.json)
    elif args.command == "leftovers":
        rest = tb_hosts.leftovers(args.name)
        print(json.dumps(rest))
        return 1 if rest else 0
    elif args.command == "ssh":
        state = tb_hosts.read_state(args.name)
        if not state:
            raise tb_hosts.BenchError(f"no bench host named {args.name}")
        import os
        cmd = tb_hosts.ssh_command(state, *args.remote)
        os.execvp(cmd[0], cmd)
    elif args.command == "lab-up":
        inventory = json.loads(Path(args.inventory_json).read_text())
        specs = lab_specs(inventory, args.group, args.prefix)
        with _stdout_to_stderr():  # an image build on the way (mke2fs, apt) must not corrupt the JSON
            states = tb_hosts.up_many(specs)
        print(json.dumps([tb_hosts.instance_config(s) for s in states], indent=2))
    elif args.command == "_supervise":
        return tb_hosts.supervise(args.name)
    return 0


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send this process's and its children's stdout (file descriptor 1) to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def lab_specs(inventory: dict, group: str, prefix: str) -> list[dict]:
    """Bench hosts for every host of GROUP: address = ansible_host, extra addresses = its vMTA IPs."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    names = _group_hosts(inventory, group)
    if not names:
        raise tb_hosts.BenchError(f"the inventory has no hosts in group {group!r}")
    specs = []
    for name in names:
        hv = hostvars.get(name, {})
        extra = hv.get("testbed_extra_addresses")
        if extra is None:
            extra = []
            for var in ("powermta_vmtas", "powermta_group_vmtas", "powermta_host_vmtas"):
                for vmta in hv.get(var) or []:
                    ip = vmta.get("ip") if isinstance(vmta, dict) else None
                    if isinstance(ip, str) and "{" not in ip and ip not in extra:
                        extra.append(ip)
        if not hv.get("ansible_host"):
            raise tb_hosts.BenchError(f"inventory host {name}: set ansible_host to its bench address (198.19.0.x)")
        specs.append({
            "name": prefix + name, "hostname": name, "kind": hv.get("testbed_kind", "nspawn"),
            "address": hv["ansible_host"], "extra_addresses": extra,
            "loop_disks": hv.get("testbed_loop_disks") or [],
        })
    return specs


def _group_hosts(inventory: dict, group: str) -> list[str]:
    entry = inventory.get(group, {})
    hosts = list(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts += [h for h in _group_hosts(inventory, child) if h not in hosts]
    return hosts


def _print_states(states: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps([tb_hosts.instance_config(s) for s in states], indent=2))
        return
    for s in states:
        alive = "running" if tb_hosts._alive(s.get("pid")) else "DEAD"
        extra = " ".join(s.get("extra_addresses") or [])
        disks = " ".join(d.get("serial") or d.get("name") for d in (s.get("nvme_disks") or s.get("loop_disks") or []))
        print(f"{s['name']:<16} {s['kind']:<7} {alive:<8} {s['address']}:{s['port']:<6} {extra} {disks}".rstrip())
