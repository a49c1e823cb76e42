# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench's host image: one debootstrap tree shared by nspawn and QEMU hosts.

This file *is* the image recipe: its content and image-packages.txt are hashed into the
cache key, so editing either rebuilds the image and nothing else does.
Layout of one image under STATE_DIR/images/<hash>/:
  rootfs/      the tree (nspawn hosts mount it as the overlay's lower layer)
  base.raw     ext4 made from the tree (QEMU hosts boot a qcow2 overlay of it)
  vmlinuz, initrd.img, recipe.json
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("MAILOPS_TESTBED_STATE", "/var/lib/mailops-testbed"))
IMAGES_DIR = STATE_DIR / "images"
KEY_FILE = STATE_DIR / "ssh" / "id_ed25519"
PACKAGES_FILE = HERE / "image-packages.txt"
SUITE = "bookworm"

# debootstrap's own set stays small (its resolver is simple); the rest comes from apt in the chroot.
BOOTSTRAP_INCLUDE = ["systemd", "systemd-sysv", "python3", "iproute2", "procps", "sudo", "dbus"]
# QEMU hosts boot the image's own kernel; the initramfs holds only what finds the root disk.
KERNEL_PACKAGES = ["linux-image-amd64", "initramfs-tools"]
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "nvme", "ext4", "crc32c_generic"]
# Units that only slow a test host's boot down (no network, no timers wanted).
MASKED_UNITS = [
    "systemd-networkd-wait-online.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "nvmf-autoconnect.service",
    "getty@tty1.service",
    "console-getty.service",
    "systemd-timesyncd.service",
    "man-db.timer",
]
# Services the image's packages enable that a role must switch on itself (as on a fresh host after
# `apt install`, minus the start): they would fail or run needlessly on every test host.
DISABLED_UNITS = ["unbound.service", "unbound-resolvconf.service", "prometheus-node-exporter.service"]
# QEMU user networking always gives the guest 10.0.2.15; no gateway, so no default route.
VM_NET_UNIT = """\
[Unit]
Description=Bench VM network (QEMU user net, no default route)
ConditionVirtualization=vm
Before=ssh.service network.target
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ip link set lo up
ExecStart=/usr/sbin/ip link set eth0 up
ExecStart=/usr/sbin/ip addr replace 10.0.2.15/24 dev eth0

[Install]
WantedBy=multi-user.target
"""
SSHD_CONFIG = """\
# Test bench: key-only root login, no reverse DNS (hosts have no resolver).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


def log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def packages() -> list[str]:
    names = []
    for line in PACKAGES_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def recipe_hash() -> str:
    h = hashlib.sha256()
    h.update("\n".join(packages()).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (MAILOPS_TESTBED_MIRROR overrides)."""
    if os.environ.get("MAILOPS_TESTBED_MIRROR"):
        return os.environ["MAILOPS_TESTBED_MIRROR"]
    candidates = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith((" ", "#")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                continue
            for uri in fields.get("uris", "").split():
                candidates.append((uri, fields.get("suites", "").split()))
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m:
                candidates.append((m.group(1), [m.group(2)]))
    for uri, suites in candidates:
        if SUITE in suites and "security" not in uri:
            return uri
    raise SystemExit(
        "testbed: no Debian bookworm mirror found in /etc/apt/sources.list*; "
        "set MAILOPS_TESTBED_MIRROR=http://<mirror>/debian"
    )


def ensure_key() -> Path:
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not KEY_FILE.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mailops-testbed", "-f", str(KEY_FILE)])
    return KEY_FILE


def current_image() -> Path | None:
    """The built image for the current recipe and key, or None."""
    img = IMAGES_DIR / recipe_hash()
    try:
        meta = json.loads((img / "recipe.json").read_text())
        pub = Path(str(KEY_FILE) + ".pub").read_text().strip()
    except (OSError, ValueError):
        return None
    return img if meta.get("ssh_public_key") == pub else None


@contextlib.contextmanager
def lock(name: str):
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def chroot_mounts(tree: Path):
    mounted = []
    try:
        for src, dst, args in [
            ("proc", "proc", ["-t", "proc"]),
            ("sysfs", "sys", ["-t", "sysfs"]),
            ("/dev", "dev", ["--bind"]),
            ("devpts", "dev/pts", ["-t", "devpts"]),
        ]:
            target = tree / dst
            target.mkdir(exist_ok=True)
            run(["mount", *args, src, str(target)])
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], check=False)


def chroot(tree: Path, *cmd: str, log_file: Path) -> None:
    """Run a command in the tree; its output goes to the build log, shown only on failure."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    with open(log_file, "ab") as fh:
        rc = subprocess.run(["chroot", str(tree), *cmd], env=env, stdout=fh, stderr=subprocess.STDOUT,
                            check=False).returncode
    if rc != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-30:]
        raise SystemExit(f"testbed: `{' '.join(cmd)}` failed in the image (rc={rc}):\n" + "\n".join(tail))


def configure_tree(tree: Path, pubkey: str) -> None:
    (tree / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (tree / "etc/ssh/sshd_config.d/mailops-testbed.conf").write_text(SSHD_CONFIG)
    ssh_dir = tree / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey + "\n")
    os.chmod(ssh_dir / "authorized_keys", 0o600)
    nss = (tree / "etc/nsswitch.conf").read_text()
    nss = re.sub(r"(?m)^hosts:.*$", "hosts:          files myhostname", nss)
    (tree / "etc/nsswitch.conf").write_text(nss)
    units = tree / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = units / unit
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")
    (units / "mailops-testbed-vmnet.service").write_text(VM_NET_UNIT)
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "mailops-testbed-vmnet.service").symlink_to("/etc/systemd/system/mailops-testbed-vmnet.service")
    # Each host gets its name from nspawn --machine or the kernel command line.
    for name in ["etc/hostname"]:
        with contextlib.suppress(FileNotFoundError):
            (tree / name).unlink()
    # Empty machine-id: every host generates its own at first boot.
    (tree / "etc/machine-id").write_text("")
    with contextlib.suppress(FileNotFoundError):
        (tree / "var/lib/dbus/machine-id").unlink()
    (tree / "etc/fstab").write_text("# bench image: root is given on the kernel command line or by nspawn\n")
    for wants_dir in (tree / "etc/systemd/system").glob("*.wants"):
        for unit in DISABLED_UNITS:
            # The links are absolute, so they dangle outside the chroot: test with lexists.
            if os.path.lexists(wants_dir / unit):
                (wants_dir / unit).unlink()
    (tree / "etc/resolv.conf").unlink(missing_ok=True)
    (tree / "etc/resolv.conf").write_text("# test hosts have no resolver and no route out\n")


def build_image(force: bool = False) -> Path:
    ensure_key()
    with lock("image"):
        img = current_image()
        if img and not force:
            log(f"image {img.name} is up to date ({img})")
            return img
        started = time.monotonic()
        digest = recipe_hash()
        img = IMAGES_DIR / digest
        tmp = IMAGES_DIR / f"{digest}.tmp"
        for stale in (img, tmp):
            if stale.exists():
                _remove_tree(stale)
        tree = tmp / "rootfs"
        tree.mkdir(parents=True)
        mirror = debian_mirror()
        log(f"debootstrap {SUITE} from {mirror} into {tree}")
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BOOTSTRAP_INCLUDE), SUITE, str(tree), mirror],
            stdout=subprocess.DEVNULL)
        (tree / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        os.chmod(tree / "usr/sbin/policy-rc.d", 0o755)
        conf = tree / "etc/initramfs-tools"
        (conf / "conf.d").mkdir(parents=True, exist_ok=True)
        (conf / "conf.d/mailops-testbed.conf").write_text("MODULES=list\nCOMPRESS=gzip\n")
        (conf / "modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
        shutil.copy("/etc/resolv.conf", tree / "etc/resolv.conf")
        pkgs = packages() + KERNEL_PACKAGES
        log(f"installing {len(pkgs)} packages in the image")
        build_log = tmp / "build.log"
        with chroot_mounts(tree):
            chroot(tree, "apt-get", "-q", "update", log_file=build_log)
            chroot(tree, "apt-get", "-y", "-q", "-o", "Dpkg::Use-Pty=0", "install", "--no-install-recommends", *pkgs,
                   log_file=build_log)
            chroot(tree, "apt-get", "clean", log_file=build_log)
        (tree / "usr/sbin/policy-rc.d").unlink()
        pubkey = Path(str(KEY_FILE) + ".pub").read_text().strip()
        configure_tree(tree, pubkey)
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        initrds = sorted((tree / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise SystemExit("testbed: the image has no kernel/initrd under /boot")
        shutil.copy(kernels[-1], tmp / "vmlinuz")
        shutil.copy(initrds[-1], tmp / "initrd.img")
        used_mb = int(subprocess.run(["du", "-sm", str(tree)], check=True, capture_output=True,
                                     text=True).stdout.split()[0])
        size_mb = used_mb + 2048  # room for what roles write on QEMU hosts
        log(f"making base.raw ({size_mb} MiB, sparse) from the tree")
        run(["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(tree), str(tmp / "base.raw"), f"{size_mb}M"])
        meta = {
            "hash": digest,
            "suite": SUITE,
            "mirror": mirror,
            "packages": pkgs,
            "ssh_public_key": pubkey,
            "kernel": kernels[-1].name,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.monotonic() - started),
        }
        (tmp / "recipe.json").write_text(json.dumps(meta, indent=2) + "\n")
        tmp.rename(img)
        log(f"image {digest} built in {meta['build_seconds']} s ({img})")
        return img


def prune_images(keep: set[str]) -> None:
    """Remove images other than `keep` (hashes still used by running hosts or current)."""
    if not IMAGES_DIR.exists():
        return
    for path in IMAGES_DIR.iterdir():
        if path.is_dir() and path.name.split(".")[0] not in keep:
            log(f"removing old image {path.name}")
            _remove_tree(path)


def _remove_tree(path: Path) -> None:
    # Never follow into something still mounted (an interrupted build's chroot mounts).
    for sub in ("rootfs/dev/pts", "rootfs/dev", "rootfs/proc", "rootfs/sys"):
        if os.path.ismount(path / sub):
            subprocess.run(["umount", "-l", str(path / sub)], check=False)
        if os.path.ismount(path / sub):
            raise SystemExit(f"testbed: {path / sub} is still mounted; not removing {path}")
    run(["rm", "-rf", "--one-file-system", str(path)])
