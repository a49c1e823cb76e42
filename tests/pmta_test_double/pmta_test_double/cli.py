# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the ``pmta`` command.

Implements the subset of ``pmta [--json|--xml|--dom] CMD`` the collection
uses: ``test config`` (works without the daemon), ``reload``,
``show status|queues|vmtas|version|license``. Anything else fails loudly
instead of pretending.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from . import PRODUCT, VERSION
from . import config as config_mod


class DaemonDown(Exception):
    pass


def ask(command, socket_path=None, **extra):
    path = socket_path or os.environ.get("PMTA_TD_CONTROL", config_mod.CONTROL_SOCKET)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(path)
            sock.sendall((json.dumps(dict(extra, cmd=command)) + "\n").encode("utf-8"))
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise DaemonDown("PowerMTA (pmtad) is not running") from exc
    except PermissionError as exc:
        raise DaemonDown("permission denied: run pmta as root or as a member of group pmta") from exc
    return json.loads(data.decode("utf-8"))


def _status_text(status):
    data = status["data"]
    traffic = data["status"]["traffic"]
    queue = data["status"]["queue"]["smtp"]
    lines = [
        "%s %s status on %s" % (data["mta"]["product"]["name"], data["mta"]["product"]["version"],
                                data["mta"]["hostName"]),
        "Traffic   ------------inbound------------   ------------outbound-----------",
        "             Recipients  Messages    KBytes     Recipients  Messages    KBytes",
    ]
    for period in ("total", "lastHr", "lastMin"):
        inbound, outbound = traffic[period]["in"], traffic[period]["out"]
        lines.append(
            "%-10s %12d %9d %9.1f %14d %9d %9.1f"
            % (period, inbound["rcp"], inbound["msg"], inbound["kb"], outbound["rcp"], outbound["msg"], outbound["kb"])
        )
    counts = (queue.get("rcp", 0), queue.get("dom", 0), queue.get("kb", 0))
    lines.append("Queue     SMTP  rcpt %d  domains %d  KBytes %s" % counts)
    if data["status"].get("pendingRestart"):
        lines.append("Restart needed for: %s" % ", ".join(data["status"]["pendingRestart"]))
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    output = "text"
    while argv and argv[0].startswith("--"):
        flag = argv.pop(0)
        if flag in ("--json", "--xml", "--dom"):
            output = flag[2:]
        else:
            print("pmta: unknown option %s" % flag, file=sys.stderr)
            return 2
    mode = None
    for word in list(argv):
        if word.startswith("--mode="):
            mode = word.split("=", 1)[1]
            argv.remove(word)
    words = " ".join(argv)
    try:
        if words == "test config":
            try:
                config = config_mod.load()
            except config_mod.ConfigError as exc:
                print("\n".join(exc.lines))
                return 1
            for warning in config.warnings:
                print(warning)
            print("Configuration file %s is valid" % config_mod.CONFIG)
            return 0
        if words == "reload":
            reply = ask("reload")
            if not reply.get("ok"):
                print(reply.get("error", "reload failed"))
                return 1
            if reply.get("warnings"):
                print(reply["warnings"])
            if reply.get("restart_needed"):
                print("Warning: restart PowerMTA for changes to: %s" % ", ".join(reply["restart_needed"]))
            print("OK")
            return 0
        if words in ("show status", "show queues", "show vmtas"):
            reply = ask(words.split()[1], mode=mode)
            result = reply["result"]
            if output == "text" and words == "show status":
                print(_status_text(result))
            else:
                # --xml/--dom are not implemented by the double: JSON for every machine format.
                print(json.dumps(result, indent=2, sort_keys=True))
            return 0
        if words == "show version":
            print("%s %s" % (PRODUCT, VERSION))
            return 0
        if words == "show license":
            # The double does not check licenses; it shows the key: value lines of the file.
            try:
                with open(config_mod.LICENSE, encoding="utf-8", errors="replace") as handle:
                    lines = [line.rstrip() for line in handle if ":" in line and not line.lstrip().startswith("#")]
            except OSError as exc:
                print("Error: cannot read license file %s: %s" % (config_mod.LICENSE, exc.strerror), file=sys.stderr)
                return 1
            print("\n".join(lines))
            return 0
    except DaemonDown as exc:
        print("Error: %s" % exc, file=sys.stderr)
        return 1
    print("pmta (TEST DOUBLE): command not implemented by the test double: %s" % (words or "(none)"), file=sys.stderr)
    return 2
