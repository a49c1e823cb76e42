# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the SMTP listener.

PowerMTA's inbound side as the guide describes it (§3.3.7, §3.3.8, §3.3.17):
``<source>`` settings merged from general to specific (then the listener's
``source`` and, after AUTH, the user's source, default ``{auth}``);
``smtp-service no`` refuses the connection; STARTTLS is offered only when the
merged source has ``allow-starttls yes`` (default false, §3.3.7.12) and a
certificate exists (listener ``tls-certificate`` or global
``smtp-server-tls-certificate``); AUTH PLAIN/LOGIN against ``<smtp-user>``
passwords, only over TLS unless ``allow-unencrypted-plain-auth``;
``require-auth``; relaying by ``always-allow-relaying``, ``relay-domain``
(global or per source) or a processor's ``<address-list>`` (§3.3.5).
``X-Virtual-MTA`` (removed unless ``retain-x-virtual-mta``, §3.3.7.48-49) or
``default-virtual-mta`` picks the vMTA; a pool name picks a member round robin
(§3.3.13). Accepted recipients are queued for delivery (queues.py) and give
``r`` records; processors (processors.py) turn DSNs and ARF reports into
``rb``/``f`` records.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import re
import socketserver
import ssl

from . import acct, processors
from .queues import Message, Recipient
from .routing import specificity
from .spool import FULL_REPLY
from .values import boolean

MAX_LINE = 4096


class SmtpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listener, state):
        self.listener = listener
        self.state = state
        family = socketserver.socket.AF_INET6 if ":" in listener.address else socketserver.socket.AF_INET
        self.address_family = family
        super().__init__((listener.address, listener.port), SmtpSession)


class SmtpSession(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.tls = False
        self.auth_user = None
        self.helo = ""
        self.reset()

    def reset(self):
        self.mail_from = None
        self.envid = ""
        self.ret = ""  # DSN RET=FULL|HDRS (RFC 3461)
        self.recipients = []  # [(rcpt, orcpt)]

    # -- helpers --------------------------------------------------------
    @property
    def config(self):
        return self.server.state.config

    def reply(self, code, *lines):
        lines = lines or ("",)
        out = []
        for index, text in enumerate(lines):
            sep = "-" if index < len(lines) - 1 else " "
            out.append("%d%s%s\r\n" % (code, sep, text))
        self.wfile.write("".join(out).encode("utf-8"))
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(MAX_LINE + 2)
        if not line:
            return None
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def settings(self):
        authenticated_source = None
        if self.auth_user is not None:
            authenticated_source = self.config.smtp_users.get(self.auth_user, {}).get("source") or "{auth}"
        return self.config.source_settings(
            self.client_address[0], authenticated_source, self.server.listener.source
        )

    def log(self, text):
        self.server.state.log("smtp %s: %s" % (self.client_address[0], text))

    # -- session --------------------------------------------------------
    def handle(self):
        settings = self.settings()
        if not boolean(settings.get("smtp-service"), True):
            self.reply(421, "4.3.2 service not available to %s" % self.client_address[0])
            return
        self.reply(220, "%s ESMTP %s" % (self.config.host_name, "PowerMTA TEST DOUBLE"))
        while True:
            line = self.readline()
            if line is None:
                return
            verb, _sep, argument = line.partition(" ")
            verb = verb.upper()
            handler = getattr(self, "smtp_" + verb, None)
            if handler is None:
                self.reply(500, "5.5.1 unrecognized command")
                continue
            if handler(argument.strip()) == "quit":
                return

    def smtp_HELO(self, argument):
        self.helo = argument
        self.reset()
        self.reply(250, self.config.host_name)

    def smtp_EHLO(self, argument):
        self.helo = argument
        self.reset()
        lines = [self.config.host_name + " says hello", "ENHANCEDSTATUSCODES", "PIPELINING", "8BITMIME", "DSN",
                 "SIZE"]
        if self.starttls_certificate() and not self.tls:
            lines.append("STARTTLS")
        if self.config.smtp_users and self.auth_allowed():
            lines.append("AUTH PLAIN LOGIN")
        lines.append("OK")
        self.reply(250, *lines)

    def auth_allowed(self):
        return self.tls or boolean(self.settings().get("allow-unencrypted-plain-auth"), False)

    def starttls_certificate(self):
        """§3.3.7.12: STARTTLS only for sources with allow-starttls (default false)."""
        if not boolean(self.settings().get("allow-starttls"), False):
            return None
        return self.server.listener.tls_certificate or self.config.server_tls_certificate

    def smtp_STARTTLS(self, argument):
        certificate = self.starttls_certificate()
        if not certificate or self.tls:
            self.reply(454, "4.7.0 TLS not available")
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(certificate)
        except (OSError, ssl.SSLError) as exc:
            self.log("cannot load certificate: %s" % exc)
            self.reply(454, "4.7.0 TLS not available")
            return None
        self.reply(220, "2.0.0 ready to start TLS")
        try:
            self.request = context.wrap_socket(self.request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self.log("TLS handshake failed: %s" % exc)
            return "quit"
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb")
        self.tls = True
        self.helo = ""
        self.reset()
        return None

    def smtp_AUTH(self, argument):
        if self.auth_user is not None:
            self.reply(503, "5.5.1 already authenticated")
            return None
        if not self.auth_allowed():
            self.reply(538, "5.7.11 encryption required for requested authentication mechanism")
            return None
        mechanism, _sep, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        try:
            if mechanism == "PLAIN":
                if not initial:
                    self.reply(334, "")
                    initial = self.readline() or ""
                parts = base64.b64decode(initial, validate=True).decode("utf-8").split("\0")
                if len(parts) != 3:
                    raise ValueError("malformed PLAIN response")
                username, password = parts[1], parts[2]
            elif mechanism == "LOGIN":
                if initial:
                    username = base64.b64decode(initial, validate=True).decode("utf-8")
                else:
                    self.reply(334, base64.b64encode(b"Username:").decode())
                    username = base64.b64decode(self.readline() or "", validate=True).decode("utf-8")
                self.reply(334, base64.b64encode(b"Password:").decode())
                password = base64.b64decode(self.readline() or "", validate=True).decode("utf-8")
            else:
                self.reply(504, "5.5.4 unrecognized authentication type")
                return None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            self.reply(501, "5.5.2 cannot decode response")
            return None
        user = self.config.smtp_users.get(username)
        if user is None or user["method"] != "password" or user["password"] != password:
            self.log("authentication failed for %r" % username)
            self.reply(535, "5.7.8 authentication failed")
            return None
        self.auth_user = username
        self.log("authenticated as %s" % username)
        self.reply(235, "2.7.0 authentication succeeded")
        return None

    def smtp_MAIL(self, argument):
        if not argument.upper().startswith("FROM:"):
            self.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
            return
        if self.mail_from is not None:
            self.reply(503, "5.5.1 sender already given")
            return
        settings = self.settings()
        if boolean(settings.get("require-auth"), False) and self.auth_user is None:
            self.reply(530, "5.7.0 authentication required")
            return
        if not self.server.state.outbound.spool.accepting():
            # §3.3.2.4: below min-free-space PowerMTA stops accepting mail into the spool (spool.py).
            self.reply(*FULL_REPLY)
            return
        address, params = _address_and_params(argument[5:])
        self.mail_from = address
        self.envid = params.get("ENVID", "")
        self.ret = params.get("RET", "").upper()
        self.reply(250, "2.1.0 MAIL ok")

    def smtp_RCPT(self, argument):
        if self.mail_from is None:
            self.reply(503, "5.5.1 need MAIL before RCPT")
            return
        if not argument.upper().startswith("TO:"):
            self.reply(501, "5.5.4 syntax: RCPT TO:<address>")
            return
        address, params = _address_and_params(argument[3:])
        domain = address.rpartition("@")[2].lower()
        if not self.may_relay(address, domain):
            self.reply(550, "5.7.1 relaying denied for %s" % address)
            return
        self.recipients.append((address, params.get("ORCPT", "")))
        self.reply(250, "2.1.5 RCPT ok")

    def may_relay(self, address, domain):
        settings = self.settings()
        if boolean(settings.get("always-allow-relaying"), False):
            return True
        # relay-domain (§3.3.1.32.2, names or patterns, global or per source), relay-address
        # (§3.3.1.32.3), host-name (§3.3.1.25: "behaves like relay-domain").
        relay_domains = set(self.config.relay_domains) | set(self.config.host_names)
        relay_domains.update(d.lower() for d in (settings.get("relay-domain") or "").split())
        if any(specificity(pattern, domain) is not None for pattern in relay_domains):
            return True
        for item in self.config.relay_addresses + (settings.get("relay-address") or "").split():
            if item.startswith("/") and item.endswith("/") and len(item) > 1:
                if re.search(item[1:-1], address, re.IGNORECASE):
                    return True
            elif item.lower() == address.lower():
                return True
        return any(p.matches(address) for p in self.config.processors.values())

    def smtp_DATA(self, argument):
        if not self.recipients:
            self.reply(503, "5.5.1 need RCPT before DATA")
            return None
        self.reply(354, "start mail input; end with <CRLF>.<CRLF>")
        chunks = []
        size = 0
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                return "quit"
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b".."):
                line = line[1:]
            chunks.append(line)
            size += len(line)
        message = b"".join(chunks)
        self.accept(message, size)
        return None

    def accept(self, message, size):
        state = self.server.state
        config = self.config
        settings = self.settings()
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(message)
        requested = None
        if boolean(settings.get("process-x-virtual-mta"), False):
            requested = (headers.get("X-Virtual-MTA") or "").strip() or None
            if requested and not boolean(settings.get("retain-x-virtual-mta"), False):
                message = _remove_header(message, b"x-virtual-mta")
        if requested is None:
            default = (settings.get("default-virtual-mta") or "").strip()
            if default == "by-smtp-source-ip":
                requested = config.vmta_by_ip(self.request.getsockname()[0]) or None
            else:
                requested = default or None
        vmta, pool = "", ""
        if requested:
            members = config.resolve_vmta(requested)
            if not members:
                self.reply(550, "5.7.1 unknown virtual MTA or pool %s" % requested)
                self.reset()
                return
            if requested in config.pools:
                pool = requested
                vmta = members[state.next_index(requested) % len(members)]
            else:
                vmta = requested
                pool = config.pool_of(vmta)
        job = ""
        if boolean(settings.get("process-x-job"), False):
            job = (headers.get(settings.get("jobid-header") or "X-Job") or "").strip()
        src_mta = "%s (%s)" % (self.helo or "unknown", self.client_address[0])
        local_ip = self.request.getsockname()[0]
        to_deliver = processors.process(config, message, self.recipients, local_ip, src_mta)
        now = acct.CLOCK.now()
        item = Message(self.mail_from, self.envid, message, now, "smtp", src_mta, job)
        # PowerMTA's own DSNs for this message (dsn.py): none from a source with suppress-local-dsn (§3.3.7.27);
        # RET from MAIL FROM, else dsn-return-default (§3.3.7.28).
        item.local_dsn = not boolean(settings.get("suppress-local-dsn"), False)
        item.dsn_full = (self.ret or settings.get("dsn-return-default", "system").upper()) == "FULL"
        queued = [Recipient(item, rcpt, orcpt, vmta, pool) for rcpt, orcpt in to_deliver]
        try:
            placed = state.outbound.enqueue(item, queued) if queued else []
        except OSError as exc:  # not on disk, so not accepted: the client keeps the message and retries
            self.log("message from %s refused: cannot spool it: %s" % (self.mail_from, exc.strerror or exc))
            self.reply(*FULL_REPLY)
            self.reset()
            return
        # One r record per received recipient (§11.2.6), also for mail a processor consumed.
        consumed = [Recipient(item, rcpt, orcpt, vmta, pool) for rcpt, orcpt in self.recipients
                    if (rcpt, orcpt) not in to_deliver]
        rows_r = []
        for recipient in [r for r, _queue in placed] + consumed:
            rows_r.append({
                "timeLogged": acct.iso_time(now), "orig": self.mail_from, "rcpt": recipient.rcpt,
                "orcpt": recipient.orcpt, "srcType": "smtp", "srcMta": src_mta, "rcvSourceIp": self.client_address[0],
                "rcvDestinationIp": local_ip, "vmta": recipient.vmta, "vmtaPool": recipient.pool, "jobId": job,
                "envId": self.envid,
            })
        acct.write(config.acct_files, "r", rows_r)
        state.count_in(len(self.recipients), size)
        self.log("accepted message from %s for %d recipient(s) via vmta %r; queued %s" % (
            self.mail_from, len(self.recipients), vmta, ", ".join(sorted({q for _r, q in placed})) or "nothing"))
        self.reply(250, "2.6.0 message received")
        self.reset()

    def smtp_RSET(self, argument):
        self.reset()
        self.reply(250, "2.0.0 reset")

    def smtp_NOOP(self, argument):
        self.reply(250, "2.0.0 OK")

    def smtp_VRFY(self, argument):
        self.reply(502, "5.5.1 VRFY not supported")

    def smtp_QUIT(self, argument):
        self.reply(221, "2.0.0 bye")
        return "quit"


def _address_and_params(text):
    text = text.strip()
    params = {}
    if text.startswith("<"):
        end = text.find(">")
        address = text[1:end] if end > 0 else text[1:]
        rest = text[end + 1 :] if end > 0 else ""
    else:
        address, _sep, rest = text.partition(" ")
    for item in rest.split():
        key, _sep, value = item.partition("=")
        params[key.upper()] = value
    return address, params


def _remove_header(message, name):
    """Drop every ``name:`` header line (and its continuations) from the header section."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = message.partition(b"\n\n")
    out, skipping = [], False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(name + b":")
        if not skipping:
            out.append(line)
    return b"".join(out).rstrip(b"\r\n") + sep + body
