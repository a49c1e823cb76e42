# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real BIND 9 ``named`` for tests, the lab and Molecule (part of the bench).

Standard library only, so it runs with any ``python3``; it needs the Debian
packages ``bind9`` (named, tsig-keygen) and ``bind9-utils`` (named-checkconf,
named-checkzone).

Python::

    with Bind9Server(tmp_path) as server:          # free high port on 127.0.0.1
        server.address, server.port                # where to send queries / UPDATEs
        server.key_name, server.key_secret, server.key_algorithm   # TSIG (hmac-sha256)

CLI (for the lab and Molecule; named keeps running after the command returns)::

    python tests/testbed/bind9.py start --dir DIR [--port N] [--address 127.0.0.1]
        [--extra-zones-dir ZONES] [--also-listen ADDR[:PORT]]
    python tests/testbed/bind9.py stop --dir DIR

``start`` writes ``DIR/connection.json``:
``{"server", "port", "key_name", "key_secret", "key_algorithm"}`` (mode 0600).

Zones served (every name from the documentation ranges; SOA serial starts at 1;
``ns1.example.test.`` is the NS of every zone, ``ns1.<zone>`` A 127.0.0.1 in forward zones):

Forward, updatable by the key (``update-policy { grant KEY zonesub ANY; }``), and transferable
(AXFR) with the key (``allow-transfer { key KEY; }``, as a primary usually allows its update key):
    example.com, example.net, example.test

Reverse, updatable and transferable with the key (same policy):
    2.0.192.in-addr.arpa        192.0.2.0/24
    100.51.198.in-addr.arpa     198.51.100.0/24
    113.0.203.in-addr.arpa      203.0.113.0/24
    8.b.d.0.1.0.0.2.ip6.arpa    2001:db8::/32

DNSBL zones (no updates; unlisted names answer NXDOMAIN):
    zen.dnsbl.test (RFC 5782 test points and bench test entries)
        2.0.0.127                          A 127.0.0.2, TXT "RFC 5782 test point: listed"
        127.0.0.1 (1.0.0.127)              not listed (NXDOMAIN), as RFC 5782 requires
        ::FFFF:7F00:2 (nibbles)            A 127.0.0.2, TXT "RFC 5782 IPv6 test point: listed"
        ::FFFF:7F00:1                      not listed
        203.0.113.66 (66.113.0.203)        A 127.0.0.2, TXT "listed: bench test"
        203.0.113.67 (67.113.0.203)        A 127.0.0.10 (policy listing, Spamhaus PBL style)
        203.0.113.68 (68.113.0.203)        A 127.255.255.254 (error code: query refused, Spamhaus style)
        2001:db8::66 (nibbles)             A 127.0.0.2, TXT "listed: bench test (IPv6)"
        every other address                not listed
    wild.dnsbl.test
        *                                  A 127.0.0.2, TXT "lists everything": a broken list;
                                           must fail the 127.0.0.1 / 127.0.0.2 health check
    errors.dnsbl.test
        *                                  A 127.255.255.254: every answer is an error code

Extra static zones (the lab's ISP side, ``isp_world.py``): every ``db.ZONE`` file of
``--extra-zones-dir`` is served as ZONE (no updates). ``--also-listen ADDR[:PORT]`` (port 53 by
default) makes named answer there too, e.g. on the ISP network the lab's hosts use as resolver.

More updatable zones (fleet-size tests and benchmarks): ``Bind9Server(..., more_zones=ZONES)`` serves
each zone of ZONES as the zones above (same update policy and transfer rule), e.g. the reverse zones
``0.18.198.in-addr.arpa`` ... of a fleet on the bench network 198.18.0.0/15. ``seed={zone: lines}``
adds zone-file lines (relative owner names) to a zone's initial file: a zone of 10,000 records
without sending them.

``DNSBL_ZONES`` and ``UPDATABLE_ZONES`` below list the names for tests.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

FORWARD_ZONES = ("example.com", "example.net", "example.test")
REVERSE_ZONES = (
    "2.0.192.in-addr.arpa",
    "100.51.198.in-addr.arpa",
    "113.0.203.in-addr.arpa",
    "8.b.d.0.1.0.0.2.ip6.arpa",
)
UPDATABLE_ZONES = FORWARD_ZONES + REVERSE_ZONES
DNSBL_ZONES = ("zen.dnsbl.test", "wild.dnsbl.test", "errors.dnsbl.test")

DEFAULT_KEY_NAME = "ansible-key"
DEFAULT_KEY_ALGORITHM = "hmac-sha256"
NAMESERVER = "ns1.example.test."


def reverse_pointer(address):
    """The DNSBL / reverse label of an address, without the suffix (``2.0.0.127``)."""
    name = ipaddress.ip_address(address).reverse_pointer
    return name.rsplit(".in-addr.arpa", 1)[0].rsplit(".ip6.arpa", 1)[0]


def _dnsbl_records(zone):
    """Zone-file lines for the DNSBL zones (owner names relative to the zone)."""
    if zone == "zen.dnsbl.test":
        entries = [
            ("127.0.0.2", "127.0.0.2", "RFC 5782 test point: listed"),
            ("::ffff:127.0.0.2", "127.0.0.2", "RFC 5782 IPv6 test point: listed"),
            ("203.0.113.66", "127.0.0.2", "listed: bench test"),
            ("203.0.113.67", "127.0.0.10", "policy listing: bench test"),
            ("203.0.113.68", "127.255.255.254", None),
            ("2001:db8::66", "127.0.0.2", "listed: bench test (IPv6)"),
        ]
        lines = []
        for address, answer, reason in entries:
            owner = reverse_pointer(address)
            lines.append("%s A %s" % (owner, answer))
            if reason:
                lines.append('%s TXT "%s"' % (owner, reason))
        return lines
    if zone == "wild.dnsbl.test":
        return ["* A 127.0.0.2", '* TXT "lists everything"']
    if zone == "errors.dnsbl.test":
        return ["* A 127.255.255.254"]
    return []


def zone_text(zone):
    """The initial zone file of ``zone``."""
    lines = [
        "$ORIGIN %s." % zone,
        "$TTL 300",
        "@ SOA %s hostmaster.example.test. (1 3600 900 604800 300)" % NAMESERVER,
        "@ NS %s" % NAMESERVER,
    ]
    if zone in FORWARD_ZONES:
        lines.append("ns1 A 127.0.0.1")
    lines.extend(_dnsbl_records(zone))
    return "\n".join(lines) + "\n"


def free_port(address="127.0.0.1"):
    """A port free for both UDP and TCP on ``address`` (the OS picks it)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found on %s" % address)


def _soa_query(zone, address, port, timeout):
    """Ask for ``zone`` SOA over TCP; True when the answer is NOERROR with an answer RR."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in zone.rstrip(".").split(".")) + b"\0"
    message = struct.pack("!HHHHHH", 0x4D54, 0, 1, 0, 0, 0) + qname + struct.pack("!HH", 6, 1)
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.sendall(struct.pack("!H", len(message)) + message)
        header = b""
        while len(header) < 14:
            chunk = conn.recv(14 - len(header))
            if not chunk:
                return False
            header += chunk
    _length, _ident, flags, _qd, ancount = struct.unpack("!HHHHH", header[:10])
    return (flags & 0x000F) == 0 and ancount > 0


class Bind9Error(RuntimeError):
    """named could not be configured or started; the message includes its log."""


class Bind9Server:
    """One ``named`` serving the test zones from ``workdir`` (created if missing).

    ``port=None`` picks a free high port. Usable as a context manager; ``start()``
    and ``stop()`` may be called directly too. ``stop()`` is safe to call twice.
    """

    def __init__(self, workdir, port=None, address="127.0.0.1", key_name=DEFAULT_KEY_NAME,
                 key_algorithm=DEFAULT_KEY_ALGORITHM, start_timeout=30.0, extra_zones=None, also_listen=None,
                 more_zones=(), seed=None):
        self.workdir = Path(workdir).resolve()
        # Updatable zones beyond UPDATABLE_ZONES, and {zone: zone-file lines} added to initial zone files.
        self.updatable_zones = UPDATABLE_ZONES + tuple(z for z in more_zones if z not in UPDATABLE_ZONES)
        self.seed = {zone: list(lines) for zone, lines in (seed or {}).items()}
        # {zone: path of its zone file} served read-only; [(address, port)] listened on as well.
        self.extra_zones = dict(extra_zones or {})
        self.also_listen = list(also_listen or [])
        self.address = address
        self._requested_port = port
        self.port = port
        self.key_name = key_name
        self.key_algorithm = key_algorithm
        self.key_secret = None
        self.start_timeout = start_timeout
        self.process = None
        self.pid = None

    # -- paths
    @property
    def conf_path(self):
        return self.workdir / "named.conf"

    @property
    def log_path(self):
        return self.workdir / "named.log"

    @property
    def pid_path(self):
        return self.workdir / "named.proc.pid"

    def zone_path(self, zone):
        return self.workdir / ("db." + zone)

    # -- helpers for tests
    def connection(self):
        """The connection facts the lab and Molecule read from connection.json."""
        return {
            "server": self.address,
            "port": self.port,
            "key_name": self.key_name,
            "key_secret": self.key_secret,
            "key_algorithm": self.key_algorithm,
        }

    def module_args(self):
        """The same, named as the ``dns_records`` / ``dns_verify`` options."""
        return {
            "server": self.address,
            "port": self.port,
            "key_name": self.key_name,
            "key_secret": self.key_secret,
            "key_algorithm": self.key_algorithm,
        }

    def is_running(self):
        if self.pid is None:
            return False
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    # -- lifecycle
    def _generate_key(self):
        key_file = self.workdir / "tsig.key"
        if not key_file.exists():
            result = subprocess.run(
                ["tsig-keygen", "-a", self.key_algorithm, self.key_name],
                check=True, capture_output=True, text=True,
            )
            key_file.write_text(result.stdout)
            key_file.chmod(0o600)
        match = re.search(r'secret\s+"([^"]+)"', key_file.read_text())
        if not match:
            raise Bind9Error("no secret in %s" % key_file)
        self.key_secret = match.group(1)

    def _write_config(self):
        d = str(self.workdir)
        zones = []
        for zone in self.updatable_zones:
            zones.append(
                'zone "%s" { type primary; file "%s"; journal "%s.jnl";\n'
                '  update-policy { grant %s zonesub ANY; }; allow-transfer { key %s; }; };'
                % (zone, self.zone_path(zone), self.zone_path(zone), self.key_name, self.key_name)
            )
        for zone in DNSBL_ZONES:
            zones.append('zone "%s" { type primary; file "%s"; };' % (zone, self.zone_path(zone)))
        for zone, path in sorted(self.extra_zones.items()):
            zones.append('zone "%s" { type primary; file "%s"; };' % (zone, path))
        extra_listen = "".join("  listen-on port %d { %s; };\n" % (port, address)
                               for address, port in self.also_listen)
        conf = (
            'include "%(d)s/tsig.key";\n'
            "options {\n"
            '  directory "%(d)s";\n'
            '  pid-file "%(d)s/named.pid";\n'
            '  session-keyfile "%(d)s/session.key";\n'
            '  managed-keys-directory "%(d)s";\n'
            '  dump-file "%(d)s/named_dump.db";\n'
            '  statistics-file "%(d)s/named.stats";\n'
            "  listen-on port %(port)d { %(address)s; };\n"
            "%(extra_listen)s"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n"
            "  allow-query { any; };\n"
            "  allow-transfer { none; };\n"
            "  notify no;\n"
            "  dnssec-validation no;\n"
            "};\n"
            "controls { };\n"
            "%(zones)s\n"
        ) % {"d": d, "port": self.port, "address": self.address, "zones": "\n".join(zones),
             "extra_listen": extra_listen}
        self.conf_path.write_text(conf)
        for zone in self.updatable_zones + DNSBL_ZONES:
            path = self.zone_path(zone)
            if not path.exists():  # keep published data across a restart
                path.write_text(zone_text(zone) + "".join(line + "\n" for line in self.seed.get(zone, ())))

    def _check(self):
        result = subprocess.run(["named-checkconf", str(self.conf_path)], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise Bind9Error("named-checkconf failed:\n%s%s" % (result.stdout, result.stderr))
        checks = [(zone, self.zone_path(zone)) for zone in self.updatable_zones + DNSBL_ZONES]
        for zone, path in checks + sorted(self.extra_zones.items()):
            result = subprocess.run(
                ["named-checkzone", "-q", zone, str(path)], capture_output=True, text=True,
                check=False,
            )
            if result.returncode != 0:
                raise Bind9Error("named-checkzone %s failed:\n%s%s" % (zone, result.stdout, result.stderr))

    def _launch(self, detach):
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                # -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker (CI has 2 cores).
                ["named", "-g", "-4", "-n", "1", "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=detach, cwd=str(self.workdir),
            )
        finally:
            log.close()
        self.pid = self.process.pid
        self.pid_path.write_text("%d\n" % self.pid)

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if _soa_query(FORWARD_ZONES[0], self.address, self.port, timeout=1.0):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def start(self, detach=False):
        """Configure and start named; returns self once it answers SOA queries."""
        if self.is_running():
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        for tool in ("named", "tsig-keygen", "named-checkconf", "named-checkzone"):
            if shutil.which(tool) is None:
                raise Bind9Error("%s not found: apt-get install bind9 bind9-utils" % tool)
        self._generate_key()
        attempts = 1 if self._requested_port else 5
        for _attempt in range(attempts):
            self.port = self._requested_port or free_port(self.address)
            self._write_config()
            self._check()
            self._launch(detach)
            if self._wait_ready():
                return self
            self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        raise Bind9Error("named did not answer on %s port %s:\n%s" % (self.address, self.port, tail))

    def stop(self, timeout=10.0):
        """Stop named by PID (SIGTERM, then SIGKILL)."""
        if self.pid is None and self.pid_path.exists():
            self.pid = int(self.pid_path.read_text().strip() or 0) or None
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.is_running():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.process = None
        self.pid = None
        self.pid_path.unlink(missing_ok=True)

    def restart(self):
        """Stop and start again on the same port, keeping zone data and journals."""
        self.stop()
        self._requested_port = self.port
        return self.start()

    def reset(self):
        """Back to the initial zones: stop, drop zone files and journals, start."""
        self.stop()
        for zone in self.updatable_zones + DNSBL_ZONES:
            for path in (self.zone_path(zone), Path(str(self.zone_path(zone)) + ".jnl")):
                path.unlink(missing_ok=True)
        self._requested_port = self.port
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _cli(argv=None):
    parser = argparse.ArgumentParser(description="Start or stop the bench's BIND 9 named.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start named in DIR and write DIR/connection.json")
    start.add_argument("--dir", required=True, type=Path)
    start.add_argument("--port", type=int, default=None, help="default: a free high port")
    start.add_argument("--address", default="127.0.0.1", help="IPv4 address to listen on")
    start.add_argument("--extra-zones-dir", type=Path, default=None,
                       help="serve every db.ZONE file in this directory as ZONE (read-only)")
    start.add_argument("--also-listen", action="append", default=[], metavar="ADDR[:PORT]",
                       help="also answer on this address (port 53 unless given); repeatable")
    stop = sub.add_parser("stop", help="stop the named started in DIR")
    stop.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)

    if args.command == "start":
        extra_zones = {}
        if args.extra_zones_dir:
            extra_zones = {p.name[3:]: p.resolve() for p in sorted(args.extra_zones_dir.glob("db.*"))}
        also_listen = []
        for item in args.also_listen:
            address, _sep, port = item.partition(":")
            also_listen.append((str(ipaddress.ip_address(address)), int(port or 53)))
        server = Bind9Server(args.dir, port=args.port, address=args.address, extra_zones=extra_zones,
                             also_listen=also_listen)
        if server.pid_path.exists():
            server.stop()  # a stale or running instance from an earlier start
        server.start(detach=True)
        connection = args.dir / "connection.json"
        connection.write_text(json.dumps(server.connection(), indent=2) + "\n")
        connection.chmod(0o600)
        print(json.dumps({"pid": server.pid, "connection": str(connection.resolve()), "port": server.port}))
        return 0
    server = Bind9Server(args.dir)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
