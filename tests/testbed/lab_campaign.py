# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make lab`: inject a small campaign into the lab fleet the way Mumara does, wait until it settled.

For every lab host x pool x ISP group: ``--per-group`` messages to ordinary mailboxes, and to the
gmail sink one unknown user (-> b record) and one complaint (-> ARF -> f record). Mail goes in over
STARTTLS + AUTH with ``X-Virtual-MTA: <pool>`` (injector.py), with the inventory's bounce address
(``powermta_bounce_mailbox.bounce_address``) as MAIL FROM, as Mumara sets its Bounce Address. With
``--mailbox-json`` it then waits until the injector's mailbox holds a DSN for every unknown user and an ARF
report for every complaint, once each (lab_mailbox.py). Writes ``WORLD/injected.json``:
``{"by_ip": {ip: {group: n}}, "by_pool": {host/pool: {group: n}}}`` (the pool's vMTA on that host gives
the IP when the pool has one member there), then waits until the sinks saw every ordinary message.

    lab_campaign.py --inventory LAB/inventory.json --world LAB/isp --password-file F [--per-group 3]
        [--mailbox-json LAB/mailbox.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import injector  # noqa: E402
import isp_world  # noqa: E402
import lab_mailbox  # noqa: E402


def fleet(inventory: dict, group: str = "pmta_fleet") -> dict:
    """{host: {"address": ansible_host, "pools": {pool: [(vmta, ip)]}}} from ansible-inventory --list."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    out = {}
    for name in inventory.get(group, {}).get("hosts", []):
        hv = hostvars.get(name, {})
        pools: dict[str, list] = {}
        for vmta in hv.get("powermta_vmtas") or []:
            pools.setdefault(vmta.get("pool", ""), []).append((vmta["name"], vmta["ip"]))
        mailbox = hv.get("powermta_bounce_mailbox") or {}
        out[name] = {"address": hv["ansible_host"], "pools": pools, "return_path": mailbox.get("bounce_address", "")}
    return out


def run(inventory: dict, world_dir: Path, password: str, per_group: int, user: str, timeout: float) -> dict:
    world = isp_world.load(world_dir)
    by_ip: dict[str, dict] = {}
    by_pool: dict[str, dict] = {}
    expected = set()
    for host, info in fleet(inventory).items():
        for pool, members in sorted(info["pools"].items()):
            if not pool:
                continue
            recipients = []
            for group in world["groups"]:
                domain = group["domains"][0]
                recipients += ["user%d-%s@%s" % (n, uuid.uuid4().hex[:8], domain) for n in range(per_group)]
                if group["name"] == "gmail":
                    recipients += ["unknown-%s@%s" % (uuid.uuid4().hex[:8], domain),
                                   "complain-%s@%s" % (uuid.uuid4().hex[:8], domain)]
            results = injector.inject(info["address"], recipients, user=user, password=password, pool=pool,
                                      campaign="lab-campaign", return_path=info["return_path"])
            for item in results:
                if item["refused"] or item["error"]:
                    raise SystemExit("lab campaign: %s refused %s: %s" % (host, item["rcpt"], item))
                group = next(g["name"] for g in world["groups"]
                             if item["rcpt"].endswith("@" + g["domains"][0]))
                key = "%s/%s" % (host, pool)
                by_pool.setdefault(key, {}).setdefault(group, 0)
                by_pool[key][group] += 1
                if len(members) == 1:
                    by_ip.setdefault(members[0][1], {}).setdefault(group, 0)
                    by_ip[members[0][1]][group] += 1
                if not item["rcpt"].startswith("unknown-"):
                    expected.add(item["rcpt"])
    summary = {"by_ip": by_ip, "by_pool": by_pool, "messages": sum(sum(g.values()) for g in by_pool.values())}
    # Counts since the ISP side started (isp_world up removes the file), like the sinks' counts and the hosts'
    # accounting files, so a second `make lab` on the running lab shows the same totals in every column.
    totals_path = world_dir / "injected.json"
    try:
        previous = json.loads(totals_path.read_text())
    except (OSError, ValueError):
        previous = {}
    totals = {"messages": summary["messages"] + previous.get("messages", 0)}
    for part in ("by_ip", "by_pool"):
        merged = {key: dict(counts) for key, counts in previous.get(part, {}).items()}
        for key, counts in summary[part].items():
            for group, count in counts.items():
                merged.setdefault(key, {})[group] = merged.get(key, {}).get(group, 0) + count
        totals[part] = merged
    totals_path.write_text(json.dumps(totals, indent=1, sort_keys=True) + "\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = set()
        for group in world["groups"]:
            for message in isp_world_messages(world_dir, group["name"]):
                seen.update(message["rcpts"])
        missing = expected - seen
        if not missing:
            break
        time.sleep(2)
    else:
        summary["missing"] = sorted(missing)
    return summary


def wait_for_mailbox(inventory: dict, world_dir: Path, mailbox_json: Path, timeout: float) -> dict:
    """Wait until the mailbox agrees with the sinks (lab_mailbox.compare); the comparison at the end."""
    domains = sorted({info["return_path"].rpartition("@")[2] for info in fleet(inventory).values()
                      if info["return_path"]})
    login = json.loads(mailbox_json.read_text())
    return lab_mailbox.wait_until_agree(world_dir, login, domains, timeout)


def isp_world_messages(world_dir: Path, group: str) -> list[dict]:
    path = world_dir / "sinks" / group / "messages.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Inject the lab's small campaign and wait for it.")
    parser.add_argument("--inventory", required=True, type=Path, help="ansible-inventory --list JSON")
    parser.add_argument("--world", required=True, type=Path, help="the ISP world directory (isp_world.py)")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--user", default="mumara")
    parser.add_argument("--per-group", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--mailbox-json", type=Path, default=None, help="the injector's mailbox (lab_mailbox.py)")
    args = parser.parse_args(argv)
    with open(args.password_file) as fh:
        password = fh.read().strip()
    summary = run(json.loads(args.inventory.read_text()), args.world, password, args.per_group, args.user,
                  args.timeout)
    if summary.get("missing"):
        print("lab campaign: %d message(s) never reached their sink: %s"
              % (len(summary["missing"]), ", ".join(summary["missing"][:5])), file=sys.stderr)
        return 1
    print("lab campaign: %d message(s) injected; every ordinary one reached its ISP sink" % summary["messages"])
    if args.mailbox_json is not None:
        inventory = json.loads(args.inventory.read_text())
        result = wait_for_mailbox(inventory, args.world, args.mailbox_json, args.timeout)
        if not result["agree"]:
            print("lab campaign: the injector's mailbox does not agree with the ISP sinks: missing %s, unexpected %s, "
                  "duplicates %s" % (result["missing"], result["unexpected"],
                                     {g: r["duplicates"] for g, r in result["groups"].items() if r["duplicates"]}),
                  file=sys.stderr)
            return 1
        print("lab campaign: the injector's mailbox holds every DSN and ARF report the ISP sinks caused, once each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
