# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's injector mailbox: Postfix (SMTP in) in front of Dovecot (LMTP delivery, IMAP out).

Debian's own ``postfix`` and ``dovecot-imapd`` packages, run from this machine with their own config
directories (never /etc/postfix or /etc/dovecot, never as system services) in a network namespace on the
ISP world's bridge (``isp_world.py up --mailbox``): they listen only on the mailbox address, inside that
namespace. The fleet delivers processed bounces and complaint reports, and its own DSNs, to Postfix
(``powermta_bounce_mailbox``); Postfix takes mail for the bounce and FBL domains only (anything else:
``554 relay access denied``) and hands all of it over LMTP to one Dovecot user, which the injector (and
the tests) read over IMAP: the address and login are in ``mailbox.json`` (host, port, user, password).

    lab_mailbox.py read --mailbox-json F [--json]                     # the DSNs and ARF reports found
    lab_mailbox.py compare --mailbox-json F --world DIR --bounce-domain D [--json]   # per ISP group

Files live in ``MAILOPS_TESTBED_STATE/mailbox-NAME`` (a path the unprivileged mail processes can reach).
"""

from __future__ import annotations

import argparse
import csv
import email
import email.policy
import email.utils
import imaplib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("MAILOPS_TESTBED_STATE", "/var/lib/mailops-testbed"))
IMAP_PORT = 143
SMTP_PORT = 25
USER = "mailops"
HOST_NUMBER = 30  # NET.30 on the ISP world's bridge
POSTFIX_SERVICES = [
    # service type private unpriv chroot wakeup maxproc command (master(5)); no chroot, no local delivery.
    "smtp      inet  n       -       n       -       -       smtpd",
    "cleanup   unix  n       -       n       -       0       cleanup",
    "qmgr      unix  n       -       n       300     1       qmgr",
    "rewrite   unix  -       -       n       -       -       trivial-rewrite",
    "bounce    unix  -       -       n       -       0       bounce",
    "defer     unix  -       -       n       -       0       bounce",
    "trace     unix  -       -       n       -       0       bounce",
    "verify    unix  -       -       n       -       1       verify",
    "flush     unix  n       -       n       1000?   0       flush",
    "proxymap  unix  -       -       n       -       -       proxymap",
    "smtp      unix  -       -       n       -       -       smtp",
    "relay     unix  -       -       n       -       -       smtp",
    "error     unix  -       -       n       -       -       error",
    "retry     unix  -       -       n       -       -       error",
    "discard   unix  -       -       n       -       -       discard",
    "lmtp      unix  -       -       n       -       -       lmtp",
    "anvil     unix  -       -       n       -       1       anvil",
    "scache    unix  -       -       n       -       1       scache",
    "showq     unix  n       -       n       -       -       showq",
    "postlog   unix-dgram n  -       n       -       1       postlogd",
]


class MailboxError(RuntimeError):
    pass


def home(name: str) -> Path:
    return STATE / ("mailbox-" + name)


def _run(cmd, log: Path):
    """Run a command that may leave a daemon behind: its output goes to ``log``, not to a pipe that the
    daemon would keep open."""
    with open(log, "ab") as out:
        code = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    if code != 0:
        raise MailboxError("%s failed (%d): %s" % (" ".join(map(str, cmd)), code, log.read_text()[-2000:]))


def postfix_main_cf(base: Path, address: str, domains: list[str], hostname: str) -> str:
    return "\n".join([
        "# The lab mailbox (tests/testbed/lab_mailbox.py): Postfix in front of Dovecot, in its own netns.",
        "compatibility_level = 3.6",
        "queue_directory = %s" % (base / "postfix-spool"),
        "data_directory = %s" % (base / "postfix-data"),
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "myhostname = %s" % hostname,
        "mydomain = example.com",
        "myorigin = $myhostname",
        "mydestination =",
        "inet_interfaces = %s" % address,
        "inet_protocols = ipv4",
        "mynetworks = 127.0.0.0/8",
        "alias_maps =",
        "alias_database =",
        "maillog_file = %s" % (base / "postfix.log"),
        "smtpd_banner = $myhostname ESMTP lab mailbox",
        # Final destination for the bounce and FBL domains only: nothing is relayed anywhere.
        "smtpd_relay_restrictions = reject_unauth_destination",
        "virtual_mailbox_domains = %s" % ", ".join(domains),
        "virtual_mailbox_maps = static:%s" % USER,
        # Every address of those domains goes to the one IMAP user. virtual_alias_domains defaults to the
        # alias map, which (static) would make every domain local: set it empty.
        "virtual_alias_domains =",
        "virtual_alias_maps = static:%s@%s" % (USER, domains[0]),
        # It never sends mail anywhere (no bounce of a bounce back to the fleet, no relay).
        "default_transport = error:5.7.1 the lab mailbox sends no mail",
        "relay_transport = error:5.7.1 the lab mailbox sends no mail",
        "notify_classes =",
        "virtual_transport = lmtp:unix:%s" % (base / "dovecot-run" / "lmtp"),
        "message_size_limit = 20480000",
        "",
    ])


def dovecot_conf(base: Path, address: str, name: str) -> str:
    return "\n".join([
        "# The lab mailbox (tests/testbed/lab_mailbox.py): LMTP from Postfix, IMAP for the injector.",
        "instance_name = mailops-mailbox-%s" % name,
        "base_dir = %s" % (base / "dovecot-run"),
        "state_dir = %s" % (base / "dovecot-state"),
        "log_path = %s" % (base / "dovecot.log"),
        "protocols = imap lmtp",
        "listen = %s" % address,
        "ssl = no",
        "disable_plaintext_auth = no",  # IMAP inside the lab's netns only (use TLS for a real mailbox)
        "auth_mechanisms = plain login",
        "auth_username_format = %Ln",
        "default_internal_user = dovecot",
        "default_login_user = dovenull",
        "first_valid_uid = 8",
        "mail_location = maildir:%s/%%n/Maildir" % (base / "mail"),
        "passdb {",
        "  driver = passwd-file",
        "  args = scheme=PLAIN username_format=%%n %s" % (base / "users"),
        "}",
        "userdb {",
        "  driver = static",
        "  args = uid=mail gid=mail home=%s/%%n" % (base / "mail"),
        "}",
        "service imap-login {",
        "  inet_listener imap {",
        "    port = %d" % IMAP_PORT,
        "  }",
        "  inet_listener imaps {",
        "    port = 0",
        "  }",
        "}",
        "service lmtp {",
        "  unix_listener lmtp {",
        "    mode = 0666",
        "  }",
        "}",
        "protocol lmtp {",
        "  postmaster_address = postmaster@example.com",
        "}",
        "",
    ])


def _wait_port(netns: str, address: str, port: int, what: str, log: Path) -> None:
    probe = ("import socket,sys\ns=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
             "print(s.recv(200).decode().strip())")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe, address, str(port)],
                                capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            return
        time.sleep(0.2)
    tail = log.read_text()[-2000:] if log.exists() else "(no log)"
    raise MailboxError("%s did not answer on %s:%d in netns %s:\n%s" % (what, address, port, netns, tail))


def start(name: str, netns: str, address: str, domains: list[str], hostname: str) -> dict:
    """Configure and start Postfix and Dovecot inside ``netns`` (which must exist); returns the login."""
    for tool in ("postfix", "dovecot"):
        if shutil.which(tool) is None:
            raise MailboxError("%s is not installed (Debian packages postfix and dovecot-imapd; `make apt`)" % tool)
    base = home(name)
    stop(name)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    base.chmod(0o755)
    (base / "postfix").mkdir()
    (base / "postfix" / "main.cf").write_text(postfix_main_cf(base, address, domains, hostname))
    (base / "postfix" / "master.cf").write_text("\n".join(POSTFIX_SERVICES) + "\n")
    (base / "dovecot.conf").write_text(dovecot_conf(base, address, name))
    password = secrets.token_urlsafe(18)
    users = base / "users"
    users.write_text("%s:{PLAIN}%s\n" % (USER, password))
    os.chown(users, 0, _gid("dovecot"))
    users.chmod(0o640)
    (base / "mail").mkdir()
    os.chown(base / "mail", _uid("mail"), _gid("mail"))
    (base / "mail").chmod(0o750)
    (base / "postfix-spool").mkdir(mode=0o755)
    (base / "postfix-data").mkdir(mode=0o700)
    os.chown(base / "postfix-data", _uid("postfix"), _gid("postfix"))
    conf = str(base / "postfix")
    # `postfix check` creates the spool's directories with their owners (postfix-files).
    started = base / "start.log"
    _run(["ip", "netns", "exec", netns, "postfix", "-c", conf, "check"], started)
    _run(["ip", "netns", "exec", netns, "dovecot", "-c", str(base / "dovecot.conf")], started)
    _wait_port(netns, address, IMAP_PORT, "Dovecot IMAP", base / "dovecot.log")
    _run(["ip", "netns", "exec", netns, "postfix", "-c", conf, "start"], started)
    _wait_port(netns, address, SMTP_PORT, "Postfix", base / "postfix.log")
    login = {"host": address, "port": IMAP_PORT, "user": USER, "password": password,
             "smtp_host": address, "smtp_port": SMTP_PORT, "domains": domains, "netns": netns}
    return login


def stop(name: str) -> None:
    """SIGTERM to each master process (Postfix's and Dovecot's, by their pid files); wait until they are gone."""
    base = home(name)
    for pid_file in (base / "postfix-spool" / "pid" / "master.pid", base / "dovecot-run" / "master.pid"):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path("/proc/%d" % pid).exists():
            time.sleep(0.1)


def remove(name: str) -> None:
    stop(name)
    shutil.rmtree(home(name), ignore_errors=True)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _gid(group: str) -> int:
    import grp

    return grp.getgrnam(group).gr_gid


# ---------------------------------------------------------------- reading it, as an injector does
def fetch(login: dict, timeout: float = 10) -> list[bytes]:
    """Every message in the INBOX, over IMAP, read-only (the injector's own polling is not disturbed).
    The controller reaches the mailbox directly: its end of the ISP world's bridge is on the same network."""
    client = imaplib.IMAP4(login["host"], int(login["port"]), timeout=timeout)
    try:
        client.login(login["user"], login["password"])
        client.select("INBOX", readonly=True)
        status, data = client.search(None, "ALL")
        if status != "OK":
            raise MailboxError("IMAP SEARCH failed: %r" % data)
        messages = []
        for number in data[0].split():
            status, parts = client.fetch(number, "(BODY.PEEK[])")
            if status != "OK":
                raise MailboxError("IMAP FETCH %s failed: %r" % (number, parts))
            messages += [part[1] for part in parts if isinstance(part, tuple)]
        return messages
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def _field(block, name: str) -> str:
    return " ".join(str(block.get(name, "") or "").split())


def _typed(value: str) -> str:
    """``rfc822; a@b`` -> ``a@b`` (RFC 3464 §2.3 address-type; RFC 5965 §3.5 angle brackets)."""
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def parse_report(raw: bytes) -> dict | None:
    """One mailbox message -> ``{"kind": "dsn"|"arf", "recipients": [...], ...}`` or None (not a report).

    DSN (RFC 3464): a multipart/report with report-type=delivery-status, one per-recipient block with
    Action ``failed`` per bounced recipient (its Final-Recipient, else Original-Recipient). ARF (RFC 5965):
    report-type=feedback-report, the reported recipient from Original-Rcpt-To (else the original's To)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        return None
    report_type = (message.get_param("report-type") or "").lower()
    parts = message.get_payload()
    if not isinstance(parts, list):
        return None
    common = {"message_id": _field(message, "Message-ID"), "from": _field(message, "From"),
              "delivered_to": _field(message, "Delivered-To") or _field(message, "X-Original-To")}
    if report_type == "delivery-status":
        status = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
        blocks = status.get_payload() if status is not None else None
        if not isinstance(blocks, list) or not blocks:
            return None
        failed = []
        for block in blocks[1:]:
            if _field(block, "Action").lower() == "failed":
                failed.append({"rcpt": _typed(_field(block, "Final-Recipient") or _field(block, "Original-Recipient")),
                               "status": _field(block, "Status"), "diag": _field(block, "Diagnostic-Code")})
        return dict(common, kind="dsn", reporting_mta=_typed(_field(blocks[0], "Reporting-MTA")),
                    recipients=[f["rcpt"] for f in failed], failures=failed)
    if report_type == "feedback-report":
        report = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
        if report is None:
            return None
        fields = report.get_payload()
        if isinstance(fields, list):
            fields = fields[0] if fields else None
        if isinstance(fields, str):
            fields = email.message_from_string(fields)
        if fields is None:
            return None
        rcpt = _typed(_field(fields, "Original-Rcpt-To"))
        if not rcpt:
            original = next((p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")),
                            None)
            if original is not None:
                payload = original.get_payload()
                headers = payload[0] if isinstance(payload, list) else email.message_from_string(str(payload))
                rcpt = email.utils.parseaddr(_field(headers, "To"))[1].lower()
        return dict(common, kind="arf", feedback_type=_field(fields, "Feedback-Type").lower(),
                    source_ip=_field(fields, "Source-IP"), recipients=[rcpt] if rcpt else [])
    return None


def reports(login: dict) -> list[dict]:
    return [r for r in (parse_report(raw) for raw in fetch(login)) if r is not None]


def tally(found: list[dict]) -> dict:
    """{"dsn": {rcpt: times}, "arf": {rcpt: times}}: how often each recipient is in the mailbox."""
    out: dict[str, dict[str, int]] = {"dsn": {}, "arf": {}}
    for report in found:
        for rcpt in report["recipients"]:
            out[report["kind"]][rcpt] = out[report["kind"]].get(rcpt, 0) + 1
    return out


# ---------------------------------------------------------------- what the sinks say should be there
def expected(world_dir: Path, bounce_domains: list[str]) -> dict:
    """{"dsn": set, "arf": set} of recipients the ISP sinks rejected (a synchronous hard bounce whose return
    path is at a bounce domain: PowerMTA's DSN goes there), sent a late DSN about, or complained about."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import isp_sinks  # noqa: E402 - next to this file
    import isp_world  # noqa: E402

    world = isp_world.load(world_dir)
    domains = {d.lower() for d in bounce_domains}
    dsn, arf = set(), set()
    for group in world["groups"]:
        sink = world_dir / "sinks" / group["name"]
        for item in isp_sinks.read_jsonl(sink / "rejected.jsonl"):
            if item.get("mail_from", "").rpartition("@")[2].lower() in domains and item.get("hard"):
                dsn.add(item["rcpt"].lower())
        for item in isp_sinks.read_jsonl(sink / "outbound.jsonl"):
            if item.get("status") != "sent" or not item.get("about"):
                continue
            (dsn if item["kind"] == "dsn" else arf).add(item["about"].lower())
    return {"dsn": dsn, "arf": arf}


def group_of(world: dict, rcpt: str) -> str:
    domain = rcpt.rpartition("@")[2].lower()
    return next((g["name"] for g in world["groups"] if domain in g["domains"]), "-")


def read_suppression(path: Path) -> dict:
    """{email: times listed} of the suppression CSV playbooks/suppression.yml wrote (empty when none yet)."""
    listed: dict[str, int] = {}
    if not path.is_file():
        return listed
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            email = row["email"].lower()
            listed[email] = listed.get(email, 0) + 1
    return listed


def compare(world_dir: Path, login: dict, bounce_domains: list[str], suppression_csv: Path | None = None) -> dict:
    """Per ISP group: what the sinks sent back (or rejected) beside what is in the mailbox and, when given, in
    the suppression CSV (every bounced or complained-about recipient listed exactly once)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import isp_world  # noqa: E402

    world = isp_world.load(world_dir)
    want = expected(world_dir, bounce_domains)
    got = tally(reports(login))
    columns = ("sink_bounces", "sink_complaints", "mailbox_dsns", "mailbox_arf", "duplicates")
    rows = {g["name"]: dict.fromkeys(columns, 0) for g in world["groups"]}
    for kind, column in (("dsn", "sink_bounces"), ("arf", "sink_complaints")):
        for rcpt in want[kind]:
            rows.setdefault(group_of(world, rcpt), dict.fromkeys(columns, 0))[column] += 1
    for kind, column in (("dsn", "mailbox_dsns"), ("arf", "mailbox_arf")):
        for rcpt, times in got[kind].items():
            row = rows.setdefault(group_of(world, rcpt), dict.fromkeys(columns, 0))
            row[column] += 1
            row["duplicates"] += times - 1
    missing = {kind: sorted(want[kind] - set(got[kind])) for kind in want}
    unexpected = {kind: sorted(set(got[kind]) - want[kind]) for kind in want}
    if suppression_csv is not None:
        listed = read_suppression(suppression_csv)
        for rcpt, times in listed.items():
            row = rows.setdefault(group_of(world, rcpt), dict.fromkeys(columns, 0))
            row["suppressed"] = row.get("suppressed", 0) + 1
            row["duplicates"] += times - 1
        everyone = want["dsn"] | want["arf"]
        missing["suppression"] = sorted(everyone - set(listed))
        unexpected["suppression"] = sorted(set(listed) - everyone)
    for row in rows.values():
        row["agree"] = (row["sink_bounces"] == row["mailbox_dsns"] and row["sink_complaints"] == row["mailbox_arf"]
                        and row["duplicates"] == 0)
        if suppression_csv is not None:
            row.setdefault("suppressed", 0)
    return {"groups": rows, "missing": missing, "unexpected": unexpected,
            "agree": all(r["agree"] for r in rows.values()) and not any(missing.values())
            and not any(unexpected.values())}


def wait_until_agree(world_dir: Path, login: dict, bounce_domains: list[str], timeout: float,
                     suppression_csv: Path | None = None) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        result = compare(world_dir, login, bounce_domains, suppression_csv)
        if result["agree"] or time.monotonic() > deadline:
            return result
        time.sleep(2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The lab's injector mailbox (Postfix + Dovecot).")
    sub = parser.add_subparsers(dest="command", required=True)
    p_read = sub.add_parser("read")
    p_read.add_argument("--mailbox-json", required=True, type=Path)
    p_cmp = sub.add_parser("compare")
    p_cmp.add_argument("--mailbox-json", required=True, type=Path)
    p_cmp.add_argument("--world", required=True, type=Path)
    p_cmp.add_argument("--bounce-domain", action="append", required=True)
    p_cmp.add_argument("--wait", type=float, default=0, help="seconds to wait for the mailbox to agree")
    p_cmp.add_argument("--suppression-csv", type=Path,
                       help="also compare the suppression export (playbooks/suppression.yml)")
    args = parser.parse_args(argv)
    try:
        login = json.loads(args.mailbox_json.read_text())
        if args.command == "read":
            print(json.dumps(reports(login), indent=1))
        else:
            result = wait_until_agree(args.world, login, args.bounce_domain, args.wait, args.suppression_csv)
            print(json.dumps(result, indent=1, sort_keys=True))
    except (OSError, ValueError, MailboxError, imaplib.IMAP4.error) as exc:
        print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
