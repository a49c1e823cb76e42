# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the ``pmta`` command.

Implements the subset of ``pmta [--json|--xml|--dom] CMD`` the collection
uses: ``test config`` (works without the daemon), ``reload``,
``show status|queues|vmtas|version|license``, and the queue commands (§6.3):
``pause|resume queue``, ``schedule``, ``delete``, ``disable|enable source``,
``show disabled sources`` (commands.py). Anything else fails loudly instead
of pretending.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

from . import PRODUCT, VERSION, commands
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


def _filter_queues(result, options, pattern, output):
    """show queues options (§6.3.13): the queue pattern, --paused, --mode (daemon side), --connected, --sort,
    --maxitems (default 20); ``total`` is how many matched before --maxitems."""
    queues = [q for q in result["data"]["queues"] if isinstance(q, dict)
              and commands.matches(pattern, q.get("name", "*/*"))]
    paused = options.get("paused")
    if paused in ("yes", "no"):
        queues = [q for q in queues if bool(q.get("paused")) == (paused == "yes")]
    connected = options.get("connected")
    if connected in ("yes", "no"):
        queues = [q for q in queues if (q.get("conn", 0) > 0) == (connected == "yes")]
    sort = options.get("sort", "name")
    key = {"rcpt": lambda q: -q.get("rcp", 0), "size": lambda q: -q.get("kb", 0)}.get(sort, lambda q: q.get("name"))
    queues.sort(key=key)
    # §6.3.13: 20 by default. The double caps the text output only; its JSON (whose layout the guide does not
    # show) lists every queue unless --maxitems is given, as the collection's readers of it expect.
    default = 20 if output == "text" else len(queues)
    maxitems = int(options.get("maxitems") or default)
    return {"data": {"queues": queues[:maxitems], "total": len(queues)}}


def _queues_text(result, pattern):
    """The layout of the guide's example (§6.3.13). ``st``: the guide does not list its values; the double
    prints ``pa`` for a paused queue and ``bo`` in backoff mode."""
    queues = result["data"]["queues"]
    width = max([15] + [len(q["name"]) for q in queues])
    lines = ["%-*s #rcpt kbytes conn st    retry last error" % (width, "queue"),
             "%s ----- ------ ---- -- -------- ----------" % ("-" * width), pattern]
    for q in queues:
        state = "pa" if q.get("paused") else ("bo" if q.get("mode") == "backoff" else "")
        retry = time.strftime("%H:%M:%S", time.gmtime(q["retry"])) if q.get("retry") and q.get("rcp") else ""
        fields = (width, q["name"], q.get("rcp", 0), q.get("kb", 0.0), q.get("conn", 0), state, retry,
                  q.get("lastError", ""))
        lines.append("%-*s %5d %6.1f %4d %-2s %8s %s" % fields)
    lines.append("%d of %d matching queues." % (len(queues), result["data"]["total"]))
    return "\n".join(lines)


def _vmtas_text(result, reply_queues):
    """§6.3.20: name, domains, #rcpt, % total, kbytes, conn; then ``N of M virtual MTAs.``"""
    queues = [q for q in reply_queues["data"]["queues"] if isinstance(q, dict)]
    total = sum(q.get("rcp", 0) for q in queues) or 1
    lines = ["name    domains #rcpt % total kbytes conn", "------- ------- ----- ------- ------ ----"]
    vmtas = result["data"]["vmtas"]
    for vmta in vmtas:
        mine = [q for q in queues if q.get("vmta") == vmta["name"]]
        rcpt = sum(q.get("rcp", 0) for q in mine)
        lines.append("%-7s %7d %5d %7d %6.1f %4d" % (
            vmta["name"], len({q["domain"] for q in mine if q.get("rcp")}), rcpt, round(100.0 * rcpt / total),
            sum(q.get("kb", 0.0) for q in mine), sum(q.get("conn", 0) for q in mine)))
    lines.append("%d of %d virtual MTAs." % (len(vmtas), len(vmtas)))
    return "\n".join(lines)


def queue_command(argv, options, output):
    """pause|resume queue, schedule, delete, disable|enable source, show disabled sources (§6.3); None when
    ARGV is none of them."""
    def call(command, **args):
        reply = ask(command, args=args)
        if not reply.get("ok"):
            print(reply.get("error", "%s failed" % command), file=sys.stderr)
            return None
        return reply["result"]

    if argv[:2] in (["pause", "queue"], ["resume", "queue"]) and len(argv) == 3:
        if call(argv[0], pattern=argv[2]) is None:
            return 1
        print("Queue(s) %s." % ("paused" if argv[0] == "pause" else "resumed"))
        return 0
    if argv[:1] == ["schedule"] and len(argv) == 2:
        result = call("schedule", pattern=argv[1], retry_recipients=bool(options.get("retry-recipients")))
        if result is None:
            return 1
        print("%d of %d matching queues scheduled." % tuple(result))
        return 0
    if argv == ["delete"]:
        if "queue" not in options and "jobId" not in options:
            print("Error: delete requires --queue or --jobId", file=sys.stderr)
            return 1
        result = call("delete", queue_pattern=options.get("queue"), job_id=options.get("jobId"),
                      orig=options.get("orig"), rcpt=options.get("rcpt"), env_id=options.get("envId"),
                      older_than=options.get("older-than"), accounting=not options.get("no-accounting"))
        if result is None:
            return 1
        print("%d recipient(s) deleted." % result)
        return 0
    if argv[:2] == ["disable", "source"] and len(argv) == 4:
        if call("disable_source", ip=argv[2], pattern=argv[3], reenable_after=options.get("reenable-after")) is None:
            return 1
        print("Source %s disabled for %s." % (argv[2], argv[3]))
        return 0
    if argv[:2] == ["enable", "source"] and len(argv) == 4:
        if call("enable_source", ip=argv[2], pattern=argv[3]) is None:
            return 1
        print("Source %s enabled for %s." % (argv[2], argv[3]))
        return 0
    if argv[:3] == ["show", "disabled", "sources"] and len(argv) <= 4:
        lines = call("disabled_sources", pattern=argv[3] if len(argv) == 4 else None)
        if lines is None:
            return 1
        if output == "text":
            print("\n".join(lines + ["%d disabled source(s)." % len(lines)]))
        else:
            entries = [dict(zip(("ip", "queue", "reenable"), line.split(" ", 2), strict=True)) for line in lines]
            print(json.dumps({"data": {"disabledSources": entries}}, indent=2))
        return 0
    return None


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
    options = {}
    for word in list(argv):
        if word.startswith("--"):
            name, _equals, value = word[2:].partition("=")
            options[name] = value if _equals else True
            argv.remove(word)
    mode = options.get("mode")
    words = " ".join(argv)
    try:
        handled = queue_command(argv, options, output)
        if handled is not None:
            return handled
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
        if words in ("show status", "show queues", "show vmtas") or (argv[:2] == ["show", "queues"] and len(argv) == 3):
            reply = ask(argv[1], mode=mode)
            result = reply["result"]
            if argv[1] == "queues":
                result = _filter_queues(result, options, argv[2] if len(argv) == 3 else "*/*", output)
            if output == "text" and words == "show status":
                print(_status_text(result))
            elif output == "text" and argv[1] == "queues":
                print(_queues_text(result, argv[2] if len(argv) == 3 else "*/*"))
            elif output == "text" and argv[1] == "vmtas":
                print(_vmtas_text(result, reply_queues=ask("queues")["result"]))
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
