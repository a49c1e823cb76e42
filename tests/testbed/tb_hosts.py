# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench hosts: systemd-nspawn containers and QEMU VMs booted from the bench image.

Every resource a host owns is named after the host, so `down NAME` removes it even when the
state file of a crashed run is gone:
  STATE_DIR/hosts/NAME/      state.json, overlay layers, disks, logs
  netns mtb-NAME, veth mtb<8 hex>   (nspawn)
  processes whose root or command line lies under STATE_DIR/hosts/NAME/
  loop devices backed by files under STATE_DIR/hosts/NAME/
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import tb_image
from tb_image import STATE_DIR, log, run

HOSTS_DIR = STATE_DIR / "hosts"
# Automatic nspawn networks: one /30 each from 198.18.0.0/16; 198.19.0.0/16 is kept for fixed
# addresses (the lab inventory), so the two never collide.
AUTO_NET = ipaddress.ip_network("198.18.0.0/16")
BENCH_NET = ipaddress.ip_network("198.18.0.0/15")
QEMU_PORT_BASE = 22200
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
SIZE_RE = re.compile(r"^\d+[KMGT]?$")
SSH_OPTS = [
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3",
]
# Generous: a QEMU boot takes ~25 s on an idle 2-core machine but minutes when it is busy.
BOOT_TIMEOUT = {
    "nspawn": int(os.environ.get("MAILOPS_TESTBED_NSPAWN_TIMEOUT", "120")),
    "qemu": int(os.environ.get("MAILOPS_TESTBED_QEMU_TIMEOUT", "600")),
}


class BenchError(Exception):
    pass


# ------------------------------------------------------------------ naming
def host_dir(name: str) -> Path:
    return HOSTS_DIR / name


def netns_name(name: str) -> str:
    return f"mtb-{name}"


def veth_name(name: str) -> str:
    return "mtb" + hashlib.sha1(name.encode()).hexdigest()[:8]


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise BenchError(f"host name {name!r}: use 1-31 lowercase letters, digits and '-', starting alphanumeric")
    return name


def read_state(name: str) -> dict | None:
    try:
        return json.loads((host_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def write_state(state: dict) -> None:
    path = host_dir(state["name"]) / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.rename(path)


def all_states() -> list[dict]:
    if not HOSTS_DIR.exists():
        return []
    return [s for s in (read_state(p.name) for p in sorted(HOSTS_DIR.iterdir()) if p.is_dir()) if s]


# ------------------------------------------------------------------ spec
def normalize_spec(spec: dict) -> dict:
    """Validate one host description (a Molecule platform or CLI arguments)."""
    name = check_name(str(spec.get("name", "")))
    kind = spec.get("kind", "nspawn")
    if kind not in ("nspawn", "qemu"):
        raise BenchError(f"{name}: kind must be 'nspawn' or 'qemu', not {kind!r}")
    hostname = str(spec.get("hostname") or name)
    if not NAME_RE.match(hostname):
        raise BenchError(f"{name}: hostname {hostname!r} must be a simple lowercase host name")
    out = {"name": name, "kind": kind, "hostname": hostname, "memory_mb": int(spec.get("memory_mb") or 1024)}
    nvme = spec.get("nvme_disks") or []
    loops = spec.get("loop_disks") or []
    extra = spec.get("extra_addresses") or []
    if kind == "nspawn" and nvme:
        raise BenchError(f"{name}: nvme_disks need kind: qemu (use loop_disks on nspawn hosts)")
    if kind == "qemu" and (loops or extra or spec.get("address")):
        raise BenchError(f"{name}: loop_disks, extra_addresses and address are for kind: nspawn only")
    for i, disk in enumerate(nvme):
        if not isinstance(disk, dict) or not disk.get("serial") or not SIZE_RE.match(str(disk.get("size", ""))):
            raise BenchError(f"{name}: nvme_disks[{i}] must be {{serial: NAME, size: 1G}}")
    for i, disk in enumerate(loops):
        if not isinstance(disk, dict) or not NAME_RE.match(str(disk.get("name", ""))) or not SIZE_RE.match(
                str(disk.get("size", ""))):
            raise BenchError(f"{name}: loop_disks[{i}] must be {{name: nvme0n1, size: 1G}} (name = /dev/NAME inside)")
    for addr in extra:
        try:
            ipaddress.ip_interface(addr)
        except ValueError as exc:
            raise BenchError(f"{name}: extra_addresses entry {addr!r} is not an IP address") from exc
    out.update(nvme_disks=nvme, loop_disks=loops, extra_addresses=[str(a) for a in extra])
    if spec.get("address"):
        addr = ipaddress.ip_address(spec["address"])
        net = ipaddress.ip_network(f"{addr}/30", strict=False)
        if addr not in BENCH_NET or addr != net.network_address + 2:
            raise BenchError(f"{name}: address {addr} must lie in {BENCH_NET} and be the 2nd host of its /30 "
                             f"(e.g. 198.19.0.2, 198.19.0.6)")
        out["address"] = str(addr)
    return out


# ------------------------------------------------------------------ allocation
def _local_addresses() -> set[str]:
    res = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True)
    return {m.group(1) for m in re.finditer(r"inet (\S+)/", res.stdout)}


def allocate(spec: dict) -> dict:
    """Reserve an address (nspawn) or a port (qemu) and write the host's first state file."""
    with tb_image.lock("hosts"):
        states = [s for s in all_states() if s["name"] != spec["name"]]
        state = dict(spec, status="starting", created=time.time())
        if spec["kind"] == "nspawn":
            used = {s.get("address") for s in states} | _local_addresses()
            if spec.get("address"):
                guest = ipaddress.ip_address(spec["address"])
                if str(guest) in used or str(guest - 1) in used:
                    raise BenchError(f"{spec['name']}: address {guest} is already used by another bench host")
            else:
                for net in AUTO_NET.subnets(new_prefix=30):
                    if net.network_address == AUTO_NET.network_address:
                        continue
                    guest = net.network_address + 2
                    if str(guest) not in used and str(guest - 1) not in used:
                        break
                else:
                    raise BenchError("no free bench network left in 198.18.0.0/16")
            state.update(address=str(guest), gateway=str(guest - 1), port=22,
                         netns=netns_name(spec["name"]), veth=veth_name(spec["name"]))
        else:
            used_ports = {s.get("port") for s in states}
            port = QEMU_PORT_BASE
            while port in used_ports or not _port_free(port):
                port += 1
            state.update(address="127.0.0.1", port=port)
        hdir = host_dir(spec["name"])
        hdir.mkdir(parents=True, exist_ok=True)
        write_state(state)
        return state


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ------------------------------------------------------------------ up
def up(spec: dict, image: Path | None = None) -> dict:
    spec = normalize_spec(spec)
    image = image or tb_image.current_image()
    if image is None:
        raise BenchError("no bench image for the current recipe: run `tests/testbed/testbed.py image` first")
    name = spec["name"]
    started = time.monotonic()
    down(name, quiet=True)  # stale state of a failed earlier run
    state = allocate(spec)
    state["image"] = image.name
    try:
        if spec["kind"] == "nspawn":
            _start_nspawn(state, image)
        else:
            _start_qemu(state, image)
        write_state(state)
        _wait_ssh(state)
        if spec["kind"] == "nspawn":
            _settle_boot(state)
    except BaseException:
        log(f"{name}: start failed, removing it")
        with contextlib.suppress(Exception):
            _log_tail(state)
        down(name, quiet=True)
        raise
    state["status"] = "running"
    state["boot_seconds"] = round(time.monotonic() - started, 1)
    write_state(state)
    log(f"{name}: {spec['kind']} host up at {state['address']}:{state['port']} in {state['boot_seconds']} s")
    return state


def instance_config(state: dict) -> dict:
    return {
        "instance": state["name"],
        "address": state["address"],
        "port": state["port"],
        "user": "root",
        "identity_file": str(tb_image.KEY_FILE),
        "kind": state["kind"],
    }


def _start_nspawn(state: dict, image: Path) -> None:
    name, hdir = state["name"], host_dir(state["name"])
    ns, veth = state["netns"], state["veth"]
    for sub in ("upper", "work", "root"):
        (hdir / sub).mkdir(exist_ok=True)
    root = hdir / "root"
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={image / 'rootfs'},upperdir={hdir / 'upper'},workdir={hdir / 'work'}", str(root)])
    (root / "etc/hostname").write_text(state["hostname"] + "\n")
    run(["ip", "netns", "add", ns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "host0", "netns", ns])
    run(["ip", "addr", "add", f"{state['gateway']}/30", "dev", veth])
    run(["ip", "link", "set", veth, "up"])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])
    run(["ip", "-n", ns, "addr", "add", f"{state['address']}/30", "dev", "host0"])
    for extra in state["extra_addresses"]:
        iface = ipaddress.ip_interface(extra)
        prefix = iface.network.prefixlen if "/" in extra else iface.max_prefixlen
        run(["ip", "-n", ns, "addr", "add", f"{iface.ip}/{prefix}", "dev", "host0"])
    run(["ip", "-n", ns, "link", "set", "host0", "up"])
    binds = []
    for disk in state["loop_disks"]:
        backing = hdir / f"loop-{disk['name']}.img"
        run(["truncate", "-s", str(disk["size"]), str(backing)])
        dev = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True, capture_output=True,
                             text=True).stdout.strip()
        disk["device"] = dev
        binds.append(f"--bind={dev}:/dev/{disk['name']}")
    cmd = [
        "systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit", "--machine", state["hostname"],
        "-D", str(root), f"--network-namespace-path=/run/netns/{ns}", "--console=passive",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", *binds,
    ]
    state["command"] = cmd
    write_state(state)  # the supervisor reads the command from here
    log_file = open(hdir / "console.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / "testbed.py"), "_supervise", name],
        stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network"),
    )
    log_file.close()
    state["pid"] = proc.pid


def supervise(name: str) -> int:
    """Run the nspawn container of NAME; restart it when the guest reboots (exit code 133)."""
    state = read_state(name)
    if not state:
        return 1
    child: subprocess.Popen | None = None

    def forward(signum, _frame):
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        child = subprocess.Popen(state["command"])
        try:
            rc = child.wait()
        except SystemExit:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=15)
            if child.poll() is None:
                child.kill()
            raise
        if rc != 133:
            return rc
        print(f"[testbed] {name}: guest rebooted, starting it again", flush=True)


def _start_qemu(state: dict, image: Path) -> None:
    name, hdir = state["name"], host_dir(state["name"])
    overlay = hdir / "root.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image / "base.raw"), str(overlay)])
    cmd = [
        "qemu-system-x86_64", "-name", name, "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
        "-smp", "2", "-m", str(state["memory_mb"]), "-nodefaults", "-display", "none",
        "-serial", f"file:{hdir / 'console.log'}", "-pidfile", str(hdir / "qemu.pid"),
        "-kernel", str(image / "vmlinuz"), "-initrd", str(image / "initrd.img"),
        "-append", f"root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.hostname={state['hostname']} quiet",
        "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{state['port']}-:22",
        "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
    ]
    for i, disk in enumerate(state["nvme_disks"]):
        backing = hdir / f"nvme-{disk['serial']}.img"
        run(["truncate", "-s", str(disk["size"]), str(backing)])
        cmd += ["-drive", f"file={backing},if=none,id=nvme{i},format=raw,cache=unsafe",
                "-device", f"nvme,serial={disk['serial']},drive=nvme{i}"]
    state["command"] = cmd
    log_file = open(hdir / "qemu.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log_file.close()
    state["pid"] = proc.pid


def ssh_command(state: dict, *remote: str) -> list[str]:
    return ["ssh", *SSH_OPTS, "-i", str(tb_image.KEY_FILE), "-p", str(state["port"]),
            f"root@{state['address']}", *remote]


def _wait_ssh(state: dict) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT[state["kind"]]
    while time.monotonic() < deadline:
        if not _alive(state.get("pid")):
            raise BenchError(f"{state['name']}: the {state['kind']} process exited during boot "
                             f"(see {host_dir(state['name'])}/console.log)")
        if _tcp_open(state["address"], state["port"]):
            res = subprocess.run(ssh_command(state, "true"), capture_output=True, timeout=30, check=False)
            if res.returncode == 0:
                return
        time.sleep(0.3)
    raise BenchError(f"{state['name']}: no SSH after {BOOT_TIMEOUT[state['kind']]} s "
                     f"(see {host_dir(state['name'])}/console.log)")


# Boot-time record and remount oneshots that have failed now and then in a container under load (twice in CI-like
# runs: "degraded" with only one of them failed). They are retried once; their journal is kept for the cause.
BOOT_ONESHOTS_RETRIED = ("systemd-update-utmp-runlevel.service", "systemd-update-utmp.service",
                         "systemd-remount-fs.service")


def _settle_boot(state: dict) -> None:
    """Wait for the boot to finish; a failed boot oneshot of the list above is logged and started once more."""
    try:
        res = subprocess.run(ssh_command(state, "systemctl is-system-running --wait"), capture_output=True,
                             text=True, timeout=BOOT_TIMEOUT[state["kind"]], check=False)
    except subprocess.TimeoutExpired:
        return  # a boot still running is the tests' to judge
    if res.stdout.strip() != "degraded":
        return
    failed = subprocess.run(ssh_command(state, "systemctl --failed --no-legend --plain"), capture_output=True,
                            text=True, timeout=30, check=False).stdout.split()
    units = [unit for unit in failed if unit.endswith(".service")]
    if not units or any(unit not in BOOT_ONESHOTS_RETRIED for unit in units):
        return  # anything else stays failed, for the tests to see
    journal = subprocess.run(ssh_command(state, "journalctl -b --no-pager -u " + " -u ".join(units)),
                             capture_output=True, text=True, timeout=30, check=False).stdout
    (host_dir(state["name"]) / "boot-retried.log").write_text(journal)
    log(f"{state['name']}: {', '.join(units)} failed at boot (journal in {host_dir(state['name'])}/boot-retried.log);"
        " started once more")
    subprocess.run(ssh_command(state, "systemctl restart " + " ".join(units)), capture_output=True, timeout=60,
                   check=False)


def _tcp_open(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(4).startswith(b"SSH")
    except OSError:
        return False


def _log_tail(state: dict) -> None:
    path = host_dir(state["name"]) / "console.log"
    if path.exists():
        lines = path.read_text(errors="replace").splitlines()[-25:]
        log(f"{state['name']}: last console lines:\n" + "\n".join(lines))


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------ down
def host_processes(name: str) -> list[int]:
    """PIDs of processes that belong to host NAME: rooted in its overlay or started on its files."""
    hdir = str(host_dir(name))
    root = hdir + "/root"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            proc_root = os.readlink(f"/proc/{entry}/root")
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")
        except OSError:
            continue
        if proc_root == root or proc_root.startswith(root + "/"):
            pids.append(int(entry))
        elif any(arg.startswith(hdir.encode() + b"/") or arg == hdir.encode() for arg in cmdline):
            pids.append(int(entry))
        elif b"_supervise" in cmdline and name.encode() in cmdline and any(b"testbed.py" in a for a in cmdline):
            pids.append(int(entry))
    return pids


def _rooted_in(pid: int, root: Path) -> bool:
    try:
        proc_root = os.readlink(f"/proc/{pid}/root")
    except OSError:
        return False
    return proc_root == str(root) or proc_root.startswith(f"{root}/")


def host_mounts(name: str) -> list[str]:
    hdir = str(host_dir(name))
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == hdir or point.startswith(hdir + "/"):
                mounts.append(point)
    return mounts


def host_loop_devices(name: str) -> list[str]:
    hdir = str(host_dir(name))
    res = subprocess.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
                         capture_output=True, text=True, check=False)
    devs = []
    for line in res.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip().startswith(hdir + "/"):
            devs.append(parts[0])
    return devs


def link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", "dev", name], capture_output=True, check=False).returncode == 0


def netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def leftovers(name: str) -> dict:
    """Everything of host NAME still present on this machine (empty when it is fully gone)."""
    found = {
        "processes": host_processes(name),
        "mounts": host_mounts(name),
        "loop_devices": host_loop_devices(name),
        "netns": [netns_name(name)] if netns_exists(netns_name(name)) else [],
        "links": [veth_name(name)] if link_exists(veth_name(name)) else [],
        "files": [str(host_dir(name))] if host_dir(name).exists() else [],
    }
    return {k: v for k, v in found.items() if v}


def _terminate(pids: list[int], timeout: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def down(name: str, quiet: bool = False) -> None:
    check_name(name)
    state = read_state(name) or {}
    hdir = host_dir(name)
    if not quiet or leftovers(name):
        log(f"{name}: removing")
    # 1. processes: the supervisor/QEMU first (clean shutdown), then whatever is left in the host.
    main_pids = [p for p in [state.get("pid")] if p and p in host_processes(name)]
    if main_pids:
        _terminate(main_pids, timeout=10)
    # Without state (a crash): stop nspawn/QEMU themselves before what runs inside them.
    outer = [p for p in host_processes(name) if not _rooted_in(p, host_dir(name) / "root")]
    if outer:
        _terminate(outer, timeout=10)
    for _attempt in range(3):
        rest = host_processes(name)
        if not rest:
            break
        _terminate(rest, timeout=3)
    # 2. mounts (deepest first), 3. loop devices, 4. network, 5. files.
    for point in sorted(host_mounts(name), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", point], check=False)
    for dev in host_loop_devices(name):
        subprocess.run(["losetup", "-d", dev], check=False)
    if netns_exists(netns_name(name)):
        subprocess.run(["ip", "netns", "del", netns_name(name)], check=False)
    if link_exists(veth_name(name)):  # usually gone with its namespace already
        subprocess.run(["ip", "link", "del", veth_name(name)], check=False, capture_output=True)
    if hdir.exists():
        if host_mounts(name):
            raise BenchError(f"{name}: {host_mounts(name)} still mounted; not removing {hdir}")
        subprocess.run(["rm", "-rf", "--one-file-system", str(hdir)], check=True)
    rest = leftovers(name)
    if rest:
        raise BenchError(f"{name}: could not remove {rest}")


def stale_names() -> list[str]:
    """Host names with anything left on this machine: state dirs and mtb-* namespaces."""
    names = set()
    if HOSTS_DIR.exists():
        names |= {p.name for p in HOSTS_DIR.iterdir() if p.is_dir()}
    if Path("/run/netns").exists():
        names |= {p.name[4:] for p in Path("/run/netns").iterdir() if p.name.startswith("mtb-")}
    return sorted(n for n in names if NAME_RE.match(n))


# ------------------------------------------------------------------ many
def up_many(specs: list[dict]) -> list[dict]:
    """Start hosts in parallel; on any failure remove all of them and raise."""
    specs = [normalize_spec(s) for s in specs]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise BenchError(f"duplicate host names in {names}")
    image = tb_image.build_image()
    results: dict[str, dict] = {}
    errors: dict[str, BaseException] = {}

    def start(spec):
        try:
            results[spec["name"]] = up(spec, image)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors[spec["name"]] = exc

    threads = [threading.Thread(target=start, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for name in names:
            with contextlib.suppress(Exception):
                down(name, quiet=True)
        raise BenchError("; ".join(f"{n}: {e}" for n, e in errors.items()))
    return [results[n] for n in names]


def down_many(names: list[str]) -> None:
    errors = []
    threads = []

    def stop(name):
        try:
            down(name)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{name}: {exc}")

    for name in names:
        threads.append(threading.Thread(target=stop, args=(name,)))
        threads[-1].start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError("; ".join(errors))


def images_in_use() -> set[str]:
    return {s["image"] for s in all_states() if s.get("image")}
