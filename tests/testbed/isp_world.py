# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ISP side of the lab: recipient domains under .test, their zones, and one sink per ISP group.

Network (everything on the bench's own links, 198.18.0.0/15, no route out)::

    netns isp-W-hub: bridge br0 ------------------------------------------+
      |- veth to the root netns: NET.1 (the lab's BIND 9 answers here, port 53)
      |- veth to netns isp-W-gmail: NET.11 (aiosmtpd sink, port 25)   ... one per ISP group
      |- veth to netns isp-W-mailbox: NET.30 (Postfix 25 + Dovecot IMAP 143: lab_mailbox.py), with --mailbox-json
      |- veth "isp0" into each attached bench host's netns: NET.101, NET.102, ...

Sinks reach the fleet's vMTA addresses (203.0.113.0/24, 198.51.100.0/24, 192.0.2.0/24) and the bench
hosts' own addresses on-link: the host's namespace answers ARP for every address it owns, so mail leaves
a host from the vMTA's IP over ``isp0`` and replies come back the same way.

CLI (root; the venv's python, which has aiosmtpd)::

    isp_world.py up --dir DIR --name lab --net 198.19.254.0/24   # netns, zones (DIR/zones), sinks
        [--mailbox-json F --mailbox-domain bounces.example.com]     # + the injector's mailbox (NET.30)
    isp_world.py attach --dir DIR BENCH_HOST...                     # isp0 + /etc/resolv.conf in each
    isp_world.py policy --dir DIR GROUP throttle=3 window=3600 complaint_share=0.1
    isp_world.py counts --dir DIR [--json]                          # per group x source IP
    isp_world.py down --dir DIR

BIND 9 serves DIR/zones with ``bind9.py start --extra-zones-dir DIR/zones --also-listen NET.1``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The lab's ISP groups: recipient domains under .test whose MX host names match the lab's rollup
# patterns, and each provider's real throttling reply (matched by that group's throttle patterns in
# plugins/module_utils/_fleet/isp_groups.py; tests/unit/testbed/test_isp_world.py checks it). The lab
# inventories map the ISP groups to these names (powermta_isp_groups in group_vars).
LAB_ISPS = [
    {
        "name": "gmail", "domains": ["gmail.test", "googlemail.test"],
        "mx_host": "gmail-smtp-in.l.google.test", "mx_patterns": ["*.google.test"],
        "throttle_reply": "421 4.7.28 [{ip}] Our system has detected an unusual rate of unsolicited mail "
                          "originating from your IP address. To protect our users from spam, mail sent from "
                          "your IP address has been temporarily rate limited.",
    },
    {
        "name": "yahoo", "domains": ["yahoo.test", "aol.test"],
        "mx_host": "mta5.am0.yahoodns.test", "mx_patterns": ["*.yahoodns.test"],
        "throttle_reply": "421 4.7.0 [TSS04] Messages from {ip} temporarily deferred due to unexpected volume "
                          "or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    },
    {
        "name": "microsoft", "domains": ["outlook.test", "hotmail.test"],
        "mx_host": "hotmail-test.olc.protection.outlook.test",
        "mx_patterns": ["*.olc.protection.outlook.test", "*.mail.protection.outlook.test"],
        "throttle_reply": "451 4.7.650 The mail server [{ip}] has been temporarily rate limited due to IP "
                          "reputation. For e-mail delivery information, see https://aka.ms/postmaster (S775)",
    },
    {
        "name": "apple", "domains": ["icloud.test", "me.test"],
        "mx_host": "mx01.mail.icloud.test", "mx_patterns": ["*.mail.icloud.test"],
        "throttle_reply": "421 4.7.0 [HCM1] Your mail from {ip} was deferred due to volume; try again later",
    },
    {
        "name": "comcast", "domains": ["comcast.test"],
        "mx_host": "mx1.comcast.test", "mx_patterns": ["*.comcast.test"],
        "throttle_reply": "421 4.1.0 {ip} Throttled - try again later. Please see "
                          "https://postmaster.comcast.net/smtp-error-codes.php#RL000001",
    },
    {
        "name": "other", "domains": ["other.test"],
        "mx_host": "mail.other.test", "mx_patterns": [],
        "throttle_reply": "421 4.7.0 {ip} rate limited: too many messages, try again later",
    },
]
ROUTED_PREFIXES = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
NAMESERVER = "ns1.example.test."


class WorldError(RuntimeError):
    pass


def run(cmd, check=True, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise WorldError("%s failed (%d): %s" % (" ".join(map(str, cmd)), result.returncode, output))
    return result


def netns(world: dict, what: str) -> str:
    return "isp-%s-%s" % (world["name"], what)


def _zone_of(host: str) -> str:
    return ".".join(host.split(".")[-2:])


def zone_texts(groups: list[dict], addresses: dict[str, str]) -> dict[str, str]:
    """Zone files: the MX of every recipient domain and the A record of every MX host."""
    records: dict[str, list[str]] = {}
    for group in groups:
        for domain in group["domains"]:
            records.setdefault(domain, []).append("%s. MX 10 %s." % (domain, group["mx_host"]))
        mx_address = "%s. A %s" % (group["mx_host"], addresses[group["name"]])
        records.setdefault(_zone_of(group["mx_host"]), []).append(mx_address)
    texts = {}
    for zone, lines in sorted(records.items()):
        head = ["$ORIGIN %s." % zone, "$TTL 60", "@ SOA %s hostmaster.example.test. (1 3600 900 604800 60)"
                % NAMESERVER, "@ NS %s" % NAMESERVER]
        texts[zone] = "\n".join(head + sorted(set(lines))) + "\n"
    return texts


def world_plan(name: str, net: str, fbl_address: str, groups=None) -> dict:
    network = ipaddress.ip_network(net)
    groups = [dict(g) for g in (groups or LAB_ISPS)]
    for index, group in enumerate(groups):
        group["address"] = str(network.network_address + 11 + index)
    return {
        "name": name, "net": str(network), "resolver": str(network.network_address + 1),
        "prefixlen": network.prefixlen, "fbl_address": fbl_address, "groups": groups, "hosts": {},
    }


def load(directory: Path) -> dict:
    try:
        return json.loads((directory / "world.json").read_text())
    except OSError as exc:
        raise WorldError("no ISP world in %s (run `isp_world.py up` first)" % directory) from exc


def save(directory: Path, world: dict) -> None:
    (directory / "world.json").write_text(json.dumps(world, indent=1) + "\n")


def _ns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _add_netns(world: dict, hub: str, what: str, hub_if: str, address: str) -> str:
    """A namespace on the hub's bridge with ``address`` on its eth0 and routes to the fleet's addresses."""
    ns = netns(world, what)
    prefix = "/%d" % world["prefixlen"]
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", hub, "link", "add", hub_if, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "-n", hub, "link", "set", hub_if, "master", "br0", "up"])
    run(["ip", "-n", ns, "addr", "add", address + prefix, "dev", "eth0"])
    run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    for routed in ROUTED_PREFIXES:
        run(["ip", "-n", ns, "route", "add", routed, "dev", "eth0"])
    return ns


def up(directory: Path, name: str, net: str, fbl_address: str, mailbox_json: Path | None = None,
       mailbox_domains: tuple = ()) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "world.json").exists():
        down(directory)
    world = world_plan(name, net, fbl_address)
    # A new world starts with empty sinks: counts of an earlier run would not match new hosts' accounting.
    shutil.rmtree(directory / "sinks", ignore_errors=True)
    (directory / "injected.json").unlink(missing_ok=True)
    save(directory, world)
    zones = directory / "zones"
    zones.mkdir(exist_ok=True)
    for old in zones.glob("db.*"):
        old.unlink()
    for zone, text in zone_texts(world["groups"], {g["name"]: g["address"] for g in world["groups"]}).items():
        (zones / ("db." + zone)).write_text(text)
    hub = netns(world, "hub")
    prefix = "/%d" % world["prefixlen"]
    run(["ip", "netns", "add", hub])
    run(["ip", "-n", hub, "link", "set", "lo", "up"])
    run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", hub, "link", "set", "br0", "up"])
    root_if = "isp%s0" % name[:8]
    run(["ip", "link", "add", root_if, "type", "veth", "peer", "name", "root", "netns", hub])
    run(["ip", "addr", "add", world["resolver"] + prefix, "dev", root_if])
    run(["ip", "link", "set", root_if, "up"])
    run(["ip", "-n", hub, "link", "set", "root", "master", "br0", "up"])
    for index, group in enumerate(world["groups"]):
        _add_netns(world, hub, group["name"], "s%d" % index, group["address"])
    for group in world["groups"]:
        _start_sink(directory, world, group)
    if mailbox_json is not None:
        start_mailbox(directory, world, hub, mailbox_json, mailbox_domains)
    return world


def start_mailbox(directory: Path, world: dict, hub: str, mailbox_json: Path, domains: tuple) -> dict:
    """The injector's mailbox (lab_mailbox.py: Postfix + Dovecot) in netns isp-W-mailbox at NET.30; its
    IMAP login goes to ``mailbox_json`` (host, port, user, password; mode 0600)."""
    sys.path.insert(0, str(HERE))
    import lab_mailbox  # noqa: E402 - next to this file

    address = str(ipaddress.ip_network(world["net"]).network_address + lab_mailbox.HOST_NUMBER)
    fbl_domain = world["fbl_address"].rpartition("@")[2].lower()
    wanted = list(dict.fromkeys([d.lower() for d in domains] + ([fbl_domain] if fbl_domain else [])))
    if not wanted:
        raise WorldError("the mailbox needs its domains (--mailbox-domain for each bounce domain)")
    world["mailbox"] = {"address": address, "domains": wanted, "json": str(mailbox_json)}
    save(directory, world)  # before it starts: `down` then stops whatever did start
    ns = _add_netns(world, hub, "mailbox", "mb0", address)
    login = lab_mailbox.start(world["name"], ns, address, wanted, "mailbox.%s" % wanted[0])
    mailbox_json.parent.mkdir(parents=True, exist_ok=True)
    mailbox_json.unlink(missing_ok=True)
    mailbox_json.touch(mode=0o600)
    mailbox_json.write_text(json.dumps(login, indent=1) + "\n")
    return login


def _start_sink(directory: Path, world: dict, group: dict) -> None:
    sink_dir = directory / "sinks" / group["name"]
    sink_dir.mkdir(parents=True, exist_ok=True)
    (sink_dir / "ready").unlink(missing_ok=True)
    with open(sink_dir / "sink.log", "ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", netns(world, group["name"]), sys.executable, str(HERE / "isp_sinks.py"),
             "serve", "--dir", str(directory), "--group", group["name"]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    (sink_dir / "pid").write_text("%d\n" % proc.pid)
    deadline = time.monotonic() + 30
    while not (sink_dir / "ready").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise WorldError("sink %s did not start:\n%s" % (group["name"],
                                                             (sink_dir / "sink.log").read_text()[-2000:]))
        time.sleep(0.1)


def attach(directory: Path, hosts: list[str]) -> dict:
    """Give each bench host an ``isp0`` link into the hub and the lab's BIND 9 as its resolver."""
    sys.path.insert(0, str(HERE))
    import tb_hosts  # noqa: E402 - the bench's own module, next to this file

    world = load(directory)
    hub = netns(world, "hub")
    network = ipaddress.ip_network(world["net"])
    for host in hosts:
        state = tb_hosts.read_state(host)
        if not state or state.get("kind") != "nspawn":
            raise WorldError("%s: not a running nspawn bench host" % host)
        host_ns = state["netns"]
        if host not in world["hosts"]:
            used = set(world["hosts"].values())
            world["hosts"][host] = next(str(network.network_address + n) for n in range(101, 250)
                                        if str(network.network_address + n) not in used)
        address = world["hosts"][host]
        hub_if = "h%d" % (int(ipaddress.ip_address(address)) - int(network.network_address))
        run(["ip", "-n", host_ns, "link", "del", "isp0"], check=False)
        run(["ip", "-n", hub, "link", "del", hub_if], check=False)
        run(["ip", "-n", hub, "link", "add", hub_if, "type", "veth", "peer", "name", "isp0", "netns", host_ns])
        run(["ip", "-n", hub, "link", "set", hub_if, "master", "br0", "up"])
        run(["ip", "-n", host_ns, "addr", "add", "%s/%d" % (address, world["prefixlen"]), "dev", "isp0"])
        run(["ip", "-n", host_ns, "link", "set", "isp0", "up"])
        resolv = "# The lab's BIND 9 (tests/testbed/isp_world.py)\nnameserver %s\n" % world["resolver"]
        run(tb_hosts.ssh_command(state, "rm -f /etc/resolv.conf && cat > /etc/resolv.conf"), input=resolv)
        save(directory, world)
    return world


def set_policy(directory: Path, group: str, settings: dict) -> dict:
    sink_dir = directory / "sinks" / group
    if not sink_dir.is_dir():
        raise WorldError("no sink %r in %s" % (group, directory))
    path = sink_dir / "policy.json"
    policy = json.loads(path.read_text()) if path.exists() else {}
    policy.update(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(policy, indent=1) + "\n")
    tmp.rename(path)
    return policy


def counts(directory: Path) -> dict:
    """{group: {source_ip: {accepted, deferred, rejected}}} summed over days."""
    world = load(directory)
    out = {}
    for group in world["groups"]:
        try:
            data = json.loads((directory / "sinks" / group["name"] / "counts.json").read_text())
        except (OSError, ValueError):
            data = {"by_ip": {}}
        per_ip = {}
        for ip, days in data.get("by_ip", {}).items():
            total = per_ip.setdefault(ip, {"accepted": 0, "deferred": 0, "rejected": 0})
            for day in days.values():
                for key, value in day.items():
                    total[key] = total.get(key, 0) + value
        out[group["name"]] = per_ip
    return out


def down(directory: Path) -> None:
    try:
        world = load(directory)
    except WorldError:
        return
    for group in world["groups"]:
        pid_file = directory / "sinks" / group["name"] / "pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path("/proc/%d" % pid).exists():
            time.sleep(0.1)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink(missing_ok=True)
    if world.get("mailbox"):
        sys.path.insert(0, str(HERE))
        import lab_mailbox  # noqa: E402 - next to this file

        lab_mailbox.remove(world["name"])
        Path(world["mailbox"]["json"]).unlink(missing_ok=True)
    for what in [group["name"] for group in world["groups"]] + ["mailbox"]:
        if _ns_exists(netns(world, what)):
            run(["ip", "netns", "del", netns(world, what)], check=False)
    if _ns_exists(netns(world, "hub")):
        run(["ip", "netns", "del", netns(world, "hub")], check=False)
    run(["ip", "link", "del", "isp%s0" % world["name"][:8]], check=False)


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The ISP side of the lab (sinks, zones, links).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--dir", required=True, type=Path)
    p_up.add_argument("--name", default="lab", help="short world name (netns isp-NAME-*)")
    p_up.add_argument("--net", default="198.19.254.0/24")
    p_up.add_argument("--fbl-address", default="fbl@fbl.example.com")
    p_up.add_argument("--mailbox-json", type=Path, default=None,
                      help="also start the injector's mailbox and write its IMAP login here")
    p_up.add_argument("--mailbox-domain", action="append", default=[],
                      help="a bounce domain the mailbox takes mail for (the FBL address's domain is added)")
    p_attach = sub.add_parser("attach")
    p_attach.add_argument("--dir", required=True, type=Path)
    p_attach.add_argument("hosts", nargs="+")
    p_policy = sub.add_parser("policy")
    p_policy.add_argument("--dir", required=True, type=Path)
    p_policy.add_argument("group")
    p_policy.add_argument("settings", nargs="*", help="KEY=VALUE (throttle, window, complaint_share, dsn_delay)")
    p_counts = sub.add_parser("counts")
    p_counts.add_argument("--dir", required=True, type=Path)
    p_counts.add_argument("--json", action="store_true")
    p_down = sub.add_parser("down")
    p_down.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            world = up(args.dir, args.name, args.net, args.fbl_address, args.mailbox_json,
                       tuple(args.mailbox_domain))
            print(json.dumps({"resolver": world["resolver"], "zones": str(args.dir / "zones"),
                              "sinks": {g["name"]: g["address"] for g in world["groups"]},
                              "mailbox": world.get("mailbox", {}).get("address", "")}))
        elif args.command == "attach":
            print(json.dumps(attach(args.dir, args.hosts)["hosts"]))
        elif args.command == "policy":
            settings = dict(item.split("=", 1) for item in args.settings)
            print(json.dumps(set_policy(args.dir, args.group, {k: _value(v) for k, v in settings.items()})))
        elif args.command == "counts":
            data = counts(args.dir)
            if args.json:
                print(json.dumps(data, indent=1, sort_keys=True))
            else:
                print("%-10s %-16s %9s %9s %9s" % ("ISP", "source IP", "accepted", "deferred", "rejected"))
                for group, per_ip in data.items():
                    for ip, total in sorted(per_ip.items()):
                        print("%-10s %-16s %9d %9d %9d" % (group, ip, total.get("accepted", 0),
                                                           total.get("deferred", 0), total.get("rejected", 0)))
        else:
            down(args.dir)
    except (WorldError, RuntimeError) as exc:  # RuntimeError: lab_mailbox.MailboxError
        print("isp_world: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
