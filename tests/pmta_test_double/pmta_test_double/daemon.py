# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: ``pmtad``.

Starts only with a config PowerMTA would accept (errors go to stderr and
``/var/log/pmta/pmta-startuperr.log``), binds the ``smtp-listener`` ports,
drops to user ``pmta`` when ``run-as-root no``, delivers queued mail
(queues.py, delivery.py) and answers the ``pmta`` CLI and ``pmtahttpd`` on a
Unix socket. ``pmta reload`` re-reads the config and
keeps the running one when the new one is refused; listener,
``http-mgmt-port`` and ``run-as-root`` changes wait for a restart, as in
PowerMTA.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import signal
import socket
import socketserver
import sys
import threading
import time

from . import PRODUCT, VERSION, commands
from . import config as config_mod
from .clock import CLOCK
from .queues import Outbound
from .smtp import SmtpServer

CONTROL_SOCKET = config_mod.CONTROL_SOCKET
STARTUP_ERROR_LOG = os.environ.get("PMTA_TD_STARTUPERR", "/var/log/pmta/pmta-startuperr.log")


class State:
    """What the running daemon knows; shared by SMTP sessions and the control socket."""

    def __init__(self, config):
        self.config = config
        self.started = time.time()
        self.lock = threading.Lock()
        self.counters = {}
        self.traffic = {"in": {"rcp": 0, "msg": 0, "kb": 0.0}, "out": {"rcp": 0, "msg": 0, "kb": 0.0}}
        self.pending_restart = []
        self.log_handle = None
        self.open_log()
        self.outbound = Outbound(self)

    def open_log(self):
        if self.log_handle:
            self.log_handle.close()
            self.log_handle = None
        if self.config.log_file:
            try:
                self.log_handle = open(self.config.log_file, "a", encoding="utf-8")
            except OSError as exc:
                print("cannot open log-file %s: %s" % (self.config.log_file, exc), file=sys.stderr)

    def log(self, text):
        line = "%s %s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), text)
        with self.lock:
            if self.log_handle:
                self.log_handle.write(line)
                self.log_handle.flush()
            else:
                sys.stderr.write(line)

    def next_index(self, name):
        with self.lock:
            value = self.counters.get(name, 0)
            self.counters[name] = value + 1
            return value

    def count_in(self, recipients, size):
        self._count("in", recipients, size)

    def count_out(self, recipients, size):
        self._count("out", recipients, size)

    def _count(self, direction, recipients, size):
        with self.lock:
            self.traffic[direction]["rcp"] += recipients
            self.traffic[direction]["msg"] += 1
            self.traffic[direction]["kb"] += size / 1024.0

    # -- status, as the HTTP API's /status?format=json shapes it ---------
    def status(self):
        hook = _queue_hook()
        real = self.outbound.snapshot()
        smtp_queue = hook.get("smtp", {"rcp": sum(q["rcp"] for q in real),
                                       "dom": len({q["domain"] for q in real if q["rcp"]}), "kb": 0})
        traffic = {
            "total": {k: dict(v) for k, v in self.traffic.items()},
            "lastHr": {k: dict(v) for k, v in self.traffic.items()},
            "lastMin": {"in": {"rcp": 0, "msg": 0, "kb": 0.0}, "out": {"rcp": 0, "msg": 0, "kb": 0.0}},
        }
        return {
            "data": {
                "mta": {
                    "product": {"name": PRODUCT, "version": VERSION},
                    "testDouble": True,
                    "hostName": self.config.host_name,
                    "startTime": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.started)),
                    "uptime": int(time.time() - self.started),
                },
                "status": {
                    "traffic": traffic,
                    "queue": {"smtp": smtp_queue, "pipe": {"rcp": 0, "dom": 0, "kb": 0}},
                    "conn": {"smtpIn": {"cur": 0}, "smtpOut": {"cur": sum(q["conn"] for q in real)}},
                    # §7 "Spool Files": the message files in use (spool.py: one per queued message).
                    "spool": {"initPct": 100, "files": {"total": smtp_queue.get("rcp", 0),
                                                        "inUse": self.outbound.spool.files()}},
                    "pendingRestart": list(self.pending_restart),
                    "testClock": {"now": CLOCK.now(), "speed": CLOCK.speed},
                },
            }
        }

    def queues(self, mode=None):
        queues = self.outbound.snapshot() + _queue_hook().get("queues", [])
        if mode:
            queues = [q for q in queues if isinstance(q, dict) and q.get("mode", "normal") == mode]
        return {"data": {"queues": queues}}

    def vmtas(self):
        return {
            "data": {
                "vmtas": [
                    {"name": name, "smtpSourceIp": vmta.ip, "hostName": vmta.hostname,
                     "pool": self.config.pool_of(name), "coldVirtualMtas": list(vmta.cold)}
                    for name, vmta in sorted(self.config.vmtas.items())
                ]
            }
        }


QUEUE_COMMANDS = {  # pmta's queue commands (§6.3.10, 6.3.22-25, 6.3.33-35), in commands.py
    "pause": lambda outbound, pattern: commands.pause(outbound, pattern, True),
    "resume": lambda outbound, pattern: commands.pause(outbound, pattern, False),
    "schedule": commands.schedule,
    "delete": commands.delete,
    "disable_source": commands.disable_source,
    "enable_source": commands.enable_source,
    "disabled_sources": commands.disabled_sources,
}


def _queue_hook():
    """Test hook: /etc/pmta/TEST-DOUBLE-queue.json fakes a queue (see README.md)."""
    try:
        with open(config_mod.QUEUE_HOOK, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def restart_needed(old, new):
    reasons = []
    if sorted(listener.key() for listener in old.listeners) != sorted(listener.key() for listener in new.listeners):
        reasons.append("smtp-listener")
    if old.http_mgmt_port != new.http_mgmt_port:
        reasons.append("http-mgmt-port")
    if old.run_as_root != new.run_as_root:
        reasons.append("run-as-root")
    return reasons


class ControlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path, state, config_path):
        self.state = state
        self.config_path = config_path
        super().__init__(path, ControlHandler)


class ControlHandler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            request = json.loads(self.rfile.readline().decode("utf-8") or "{}")
        except ValueError:
            request = {}
        reply = dispatch(self.server, request)
        self.wfile.write((json.dumps(reply) + "\n").encode("utf-8"))


def dispatch(server, request):
    state = server.state
    command = request.get("cmd")
    if command == "status":
        return {"ok": True, "result": state.status()}
    if command == "queues":
        return {"ok": True, "result": state.queues(request.get("mode"))}
    if command == "vmtas":
        return {"ok": True, "result": state.vmtas()}
    if command in QUEUE_COMMANDS:
        try:
            return {"ok": True, "result": QUEUE_COMMANDS[command](state.outbound, **request.get("args", {}))}
        except (ValueError, TypeError) as exc:
            return {"ok": False, "error": "Error: %s" % exc}
    if command == "http":
        config = state.config
        return {
            "ok": True,
            "result": {
                "port": config.http_mgmt_port,
                "access": [[str(net), level] for net, level in config.http_access],
                "redirect_to_https": config.http_redirect_to_https,
            },
        }
    if command == "reload":
        try:
            new = config_mod.load(server.config_path)
            CLOCK.load_hook(config_mod.CLOCK_HOOK)
        except config_mod.ConfigError as exc:
            state.log("reload refused, running configuration kept: %s" % "; ".join(exc.lines))
            return {"ok": False, "error": "\n".join(exc.lines)}
        except ValueError as exc:
            return {"ok": False, "error": "Error: %s" % exc}
        reasons = restart_needed(state.config, new)
        if reasons:
            # Keep the bound listeners and identity; PowerMTA needs a restart for these.
            new.listeners = state.config.listeners
            new.http_mgmt_port = state.config.http_mgmt_port
            new.run_as_root = state.config.run_as_root
        state.pending_restart = reasons
        state.config = new
        state.outbound.reconfigure(new)
        state.open_log()
        state.log("configuration reloaded" + (" (restart needed for: %s)" % ", ".join(reasons) if reasons else ""))
        warnings = "\n".join(new.warnings)
        return {"ok": True, "output": "OK", "warnings": warnings, "restart_needed": reasons}
    return {"ok": False, "error": "unknown command %r" % command}


def _notify(message):
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))


def _drop_privileges(paths):
    user = pwd.getpwnam("pmta")
    group = grp.getgrnam("pmta")
    for path in paths:
        if path and os.path.exists(path):
            os.chown(path, user.pw_uid, group.gr_gid)
    os.setgroups([group.gr_gid])
    os.setgid(group.gr_gid)
    os.setuid(user.pw_uid)


def _startup_error(lines):
    text = "\n".join(lines)
    print(text, file=sys.stderr)
    try:
        with open(STARTUP_ERROR_LOG, "a", encoding="utf-8") as handle:
            handle.write("%s PowerMTA TEST DOUBLE refused to start:\n%s\n" % (time.strftime("%Y-%m-%d %H:%M:%S"), text))
    except OSError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pmtad", description="PowerMTA TEST DOUBLE daemon (not PowerMTA)")
    parser.add_argument("--debug", action="store_true", help="log to stderr")
    parser.add_argument("--config", default=config_mod.CONFIG)
    parser.add_argument("--control-socket", default=CONTROL_SOCKET)
    args = parser.parse_args(argv)
    # Log and accounting files are not world-readable (PowerMTA's world-readable defaults to no).
    os.umask(0o027)

    try:
        config = config_mod.load(args.config)
        CLOCK.load_hook(config_mod.CLOCK_HOOK)
    except config_mod.ConfigError as exc:
        _startup_error(exc.lines)
        return 1
    except ValueError as exc:
        _startup_error(["Error: %s" % exc])
        return 1
    state = State(config)
    for warning in config.warnings:
        state.log(warning)

    servers = []
    try:
        for listener in config.listeners:
            servers.append(SmtpServer(listener, state))
    except OSError as exc:
        _startup_error(["Error: cannot listen on %s:%d: %s" % (listener.address, listener.port, exc.strerror)])
        return 1

    os.makedirs(os.path.dirname(args.control_socket), exist_ok=True)
    if os.path.exists(args.control_socket):
        os.unlink(args.control_socket)
    control = ControlServer(args.control_socket, state, args.config)
    os.chmod(args.control_socket, 0o660)
    if os.getuid() == 0:
        try:
            os.chown(args.control_socket, 0, grp.getgrnam("pmta").gr_gid)
        except KeyError:
            pass
        if not config.run_as_root:
            writable = [config.log_file] + [path for path, _records in config.acct_files if not path.startswith("|")]
            writable += state.outbound.spool.owned_paths()  # spooled mail is read back after the drop
            _drop_privileges(writable)

    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers + [control]]
    for thread in threads:
        thread.start()
    state.outbound.start()
    state.log("%s %s started; listening on %s" % (
        PRODUCT, VERSION, ", ".join("%s:%d" % (x.address, x.port) for x in config.listeners) or "nothing"))

    stop = threading.Event()

    def on_term(signum, frame):
        stop.set()

    def on_hup(signum, frame):
        threading.Thread(target=dispatch, args=(control, {"cmd": "reload"}), daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    _notify("READY=1")
    while not stop.wait(1):
        pass
    _notify("STOPPING=1")
    state.outbound.shutdown()
    for server in servers + [control]:
        server.shutdown()
        server.server_close()
    try:
        os.unlink(args.control_socket)
    except OSError:
        pass
    state.log("stopped")
    return 0
