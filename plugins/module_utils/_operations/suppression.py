# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide suppression list from PowerMTA's ``b``, ``rb`` and ``f`` accounting records.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only: :func:`read_host` runs on each PowerMTA
host, :func:`merge_export` once on the controller.

Data flow (docs/suppression.md):

1. each host reads only what its accounting files gained since its cursor
   (``_acct_tail``), classifies each record and returns a per-address summary
   of the new suppressing events plus its soft-bounce window, and the new
   cursor state (saved on the host only after the export was written);
2. the controller merges every host's summary into the existing CSV (one row
   per address) and replaces the file atomically when it changed.

Classification, with PowerMTA's bounce categories (§11.6, ``bounceCat`` of
``b`` §11.2.3 and ``rb`` §11.2.7 records; customisable with
``<bounce-category-patterns>``, §12.x):

- ``f`` (feedback loop, §11.2.8): always suppressed, reason ``complaint``,
  category the report's ``feedbackType`` (``abuse`` ...);
- hard categories (default bad-mailbox, inactive-mailbox, bad-domain): reason
  ``hard-bounce`` on the first record;
- soft categories (default quota-issues, message-expired, no-answer-from-host,
  bad-connection, routing-errors): reason ``soft-bounce`` once an address has
  ``soft_threshold`` of them within ``soft_window_days`` over the whole fleet;
- any other category (policy-related, spam-related, content-related, ...) says
  something about the sender, not the address: not suppressed.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import io
import json
import os
import time

try:
    from ansible_collections.mailops.powermta.plugins.module_utils._common.atomic import write_atomic
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct as _acct
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct_tail as _acct_tail
except ImportError:  # loaded by path
    from _common.atomic import write_atomic  # type: ignore[no-redef]
    from _warmup import acct as _acct  # type: ignore[no-redef]
    from _warmup import acct_tail as _acct_tail  # type: ignore[no-redef]

STATE_VERSION = 1
CSV_COLUMNS = ("email", "reason", "category", "first_seen", "last_seen", "count")
HARD_CATEGORIES = ("bad-mailbox", "inactive-mailbox", "bad-domain")
SOFT_CATEGORIES = ("quota-issues", "message-expired", "no-answer-from-host", "bad-connection", "routing-errors")
SUPPRESSING_RECORDS = ("b", "rb", "f")
# The stronger reason names the row when an address has several.
REASON_RANK = {"complaint": 3, "hard-bounce": 2, "soft-bounce": 1}
SOFT_TIMES_KEPT = 100
_FIELDS = ("timeLogged", "rcpt", "bounceCat", "feedbackType")


class SuppressionError(ValueError):
    """Bad arguments or an export file that is not ours; the message names the fix."""


# ------------------------------------------------------------------ host side
def acct_patterns(acct_files):
    """Globs of the files holding b/rb/f records, from the fleet model's ``acct_files``.

    ``/var/log/pmta/acct.csv`` is written as ``acct-2026-05-01-0000.csv`` (§11.3.1), a new file per
    ``max-size`` (§3.3.11.4), moved by ``move-to`` (§3.3.11.2): both directories are read.
    """
    patterns = []
    for item in acct_files or []:
        name = str(item.get("name", ""))
        if not name or name.startswith("|") or not item.get("enabled", True):
            continue
        if not set(item.get("records") or ("d", "b")) & set(SUPPRESSING_RECORDS):
            continue  # by default a file holds d and b records (§11.2.1)
        directory, base = os.path.split(name)
        stem = os.path.splitext(base)[0]
        directories = [directory]
        move_to = (item.get("directives") or {}).get("move-to")
        if move_to:
            directories.append(str(move_to))
        for folder in directories:
            pattern = os.path.join(folder, stem + "*.csv")
            if pattern not in patterns:
                patterns.append(pattern)
    return patterns


def normalize_email(raw):
    """``<User@Example.COM>`` -> ``user@example.com``; None when it is not an address."""
    text = raw.strip().strip("<>").strip().lower()
    at = text.rfind("@")
    if at <= 0 or at == len(text) - 1 or " " in text or "," in text:
        return None
    return text


def utc_text(time_text):
    """``timeLogged`` in any of PowerMTA's forms (ISO, RFC 822, time_t, §11.2.9) -> ``YYYY-MM-DDTHH:MM:SSZ``."""
    text = time_text.strip()
    if text.isdigit():
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(text)))
    parsed = _acct.parse_time_logged(text)
    if parsed is None:
        return None
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def _epoch(utc):
    return calendar.timegm(time.strptime(utc, "%Y-%m-%dT%H:%M:%SZ"))


def _add_event(events, email, reason, category, when):
    row = events.get(email)
    if row is None:
        events[email] = [reason, category, when, when, 1]
        return
    if REASON_RANK[reason] >= REASON_RANK[row[0]]:
        row[0], row[1] = reason, category
    if when < row[2]:
        row[2] = when
    if when > row[3]:
        row[3] = when
    row[4] += 1


def load_state(text):
    """The host's saved cursor state (JSON text, '' when none) -> (state, note)."""
    fresh = {"version": STATE_VERSION, "files": {}, "soft": {}}
    if not text:
        return fresh, None
    try:
        state = json.loads(text)
    except ValueError as exc:
        return fresh, "cursor state unreadable, every file is read again: %s" % exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return fresh, "cursor state has another version, every file is read again"
    state.setdefault("files", {})
    state.setdefault("soft", {})
    return state, None


def read_host(state, patterns, hard_categories=HARD_CATEGORIES, soft_categories=SOFT_CATEGORIES,
              soft_window_days=7, now=None):
    """Read the new records since ``state``; returns a dict with ``events``, ``soft``, ``state`` and counts.

    ``events``: ``{email: [reason, category, first_seen, last_seen, count]}`` of complaints and hard bounces
    read now; ``soft``: ``{email: [category, first_seen, last_seen, count]}`` over the soft-bounce window,
    old and new (the controller sums it over the fleet); ``state``: the new state to save.
    """
    hard = frozenset(hard_categories)
    soft = frozenset(soft_categories)
    events = {}
    soft_times = {email: list(times) for email, times in state.get("soft", {}).items()}
    counts = {"rows": 0, "corrupt": 0, "used": 0, "header": None}
    time_cache = {}

    def consume(_path, lines, header):
        counts["header"] = header
        for kind, (time_text, rcpt, category, feedback) in _acct.iter_records(
                lines, SUPPRESSING_RECORDS, _FIELDS, counts, header):
            if kind == "f":
                reason, category = "complaint", feedback or "abuse"
            elif category in hard:
                reason = "hard-bounce"
            elif category in soft:
                reason = "soft-bounce"
            else:
                continue
            when = time_cache.get(time_text)
            if when is None:
                when = utc_text(time_text)
                if when is None:
                    counts["corrupt"] += 1
                    continue
                if len(time_cache) > 10000:
                    time_cache.clear()
                time_cache[time_text] = when
            email = normalize_email(rcpt)
            if email is None:
                counts["corrupt"] += 1
                continue
            counts["used"] += 1
            if reason == "soft-bounce":
                times = soft_times.get(email)
                if times is None:
                    soft_times[email] = [category, when]
                else:
                    times[0] = category
                    times.append(when)
            else:
                _add_event(events, email, reason, category, when)
        return counts["header"]

    files, summary = _acct_tail.tail(state.get("files", {}), patterns, consume)
    horizon = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                            time.gmtime((time.time() if now is None else now) - soft_window_days * 86400))
    kept_soft = {}
    window = {}
    for email, entry in soft_times.items():
        times = sorted(t for t in entry[1:] if t >= horizon)[-SOFT_TIMES_KEPT:]
        if times:
            kept_soft[email] = [entry[0]] + times
            window[email] = [entry[0], times[0], times[-1], len(times)]
    new_state = {"version": STATE_VERSION, "files": files, "soft": dict(sorted(kept_soft.items()))}
    return {
        "events": events,
        "soft": window,
        "state": new_state,
        "state_text": json.dumps(new_state, sort_keys=True, separators=(",", ":")) + "\n",
        "files": summary["files"],
        "bytes": summary["bytes"],
        "rows": counts["rows"],
        "used": counts["used"],
        "corrupt": counts["corrupt"],
    }


# ------------------------------------------------------------ controller side
def read_export(path):
    """Rows of an existing export ``{email: [reason, category, first, last, count]}`` and its text."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise SuppressionError("suppression export %s cannot be read: %s" % (path, exc)) from exc
    rows = {}
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return rows, text
    if tuple(header) != CSV_COLUMNS:
        raise SuppressionError("suppression export %s does not start with the header %s: not an export of "
                               "this collection; choose another suppression_export_file"
                               % (path, ",".join(CSV_COLUMNS)))
    for number, row in enumerate(reader, start=2):
        if len(row) != len(CSV_COLUMNS) or row[1] not in REASON_RANK or not row[5].isdigit():
            raise SuppressionError("suppression export %s line %d is not a row of this collection's export: "
                                   "fix or move the file" % (path, number))
        rows[row[0]] = [row[1], row[2], row[3], row[4], int(row[5])]
    return rows, text


def merge(rows, host_results, soft_threshold):
    """Merge the hosts' results into ``rows`` (modified); returns ``(added, updated)`` address counts."""
    added = updated = 0
    soft_sum = {}
    for result in host_results:
        for email, (reason, category, first, last, count) in (result.get("events") or {}).items():
            row = rows.get(email)
            if row is None:
                rows[email] = [reason, category, first, last, count]
                added += 1
                continue
            before = list(row)
            if REASON_RANK[reason] >= REASON_RANK[row[0]]:
                row[0], row[1] = reason, category
            row[2], row[3], row[4] = min(row[2], first), max(row[3], last), row[4] + count
            updated += row != before
        for email, (category, first, last, count) in (result.get("soft") or {}).items():
            total = soft_sum.get(email)
            if total is None:
                soft_sum[email] = [category, first, last, count]
            else:
                total[0] = category if last >= total[2] else total[0]
                total[1], total[2], total[3] = min(total[1], first), max(total[2], last), total[3] + count
    for email, (category, first, last, count) in soft_sum.items():
        if count < soft_threshold:
            continue
        row = rows.get(email)
        if row is None:
            rows[email] = ["soft-bounce", category, first, last, count]
            added += 1
        elif row[0] == "soft-bounce":
            before = list(row)
            # the window is summed again each run: the same window gives the same row (idempotent)
            row[1], row[2], row[3], row[4] = category, min(row[2], first), max(row[3], last), max(row[4], count)
            updated += row != before
    return added, updated


def render(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for email in sorted(rows):
        writer.writerow([email] + rows[email])
    return buffer.getvalue()


def _diff_lines(before_rows, after_rows, limit):
    """Only the rows that changed, for --diff (the whole file can hold millions)."""
    before, after = [], []
    for email in sorted(set(before_rows) | set(after_rows)):
        old, new = before_rows.get(email), after_rows.get(email)
        if old != new:
            if old is not None:
                before.append(",".join([email] + [str(v) for v in old]))
            if new is not None:
                after.append(",".join([email] + [str(v) for v in new]))
            if len(after) >= limit:
                after.append("... (more rows changed)")
                break
    return "\n".join(before) + ("\n" if before else ""), "\n".join(after) + ("\n" if after else "")


def export(path, host_results, soft_threshold=3, check_mode=False, mode=0o640, diff_limit=200):
    """Merge ``host_results`` into the CSV at ``path``; returns the module result."""
    if not isinstance(soft_threshold, int) or soft_threshold < 1:
        raise SuppressionError("soft_threshold must be a whole number >= 1, got %r" % (soft_threshold,))
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise SuppressionError("suppression export %s: directory %s does not exist; create it or choose another "
                               "suppression_export_file" % (path, os.path.dirname(os.path.abspath(path))))
    rows, old_text = read_export(path)
    before_rows = {email: list(row) for email, row in rows.items()} if old_text is not None else {}
    added, updated = merge(rows, host_results, soft_threshold)
    new_text = render(rows)
    changed = new_text != old_text
    if changed and not check_mode:
        write_atomic(path, new_text, mode)
    before, after = _diff_lines(before_rows, rows, diff_limit)
    reasons = {}
    for row in rows.values():
        reasons[row[0]] = reasons.get(row[0], 0) + 1
    return {
        "changed": changed,
        "path": path,
        "rows": len(rows),
        "added": added,
        "updated": updated,
        "by_reason": dict(sorted(reasons.items())),
        "diff": {"before": before, "after": after, "before_header": path, "after_header": path},
    }
