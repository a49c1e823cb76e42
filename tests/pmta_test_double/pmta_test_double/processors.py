# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: ``<bounce-processor>`` and ``<feedback-loop-processor>`` (§3.3.3-§3.3.5, §12.7).

Mail for an address matched by a processor's ``<address-list>`` is examined:
an RFC 3464 delivery status notification gives one ``rb`` record per failed
recipient (``rs`` for delayed/delivered/relayed/expanded, §11.2.7); an RFC 5965
ARF report gives one ``f`` record (§11.2.8). A recognised report is "matched"
(delivered only with ``deliver-matched-email``, default no); anything else is
"unmatched" (delivered unless ``deliver-unmatched-email no``).
"""

from __future__ import annotations

import email
import email.policy
import email.utils

from . import acct
from .delivery import category_of


def _field(block, name):
    value = block.get(name, "") or ""
    return " ".join(str(value).split())


def _typed(value):
    """``rfc822; user@example.com`` -> ``user@example.com``; ``dns; mx.example.com`` -> ``mx.example.com``."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def _report_parts(message, report_type):
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != report_type:
        return None
    return message.get_payload()


def parse_dsn(message, orig):
    """RFC 3464: rows for the ``rb``/``rs`` records, or None when ``message`` is no DSN."""
    parts = _report_parts(message, "delivery-status")
    if not parts:
        return None
    status_part = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or not blocks:
        return None
    per_message, recipients = blocks[0], blocks[1:]
    reporting = _typed(_field(per_message, "Reporting-MTA"))
    envid = _field(per_message, "Original-Envelope-Id")
    rows = []
    for block in recipients:
        action = _field(block, "Action").lower()
        status = _field(block, "Status")
        diag = _field(block, "Diagnostic-Code")
        rows.append(("rb" if action == "failed" else "rs", {
            "timeLogged": acct.iso_time(), "orig": orig,
            "rcpt": _typed(_field(block, "Final-Recipient") or _field(block, "Original-Recipient")),
            "orcpt": _field(block, "Original-Recipient"), "dsnAction": action, "dsnStatus": status,
            "dsnDiag": diag.replace("; ", ";", 1), "dsnMta": _typed(_field(block, "Remote-MTA")),
            "dsnReportingMta": reporting, "bounceCat": category_of("%s %s" % (status, diag)) if action == "failed"
            else "", "srcType": "smtp", "envId": envid, "format": "dsn",
        }))
    return rows


def parse_arf(message, receiving_ip):
    """RFC 5965: the ``f`` record row, or None when ``message`` is no ARF report."""
    parts = _report_parts(message, "feedback-report")
    if not parts:
        return None
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
    original = next((p for p in parts if p.get_content_type() in ("message/rfc822", "text/rfc822-headers")), None)
    headers = None
    if original is not None:
        payload = original.get_payload()
        headers = payload[0] if isinstance(payload, list) and payload else (
            email.message_from_string(payload) if isinstance(payload, str) else None)
    orig = _typed(_field(fields, "Original-Mail-From"))
    rcpt = _typed(_field(fields, "Original-Rcpt-To"))
    if headers is not None:
        orig = orig or email.utils.parseaddr(_field(headers, "Return-Path") or _field(headers, "From"))[1]
        rcpt = rcpt or email.utils.parseaddr(_field(headers, "To"))[1]
    return {
        "timeLogged": acct.iso_time(), "repSourceIp": receiving_ip,
        "feedbackType": _field(fields, "Feedback-Type"), "format": "arf",
        "userAgent": _field(fields, "User-Agent"),
        "envid": _field(headers, "X-Envelope-Id") if headers is not None else "",
        "orig": orig.strip("<>"), "rcpt": rcpt.strip("<>"),
        "reportingMTA": _typed(_field(fields, "Reporting-MTA")),
        "dlvSourceIp": _field(fields, "Source-IP"), "reportedDomain": _field(fields, "Reported-Domain"),
    }


def process(config, data, recipients, receiving_ip, src_mta):
    """Run the processors on one received message.

    Returns the recipients still to be delivered (matched ones only with
    deliver-matched-email, unmatched ones unless deliver-unmatched-email no).
    """
    processors = config.processors
    if not any(p.matches(rcpt) for p in processors.values() for rcpt, _orcpt in recipients):
        return list(recipients)
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    deliver = []
    for rcpt, orcpt in recipients:
        processor = next((p for p in processors.values() if p.matches(rcpt)), None)
        if processor is None:
            deliver.append((rcpt, orcpt))
            continue
        matched = False
        if processor.kind == "bounce":
            rows = parse_dsn(message, rcpt)
            if rows:
                matched = True
                for record, row in rows:
                    row["srcMta"] = src_mta
                    acct.write(config.acct_files, record, [row])
        else:
            row = parse_arf(message, receiving_ip)
            if row:
                matched = True
                acct.write(config.acct_files, "f", [row])
        if (matched and processor.deliver_matched) or (not matched and processor.deliver_unmatched):
            deliver.append((rcpt, orcpt))
    return deliver
