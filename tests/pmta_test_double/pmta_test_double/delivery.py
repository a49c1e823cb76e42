# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: one outbound SMTP connection (smtplib client).

Binds the vMTA's ``smtp-source-host`` address (§3.3.12, §3.3.1.16) and says
EHLO with its host name; tries MX preference levels in order (§3.3.10.89);
uses STARTTLS when offered and ``use-starttls`` is on (certificates are not
verified), refuses to go on without it when ``require-starttls``. Every
non-2xx reply is matched against the queue's ``smtp-pattern-list`` (§3.3.15,
first match wins, case-insensitive, on "CODE TEXT"): ``mode=backoff``,
``mode=normal``, ``skip-mx``, ``bounce-queue``, ``bounce-rcpt`` (4xx RCPT
only), ``disable-source-ip`` [``reenable-after``], ``defer-queue``.
"""

from __future__ import annotations

import re
import smtplib
import ssl

from . import routing, values
from .clock import CLOCK

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
STATUS_TEXT = {
    "2.0.0": "success", "5.1.1": "bad destination mailbox address", "5.1.2": "bad destination system address",
    "4.4.1": "no answer from host", "4.4.3": "directory server failure", "4.4.4": "unable to route",
    "4.4.7": "delivery time expired", "5.2.2": "mailbox full", "4.2.2": "mailbox full",
    "4.7.0": "other or undefined security status", "5.7.1": "delivery not authorized, message refused",
}
# §11.6 categories, by a small reading of the reply (PowerMTA's own table lives in config-defaults).
CATEGORIES = [
    (re.compile(r"\b5\.1\.[016]\b|unknown user|no such user|user unknown|mailbox unavailable", re.I), "bad-mailbox"),
    (re.compile(r"\b5\.1\.2\b|no such domain|host not found", re.I), "bad-domain"),
    (re.compile(r"\b[45]\.2\.2\b|quota|mailbox full", re.I), "quota-issues"),
    (re.compile(r"spam|blocked|blacklist|blocklist|\brbl\b", re.I), "spam-related"),
    (re.compile(r"relay", re.I), "relaying-issues"),
    (re.compile(r"\b5\.7\.\d+\b|policy", re.I), "policy-related"),
]


def status_of(code, text):
    match = _ENHANCED.search(text)
    status = match.group(1) if match else "%d.0.0" % (code // 100)
    return "%s (%s)" % (status, STATUS_TEXT.get(status, "other"))


def category_of(text):
    for regex, category in CATEGORIES:
        if regex.search(text):
            return category
    return "other"


class SkipHost(Exception):
    pass


class ErrorLimit(Exception):
    """max-errors-per-connection reached: close, the rest waits for the next connection."""


class Session:
    def __init__(self, outbound, queue, settings, batch):
        self.outbound = outbound
        self.queue = queue
        self.settings = settings
        self.batch = batch
        self.pending = list(batch)
        config = outbound.state.config
        vmta = config.vmtas.get(queue.vmta)
        self.source_ip, self.helo = "", config.host_name
        # Sources disabled for this queue (pmta disable source, §6.3.33) are skipped.
        sources = [s for s in outbound.enabled_sources(queue) if s[0]]
        if sources:
            # Several smtp-source-host lines are used in turn (§3.3.1.16); a vMTA's override the global ones.
            # A CIDR range is not expanded to the host's addresses here: the OS picks the source then.
            ip, name = sources[outbound.next_source(queue.vmta) % len(sources)]
            self.source_ip = "" if "/" in ip else ip
            self.helo = name or (vmta.host_name if vmta else "") or config.host_name
        elif vmta is not None and vmta.host_name:
            self.helo = vmta.host_name
        self.mta = ""
        self.dest_ip = ""
        self.esmtp = ""
        self.last = ("4.4.1 (no answer from host)", "smtp;451 4.4.1 no host answered", "")
        self.stop_queue = False
        self.errors = 0
        self.max_errors = values.unlimited_or_int(settings.get("max-errors-per-connection", "0"))
        self.released = False

    # -- outcomes ------------------------------------------------------
    def _done(self, recipient):
        if recipient in self.pending:
            self.pending.remove(recipient)

    def deliver_ok(self, recipient, code, text):
        self._done(recipient)
        self.outbound.finish(self.queue, recipient, "d", status_of(code, text), "smtp;%d %s" % (code, text),
                             self.mta, self.source_ip, self.dest_ip, self.esmtp)

    def bounce(self, recipient, status, diag, category):
        self._done(recipient)
        self.outbound.finish(self.queue, recipient, "b", status, diag, self.mta, self.source_ip, self.dest_ip,
                             self.esmtp, category)

    def defer(self, recipient, status, diag):
        self._done(recipient)
        self.outbound.transient(self.queue, recipient, status, diag, self.mta, self.source_ip, self.dest_ip,
                                self.esmtp)

    def transient_all(self, status, diag, mta):
        self.mta = mta or self.mta
        if self.pending:
            self.outbound.queue_transient(self.queue, status, diag, self.mta, self.source_ip, self.dest_ip)
        for recipient in list(self.pending):
            self.defer(recipient, status, diag)

    def outcome(self, recipient, code, text, stage):
        """Apply a per-recipient reply; pattern actions first."""
        if 200 <= code < 300:
            self.deliver_ok(recipient, code, text)
            return set()
        actions = self.react(code, text)
        diag = "smtp;%d %s" % (code, text)
        if "bounce-queue" in actions:
            return actions
        if code >= 500 and "skip-mx" not in actions:
            self.bounce(recipient, status_of(code, text), diag, category_of(text))
        elif "bounce-rcpt" in actions and stage == "RCPT" and code < 500:
            self.bounce(recipient, status_of(code, text), diag, category_of(text))
        elif "skip-mx" not in actions:
            self.defer(recipient, status_of(code, text), diag)
        return actions

    # -- pattern list (§3.3.15) ----------------------------------------
    def react(self, code, text):
        self.last = (status_of(code, text), "smtp;%d %s" % (code, text), self.mta)
        self.errors += 1
        name = self.settings.get("smtp-pattern-list")
        rules = self.outbound.state.config.pattern_lists.get(name, []) if name else []
        reply = "%d %s" % (code, text)
        for regex, actions in rules:
            if not regex.search(reply):
                continue
            names = {a.split("=", 1)[0] if "=" in a and not a.startswith("mode=") else a for a in actions}
            now = CLOCK.now()
            if "mode=backoff" in names:
                self.outbound.set_mode(self.queue, "backoff")
                timed = [a.split("=", 1)[1] for a in actions if a.startswith("backoff-to-normal-after=")]
                self.queue.backoff_to_normal_after = values.interval(timed[0]) if timed else None
            if "mode=normal" in names:
                self.outbound.set_mode(self.queue, "normal")
            if "disable-source-ip" in names:
                after = [a.split("=", 1)[1] for a in actions if a.startswith("reenable-after=")]
                after = after[0] if after else self.settings.get("reenable-source-ip-after")
                self.queue.disabled_until = now + values.interval(after) if after else float("inf")
            if "defer-queue" in names:
                key = "backoff-retry-after" if self.queue.mode == "backoff" else "retry-after"
                self.queue.retry_at = now + values.interval_list(self.settings.get(key, "10m"))[0]
            if "bounce-queue" in names:
                self.bounce_queue(code, text)
            if names & {"bounce-queue", "defer-queue", "disable-source-ip"}:
                self.stop_queue = True
            self.outbound.state.log("queue %s: reply %r matched pattern list %s: %s" % (
                self.queue.key, reply, name, ",".join(actions)))
            return names
        return set()

    def bounce_queue(self, code, text):
        diag = "smtp;%d %s (queue bounced by smtp-pattern-list bounce-queue)" % (code, text)
        for recipient in list(self.queue.recipients):
            self.bounce(recipient, status_of(code, text).replace("4.", "5.", 1), diag, category_of(text))

    # -- the session ---------------------------------------------------
    def run(self):
        config = self.outbound.state.config
        resolver = self.outbound.resolver
        first = self.batch[0]
        try:
            levels = routing.destinations(config, resolver, self.queue.name, self.queue.vmta, first.domain,
                                          first.by_ip)
        except routing.NoSuchDomain as exc:
            for recipient in list(self.pending):
                self.bounce(recipient, "5.1.2 (bad destination system: no such domain)",
                            "smtp;550 5.1.2 %s" % exc, "bad-domain")
            return
        except routing.TemporaryDnsError as exc:
            self.transient_all("4.4.3 (directory server failure)", "smtp;451 4.4.3 DNS: %s" % exc, "")
            return
        except routing.NoRoute as exc:
            self.transient_all("4.4.4 (unable to route)", "smtp;451 4.4.4 %s" % exc, "")
            return
        for host, port in _hosts(levels):
            if not self.pending or self.stop_queue:
                break
            try:
                addresses = resolver.addresses(host)
            except routing.NoSuchDomain:
                self.last = ("4.4.4 (unable to route)", "smtp;451 4.4.4 %s has no address" % host, host)
                continue
            except routing.TemporaryDnsError as exc:
                self.last = ("4.4.3 (directory server failure)", "smtp;451 4.4.3 %s" % exc, host)
                continue
            for address in addresses:
                if not self.pending or self.stop_queue:
                    break
                try:
                    self.attempt(host, address, port)
                except SkipHost:
                    continue
                except ErrorLimit:
                    self.released = True  # untried recipients stay ready for a new connection
                    return
        if self.pending and not self.released:
            self.transient_all(*self.last)

    def attempt(self, host, address, port):
        self.mta = "%s (%s)" % (host, address)
        self.dest_ip = address
        source = (self.source_ip, 0) if self.source_ip else None
        smtp = smtplib.SMTP(local_hostname=self.helo, timeout=30, source_address=source)
        try:
            try:
                code, text = smtp.connect(address, port)
            except OSError as exc:
                self.last = ("4.4.1 (no answer from host)", "smtp;451 4.4.1 connect to %s:%d from %s failed: %s" % (
                    address, port, self.source_ip or "default address", exc), self.mta)
                raise SkipHost() from exc
            text = _text(text)
            if code != 220:
                self.react(code, text)
                raise SkipHost()
            code, text = smtp.ehlo()
            if code != 250:
                code, text = smtp.helo()
            self.esmtp = ",".join(sorted(smtp.esmtp_features))
            if values.boolean(self.settings.get("use-starttls"), True) and smtp.has_extn("starttls"):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                # smtplib takes the TLS server name from the host given to its constructor; we connect by
                # address ourselves (to keep the greeting's reply), so name the MX here.
                smtp._host = host
                smtp.starttls(context=context)
                smtp.ehlo()
            elif values.boolean(self.settings.get("require-starttls"), False):
                self.last = ("4.7.0 (other or undefined security status)",
                             "smtp;454 4.7.0 require-starttls but %s does not offer STARTTLS" % host, self.mta)
                raise SkipHost()
            self.send_all(smtp)
            try:
                smtp.quit()
            except smtplib.SMTPException:
                pass
        except smtplib.SMTPServerDisconnected as exc:
            self.last = ("4.4.2 (bad connection)", "smtp;451 4.4.2 connection lost: %s" % exc, self.mta)
        except (smtplib.SMTPException, OSError) as exc:
            self.last = ("4.4.2 (bad connection)", "smtp;451 4.4.2 %s" % exc, self.mta)
        finally:
            smtp.close()

    def send_all(self, smtp):
        by_message = {}
        for recipient in self.pending:
            by_message.setdefault(recipient.message.id, []).append(recipient)
        for recipients in by_message.values():
            if self.max_errors and self.errors >= self.max_errors:
                try:
                    smtp.quit()
                except smtplib.SMTPException:
                    pass
                raise ErrorLimit()
            message = recipients[0].message
            code, text = smtp.mail(message.orig)
            text = _text(text)
            if code != 250:
                for recipient in recipients:
                    actions = self.outcome(recipient, code, text, "MAIL")
                    if actions & {"skip-mx"} or self.stop_queue:
                        raise SkipHost()
                smtp.rset()
                continue
            accepted = []
            for recipient in recipients:
                code, text = smtp.rcpt(recipient.rcpt)
                text = _text(text)
                if code in (250, 251):
                    accepted.append(recipient)
                    continue
                actions = self.outcome(recipient, code, text, "RCPT")
                if actions & {"skip-mx"} or self.stop_queue:
                    raise SkipHost()
            if not accepted:
                smtp.rset()
                continue
            try:
                code, text = smtp.data(message.data)
            except smtplib.SMTPDataError as exc:
                code, text = exc.smtp_code, exc.smtp_error
            text = _text(text)
            for recipient in accepted:
                actions = self.outcome(recipient, code, text, "DATA")
            if code >= 300 and (actions & {"skip-mx"} or self.stop_queue):
                raise SkipHost()


def _hosts(levels):
    """Preference levels in order; hosts within a level in turn (§3.3.10.89)."""
    for level in levels:
        yield from level


def _text(reply):
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())
