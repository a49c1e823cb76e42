# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Inject mail the way Mumara does: SMTP to port 587, STARTTLS, AUTH, ``X-Virtual-MTA: <pool>``.

Python's smtplib only; the same client probes relaying without AUTH (``--no-auth``), e.g. from an
ISP sink's namespace: ``ip netns exec isp-mf-gmail python injector.py --no-auth ...``.

    injector.py --host 198.18.0.2 --user mumara --password-file F --pool transactional \
        --from news@example.com --to a@gmail.test --to b@yahoo.test [--count 3] [--json]

Prints one JSON line per message: ``{"message_id", "rcpt", "refused": {rcpt: [code, text]}, "error"}``.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import smtplib
import ssl
import sys
import uuid
from email.message import EmailMessage


def build_message(mail_from: str, rcpt: str, pool: str | None, subject: str, campaign: str = "") -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = rcpt
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = "<%s@%s>" % (uuid.uuid4().hex, mail_from.rpartition("@")[2] or "example.com")
    if pool:
        message["X-Virtual-MTA"] = pool
    if campaign:
        message["X-Job"] = campaign
    message.set_content("Hello from the mailops.powermta lab.\n")
    return message


def inject(host: str, recipients: list[str], *, port: int = 587, user: str = "", password: str = "",
           pool: str | None = None, mail_from: str = "news@example.com", return_path: str = "",
           subject: str = "lab campaign", campaign: str = "", starttls: bool = True,
           source_address: str | None = None, timeout: float = 30) -> list[dict]:
    """One message per recipient over one session; returns what the server said for each."""
    results = []
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the fleet's listener certificate is self-signed in the lab
    with smtplib.SMTP(host, port, timeout=timeout,
                      source_address=(source_address, 0) if source_address else None) as client:
        client.ehlo("injector.example.com")
        if starttls:
            client.starttls(context=context)
            client.ehlo("injector.example.com")
        if user:
            client.login(user, password)
        for rcpt in recipients:
            message = build_message(mail_from, rcpt, pool, subject, campaign)
            item = {"message_id": message["Message-ID"], "rcpt": rcpt, "pool": pool, "refused": {}, "error": ""}
            try:
                refused = client.sendmail(return_path or mail_from, [rcpt], message.as_bytes())
                item["refused"] = {k: [v[0], v[1].decode(errors="replace")] for k, v in refused.items()}
            except smtplib.SMTPRecipientsRefused as exc:
                item["refused"] = {k: [v[0], v[1].decode(errors="replace")] for k, v in exc.recipients.items()}
                client.rset()
            except smtplib.SMTPResponseException as exc:
                item["error"] = "%d %s" % (exc.smtp_code, exc.smtp_error.decode(errors="replace"))
                client.rset()
            results.append(item)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Inject mail like Mumara (STARTTLS, AUTH, X-Virtual-MTA).")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=587)
    parser.add_argument("--user", default="")
    parser.add_argument("--password-file", default="")
    parser.add_argument("--no-auth", action="store_true", help="no AUTH (probe relaying)")
    parser.add_argument("--no-starttls", action="store_true")
    parser.add_argument("--pool", default=None, help="X-Virtual-MTA header value")
    parser.add_argument("--from", dest="mail_from", default="news@example.com")
    parser.add_argument("--return-path", default="", help="MAIL FROM (default: --from)")
    parser.add_argument("--to", action="append", required=True)
    parser.add_argument("--count", type=int, default=1, help="messages per recipient")
    parser.add_argument("--campaign", default="")
    parser.add_argument("--source-address", default=None)
    args = parser.parse_args(argv)
    password = ""
    if args.password_file:
        with open(args.password_file) as fh:
            password = fh.read().strip()
    try:
        results = inject(args.host, args.to * args.count, port=args.port,
                         user="" if args.no_auth else args.user, password=password, pool=args.pool,
                         mail_from=args.mail_from, return_path=args.return_path, campaign=args.campaign,
                         starttls=not args.no_starttls, source_address=args.source_address)
    except (OSError, smtplib.SMTPException) as exc:
        print(json.dumps({"error": "%s: %s" % (type(exc).__name__, exc)}))
        return 1
    for item in results:
        print(json.dumps(item))
    return 0


if __name__ == "__main__":
    sys.exit(main())
