# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ISP sinks for the lab: one aiosmtpd server per ISP group, each in its own network namespace.

A sink plays its ISP (see ``isp_world.py`` for the namespaces, addresses and zones):
- accepts mail for its domains and counts it per source IP and per day (``counts.json``);
- defers with the ISP's real throttling reply (a text matched by that group's throttle patterns in
  ``plugins/module_utils/_fleet/isp_groups.py``) once a source IP sent more than ``throttle`` messages
  within ``window`` seconds (``policy.json``, re-read on every message, so tests can change it);
- rejects unknown users (local part ``unknown*``) with ``550 5.1.1``;
- sends an ARF complaint report (RFC 5965) to the fleet's FBL address for recipients ``complain*`` and
  for a ``complaint_share`` of all delivered mail, and a late DSN (RFC 3464, ``5.1.1``) to the
  message's MAIL FROM for recipients ``latebounce*``; both by MX lookup in the lab's BIND 9, from the
  sink's own address (``outbound.jsonl`` logs each attempt).

Run by ``isp_world.py`` inside the sink's namespace:
``python isp_sinks.py serve --dir WORLD_DIR --group gmail``.
"""

from __future__ import annotations

import argparse
import datetime
import email
import email.policy
import email.utils
import json
import os
import random
import re
import signal
import smtplib
import sys
import threading
import time
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

UNKNOWN_USER_RE = re.compile(r"^unknown", re.IGNORECASE)
COMPLAIN_RE = re.compile(r"^complain", re.IGNORECASE)
LATE_BOUNCE_RE = re.compile(r"^latebounce", re.IGNORECASE)
DEFAULT_POLICY = {"throttle": 0, "window": 3600, "complaint_share": 0.0, "dsn_delay": 1.0}


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.rename(path)


def _append_jsonl(path: Path, item: dict) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(item, sort_keys=True) + "\n")


def read_counts(sink_dir: Path) -> dict:
    try:
        return json.loads((sink_dir / "counts.json").read_text())
    except (OSError, ValueError):
        return {"by_ip": {}}


def read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


class SinkState:
    """Counters and logs of one sink, on disk so tests and ``make lab`` read them."""

    def __init__(self, world: dict, group: str, directory: Path):
        self.world = world
        self.group = next(g for g in world["groups"] if g["name"] == group)
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.counts = read_counts(directory)
        self.counts["group"] = group
        self.recent: dict[str, list[float]] = {}
        self.delivered_total = int(self.counts.get("delivered_total", 0))
        _write_json(self.dir / "counts.json", self.counts)
        if not (self.dir / "policy.json").exists():
            _write_json(self.dir / "policy.json", DEFAULT_POLICY)

    def policy(self) -> dict:
        try:
            return dict(DEFAULT_POLICY, **json.loads((self.dir / "policy.json").read_text()))
        except (OSError, ValueError):
            return dict(DEFAULT_POLICY)

    def count(self, ip: str, what: str, number: int = 1) -> None:
        with self.lock:
            day = self.counts["by_ip"].setdefault(ip, {}).setdefault(today(), {})
            day[what] = day.get(what, 0) + number
            if what == "accepted":
                self.delivered_total += number
                self.counts["delivered_total"] = self.delivered_total
            _write_json(self.dir / "counts.json", self.counts)

    def over_rate(self, ip: str) -> bool:
        """True when ``ip`` already had ``throttle`` messages accepted within ``window`` seconds."""
        policy = self.policy()
        limit = int(policy.get("throttle") or 0)
        if limit <= 0:
            return False
        horizon = time.time() - float(policy.get("window") or 3600)
        with self.lock:
            stamps = [t for t in self.recent.get(ip, []) if t > horizon]
            self.recent[ip] = stamps
            return len(stamps) >= limit

    def note_accepted(self, ip: str) -> None:
        with self.lock:
            self.recent.setdefault(ip, []).append(time.time())


class SinkHandler:
    """aiosmtpd handler: the ISP's answers to MAIL, RCPT and DATA."""

    def __init__(self, state: SinkState):
        self.state = state
        self.domains = {d.lower() for d in state.group["domains"]}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd API
        ip = session.peer[0]
        local, _at, domain = address.rpartition("@")
        if domain.lower() not in self.domains:
            self.state.count(ip, "rejected")
            return "550 5.7.1 Relaying denied: %s is not served here" % domain
        if UNKNOWN_USER_RE.match(local):
            self.state.count(ip, "rejected")
            with self.state.lock:  # which recipient, for the lab mailbox's check (lab_mailbox.py)
                _append_jsonl(self.state.dir / "rejected.jsonl", {"time": now_iso(), "peer": ip, "rcpt": address,
                                                                  "mail_from": envelope.mail_from, "hard": True})
            return ("550 5.1.1 <%s>: The email account that you tried to reach does not exist "
                    "(user unknown)" % address)
        if self.state.over_rate(ip):
            self.state.count(ip, "deferred")
            return self.state.group["throttle_reply"].format(ip=ip)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        ip = session.peer[0]
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        record = {
            "time": now_iso(), "peer": ip, "helo": session.host_name, "mail_from": envelope.mail_from,
            "rcpts": list(envelope.rcpt_tos), "message_id": message.get("Message-ID", ""),
            "subject": message.get("Subject", ""),
        }
        self.state.note_accepted(ip)
        self.state.count(ip, "accepted", len(envelope.rcpt_tos))
        _append_jsonl(self.state.dir / "messages.jsonl", record)
        policy = self.state.policy()
        for rcpt in envelope.rcpt_tos:
            local = rcpt.split("@", 1)[0]
            share = float(policy.get("complaint_share") or 0.0)
            by_share = share > 0 and int(self.state.delivered_total * share) != int(
                (self.state.delivered_total - 1) * share)
            if COMPLAIN_RE.match(local) or by_share:
                self._later(0.2, "arf", build_arf(self.state, ip, envelope.mail_from, rcpt, raw),
                            self.state.world["fbl_address"], "", rcpt)
            if LATE_BOUNCE_RE.match(local) and envelope.mail_from:
                self._later(float(policy.get("dsn_delay") or 0), "dsn",
                            build_dsn(self.state, ip, envelope.mail_from, rcpt, raw), envelope.mail_from, "", rcpt)
        return "250 2.0.0 OK: queued as %08x" % random.getrandbits(32)

    def _later(self, delay, kind, message, rcpt, mail_from, about):
        thread = threading.Thread(target=send_report, args=(self.state, kind, message, rcpt, mail_from, delay),
                                  kwargs={"about": about}, daemon=True)
        thread.start()


def _original_headers(raw: bytes) -> bytes:
    head, _sep, _body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head + b"\n"


def _report(kind: str, headers: dict, text: str, report_part: MIMEBase, raw: bytes) -> MIMEMultipart:
    """multipart/report (RFC 6522): human text, the machine-readable part, the original headers."""
    outer = MIMEMultipart("report", report_type=kind)
    for name, value in headers.items():
        outer[name] = value
    outer.attach(MIMEText(text))
    outer.attach(report_part)
    original = MIMEBase("text", "rfc822-headers")
    original.set_payload(_original_headers(raw).decode("utf-8", "replace"))
    outer.attach(original)
    return outer


def _headers(group: dict, sender: str, to: str, subject: str) -> dict:
    return {"From": sender, "To": to, "Subject": subject, "Date": email.utils.formatdate(usegmt=True),
            "Message-ID": email.utils.make_msgid(domain=group["mx_host"])}


def build_arf(state: SinkState, source_ip: str, mail_from: str, rcpt: str, raw: bytes) -> Message:
    """An abuse report (RFC 5965): text part, message/feedback-report, the original headers."""
    group = state.group
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload(
        "Feedback-Type: abuse\n"
        "User-Agent: mailops-isp-sink/1.0\n"
        "Version: 1\n"
        "Original-Mail-From: <%s>\n"
        "Original-Rcpt-To: <%s>\n"
        "Arrival-Date: %s\n"
        "Reporting-MTA: dns; %s\n"
        "Source-IP: %s\n" % (mail_from, rcpt, email.utils.formatdate(usegmt=True), group["mx_host"], source_ip))
    headers = _headers(group, "Feedback Loop <fbl@%s>" % group["domains"][0], state.world["fbl_address"],
                       "Complaint about a message from %s" % source_ip)
    return _report("feedback-report", headers,
                   "This is an email abuse report for a message received from IP %s.\n" % source_ip, feedback, raw)


def build_dsn(state: SinkState, source_ip: str, mail_from: str, rcpt: str, raw: bytes) -> Message:
    """A late non-delivery report (RFC 3464): the mailbox turned out not to exist."""
    group = state.group
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; %s" % group["mx_host"]
    per_message["Arrival-Date"] = email.utils.formatdate(usegmt=True)
    per_recipient["Final-Recipient"] = "rfc822; %s" % rcpt
    per_recipient["Original-Recipient"] = "rfc822; %s" % rcpt
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Remote-MTA"] = "dns; %s" % group["mx_host"]
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 <%s>: user unknown (mailbox removed after acceptance)" % rcpt
    status = MIMEBase("message", "delivery-status")
    status.set_payload([per_message, per_recipient])
    headers = _headers(group, "Mail Delivery Subsystem <mailer-daemon@%s>" % group["mx_host"], mail_from,
                       "Undelivered Mail Returned to Sender")
    headers["Auto-Submitted"] = "auto-replied"
    return _report("delivery-status", headers,
                   "Your message to <%s> could not be delivered: the mailbox does not exist.\n" % rcpt, status, raw)


def resolve_mx(world: dict, domain: str) -> list[str]:
    """Addresses of the lowest-preference MX hosts of ``domain`` (A of the domain without MX)."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [world["resolver"]]
    resolver.lifetime = 5
    try:
        answers = sorted(resolver.resolve(domain, "MX"), key=lambda r: r.preference)
        best = answers[0].preference
        hosts = [str(r.exchange).rstrip(".") for r in answers if r.preference == best]
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        hosts = [domain]
    addresses = []
    for host in hosts:
        try:
            addresses += [str(r) for r in resolver.resolve(host, "A")]
        except dns.exception.DNSException:
            continue
    return addresses


def send_report(state: SinkState, kind: str, message: Message, rcpt: str, mail_from: str, delay: float,
                attempts: int = 20, about: str = "") -> None:
    """Deliver an ARF/DSN by MX lookup from the sink's own address; log every attempt (``about``: the
    recipient the report is about)."""
    time.sleep(delay)
    domain = rcpt.rpartition("@")[2]
    result = {"time": now_iso(), "kind": kind, "rcpt": rcpt, "mail_from": mail_from,
              "message_id": message["Message-ID"], "about": about}
    for attempt in range(1, attempts + 1):
        try:
            addresses = resolve_mx(state.world, domain)
            if not addresses:
                raise OSError("no MX/A address for %s" % domain)
            with smtplib.SMTP(addresses[0], 25, local_hostname=state.group["mx_host"], timeout=20,
                              source_address=(state.group["address"], 0)) as client:
                refused = client.sendmail(mail_from, [rcpt], message.as_bytes())
            result.update(status="sent", attempt=attempt, to=addresses[0], refused=str(refused or ""))
            break
        except (OSError, smtplib.SMTPException) as exc:
            result.update(status="failed", attempt=attempt, error="%s: %s" % (type(exc).__name__, exc))
            time.sleep(min(2 * attempt, 10))
    with state.lock:
        _append_jsonl(state.dir / "outbound.jsonl", result)


def serve(world_dir: Path, group: str) -> int:
    from aiosmtpd.controller import Controller

    world = json.loads((world_dir / "world.json").read_text())
    state = SinkState(world, group, world_dir / "sinks" / group)
    handler = SinkHandler(state)
    controller = Controller(handler, hostname=state.group["address"], port=25,
                            server_hostname=state.group["mx_host"], ident="ISP sink (%s)" % group)
    controller.start()
    (state.dir / "ready").write_text("%d\n" % os.getpid())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    signal.signal(signal.SIGINT, lambda *_args: stop.set())
    while not stop.wait(1):
        pass
    controller.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="One ISP sink (run by isp_world.py in its namespace).")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve")
    run.add_argument("--dir", required=True, type=Path, help="the world directory (world.json)")
    run.add_argument("--group", required=True)
    args = parser.parse_args(argv)
    return serve(args.dir, args.group)


if __name__ == "__main__":
    sys.exit(main())
