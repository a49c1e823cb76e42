# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the DSNs PowerMTA writes itself for failures it decides (``b`` records).

PowerMTA sends a (non-)delivery report "back to the originator" when it bounces a recipient (§3.3.10.11)
unless the message came from a ``<source>`` with ``suppress-local-dsn`` (§3.3.7.27) or its domain has the
deprecated ``deliver-local-dsn no`` (§3.3.10.10); the accounting record is written either way. The report
is an RFC 3464 ``multipart/report`` sent with a null MAIL FROM to the message's MAIL FROM, returning the
headers or the whole message (``RET``, else ``dsn-return-default``, §3.3.7.28; the double's system
default is headers). A message with a null MAIL FROM (itself a report) never gets one (RFC 5321 §4.5.5):
there is no bounce of a bounce. The report is queued like any mail for the originator's domain, so it goes
where that domain is routed (``smtp-hosts`` of its ``<domain>``, else MX).
"""

from __future__ import annotations

import email.utils
import time

from .clock import CLOCK
from .values import boolean


def wanted(message, settings):
    """Whether a failed recipient of ``message`` (queue settings ``settings``) gets a DSN."""
    if not message.orig:
        return False
    if not getattr(message, "local_dsn", True):
        return False
    return boolean(settings.get("deliver-local-dsn"), True)


def _typed_mta(mta):
    """``mx.example.test (192.0.2.1)`` -> ``dns; mx.example.test``."""
    name = mta.split(" ", 1)[0] if mta else ""
    return "dns; %s" % name if name else ""


def _diag(diag):
    """``smtp;550 5.1.1 x`` -> ``smtp; 550 5.1.1 x`` (RFC 3464 §2.3.6 diagnostic-type; text)."""
    kind, sep, text = diag.partition(";")
    return "%s; %s" % (kind.strip(), text.strip()) if sep else "smtp; %s" % diag.strip()


def _original(data, full):
    if full:
        return "message/rfc822", data
    head, _sep, _body = data.replace(b"\r\n", b"\n").partition(b"\n\n")
    return "text/rfc822-headers", head + b"\n"


def build(host_name, message, rcpt, orcpt, status, diag, mta, full=False):
    """The report as bytes (CRLF line ends), one failed recipient."""
    boundary = "pmta-td-%d-%d" % (message.id, int(time.time() * 1000))
    code = status.split(" ", 1)[0]
    now = email.utils.formatdate(CLOCK.now(), usegmt=True)
    per_message = ["Reporting-MTA: dns; %s" % host_name]
    if message.envid:
        per_message.append("Original-Envelope-Id: %s" % message.envid)
    per_message.append("Arrival-Date: %s" % email.utils.formatdate(message.received, usegmt=True))
    per_recipient = []
    if orcpt:
        per_recipient.append("Original-Recipient: %s" % (orcpt if ";" in orcpt else "rfc822; " + orcpt))
    per_recipient += ["Final-Recipient: rfc822; %s" % rcpt, "Action: failed", "Status: %s" % code]
    if mta:
        per_recipient.append("Remote-MTA: %s" % _typed_mta(mta))
    if diag:
        per_recipient.append("Diagnostic-Code: %s" % _diag(diag))
    per_recipient.append("Last-Attempt-Date: %s" % now)
    content_type, original = _original(message.data, full)
    lines = [
        "From: Mail Delivery Subsystem <mailer-daemon@%s>" % host_name,
        "To: <%s>" % message.orig,
        "Subject: Delivery Status Notification (Failure)",
        "Date: %s" % now,
        "Message-ID: %s" % email.utils.make_msgid("dsn", domain=host_name),
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="%s"' % boundary,
        "",
        "--%s" % boundary,
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at %s (PowerMTA TEST DOUBLE, not PowerMTA)." % host_name,
        "Your message could not be delivered to <%s>:" % rcpt,
        "    %s" % diag,
        "",
        "--%s" % boundary,
        "Content-Type: message/delivery-status",
        "",
    ] + per_message + [""] + per_recipient + [
        "",
        "--%s" % boundary,
        "Content-Type: %s" % content_type,
        "",
    ]
    text = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    return text + original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + (
        "\r\n--%s--\r\n" % boundary).encode("ascii")
