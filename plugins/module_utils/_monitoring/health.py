# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PowerMTA health checks: pure evaluation plus thin probes.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python (standard library only, no Ansible imports): the module
``mailops.powermta.pmta_health`` and the Nagios-compatible command
``check_pmta`` installed on hosts by the ``monitoring`` role both use it.

Layout: ``parse_*`` read PowerMTA output, ``evaluate_*`` turn numbers into
``CheckResult`` items, ``probe_*`` touch the system (HTTP, systemctl,
statvfs, file age, the ``pmta`` CLI) and ``run_checks`` ties them together.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# Worst first: a real problem outranks "could not tell" (monitoring-plugins' max_state_alt).
_SEVERITY = {OK: 0, UNKNOWN: 1, WARNING: 2, CRITICAL: 3}

DEFAULT_THRESHOLDS = {
    "queued_recipients_warning": 50000,
    "queued_recipients_critical": 200000,
    "queued_domains_warning": 5000,
    "queued_domains_critical": 20000,
    "backoff_queues_warning": 1,
    "backoff_queues_critical": 20,
    "spool_free_percent_warning": 20.0,
    "spool_free_percent_critical": 10.0,
    # PowerMTA's min-free-space of the spools (§3.3.2.4, bytes; 0 = PowerMTA's default, no threshold): below it
    # PowerMTA stops accepting mail into the spool, so the check is CRITICAL whatever the percentage says.
    "spool_min_free_bytes": 0,
    "license_days_warning": 30,
    "license_days_critical": 7,
    "acct_age_seconds_warning": 900,
    "acct_age_seconds_critical": 3600,
}


class HealthError(ValueError):
    """Bad input to the health check; the message names the option and the fix."""


class CheckResult:
    """One check: a state, a human message and optional perfdata."""

    __slots__ = ("name", "state", "message", "value", "warning", "critical", "minimum", "maximum", "unit", "subject",
                 "details")

    def __init__(self, name, state, message, value=None, warning=None, critical=None,
                 minimum=None, maximum=None, unit="", subject=None, details=None):
        self.name = name
        self.state = state
        self.message = message
        self.value = value
        self.warning = warning
        self.critical = critical
        self.minimum = minimum
        self.maximum = maximum
        self.unit = unit
        self.subject = subject  # what was checked (a path, a unit), for metrics labels
        self.details = details or {}  # further measured numbers, for metrics (spool: free_bytes, accepting)

    def as_dict(self):
        return {
            "name": self.name,
            "state": STATE_NAMES[self.state],
            "message": self.message,
            "value": self.value,
            "warning": self.warning,
            "critical": self.critical,
            "unit": self.unit,
        }

    def perfdata(self):
        """``'label'=value[UOM];warn;crit;min;max`` or '' when there is no value."""
        if self.value is None:
            return ""
        fields = [_perf_number(self.value) + self.unit]
        for extra in (self.warning, self.critical, self.minimum, self.maximum):
            fields.append("" if extra is None else _perf_number(extra))
        while fields and fields[-1] == "":
            fields.pop()
        return "%s=%s" % (_perf_label(self.name), ";".join(fields))


def _perf_number(value):
    if isinstance(value, float) and not value.is_integer():
        return ("%.2f" % value).rstrip("0").rstrip(".")
    return str(int(value))


def _perf_label(name):
    # Labels with spaces, '=' or quotes must be single-quoted; quotes doubled.
    if re.fullmatch(r"[A-Za-z0-9_./:-]+", name):
        return name
    return "'%s'" % name.replace("'", "''")


def worst_state(states):
    states = list(states)
    if not states:
        return UNKNOWN
    return max(states, key=lambda state: _SEVERITY[state])


# ----------------------------------------------------------------- parsers
def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return None
    return None


def _dig(data, *path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def parse_status(document):
    """Numbers from ``/status?format=json`` or ``pmta --json show status``.

    The JSON shape is ``{"data": {"mta": ..., "status": {...}}}`` (User's
    Guide §6.2.1). Missing fields come back as None rather than raising, so
    an older or newer PowerMTA never crashes the check.
    """
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise HealthError("status is not JSON: %s" % exc) from exc
    status = _dig(document, "data", "status")
    if not isinstance(status, dict):
        raise HealthError("status JSON has no data.status object (is this PowerMTA's /status?format=json?)")
    queues = status.get("queue") if isinstance(status.get("queue"), dict) else {}
    queued_recipients = 0
    seen_any_queue = False
    for queue in queues.values():
        rcp = _number(_dig(queue, "rcp"))
        if rcp is not None:
            queued_recipients += rcp
            seen_any_queue = True
    return {
        "state": status.get("status") if isinstance(status.get("status"), str) else None,
        "shutting_down": status.get("shuttingDown") is True,
        "version": _dig(document, "data", "mta", "product", "version"),
        "queued_recipients": queued_recipients if seen_any_queue else None,
        "queued_recipients_smtp": _number(_dig(queues, "smtp", "rcp")),
        "queued_domains": _number(_dig(queues, "smtp", "dom")),
        "queued_kilobytes": _number(_dig(queues, "smtp", "kb")),
        "connections_in": _number(_dig(status, "conn", "smtpIn", "cur")),
        "connections_in_max": _number(_dig(status, "conn", "smtpIn", "max")),
        "connections_out": _number(_dig(status, "conn", "smtpOut", "cur")),
        "connections_out_max": _number(_dig(status, "conn", "smtpOut", "max")),
        "traffic_last_hour_out": _number(_dig(status, "traffic", "lastHr", "out", "rcp")),
        "traffic_last_hour_in": _number(_dig(status, "traffic", "lastHr", "in", "rcp")),
        "traffic_last_minute_out": _number(_dig(status, "traffic", "lastMin", "out", "rcp")),
        "traffic_last_minute_in": _number(_dig(status, "traffic", "lastMin", "in", "rcp")),
        "traffic_total_out": _number(_dig(status, "traffic", "total", "out", "rcp")),
        "traffic_total_in": _number(_dig(status, "traffic", "total", "in", "rcp")),
        "spool_files": _number(_dig(status, "spool", "files", "inUse")),
        "spool_recipients": _number(_dig(status, "spool", "totalRcp")),
        "spool_recipients_max": _number(_dig(status, "spool", "maxRcp")),
    }


def _queue_entries(document):
    """The list of queue objects in a ``show queues`` / ``/queues`` JSON answer."""
    data = document.get("data", document) if isinstance(document, dict) else document
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("queues", "queue", "topQueues", "items"):
            value = data.get(key)
            if isinstance(value, list):
                return value
            if isinstance(value, dict):
                for inner in value.values():
                    if isinstance(inner, list):
                        return inner
    return None


def parse_backoff_queues(document):
    """Names of the queues in backoff mode, from ``pmta --json show queues --mode=backoff``.

    The guide documents the command but not its JSON layout, so this accepts
    a list of queue objects under ``data`` (or ``data.queues``); an entry that
    carries a ``mode`` counts only when that mode is ``backoff`` (the command
    was already filtered, but an unfiltered answer must not count as backoff).
    Returns None when no queue list can be found.
    """
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise HealthError("queue list is not JSON: %s" % exc) from exc
    entries = _queue_entries(document)
    if entries is None:
        return None
    names = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        mode = entry.get("mode")
        if mode is not None and str(mode).lower() != "backoff":
            continue
        name = entry.get("name") or entry.get("queue")
        if not name and entry.get("domain"):
            name = "%s/%s" % (entry.get("domain"), entry.get("vmta") or "*")
        names.append(str(name or "?"))
    return sorted(names)


_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_license(text):
    """Fields of a PowerMTA licence (the file or ``pmta show license``).

    Both are ``key: value`` lines (``expires: 2100-03-20``). Returns a dict
    with lower-cased keys and ``expires`` as a ``datetime.date`` or None
    (missing, ``never``/``unlimited``, or unreadable). Signature blocks and
    anything else that is not ``key: value`` are ignored.
    """
    fields = {}
    for line in text.splitlines():
        if ":" not in line or line.lstrip().startswith("#"):
            continue
        key, _sep, value = line.partition(":")
        key = key.strip().lower()
        if not key or " " in key:
            continue
        fields.setdefault(key, value.strip())
    raw = fields.get("expires")
    expires = None
    if raw:
        match = _DATE_RE.search(raw)
        if match:
            try:
                expires = datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            except ValueError:
                expires = None
    return {
        "expires": expires,
        "expires_raw": raw,
        "serial": fields.get("serial"),
        "version": fields.get("version"),
        "licensee": fields.get("licensee"),
    }


# --------------------------------------------------------------- evaluation
def _threshold_state(value, warning, critical, higher_is_worse=True):
    if value is None:
        return UNKNOWN
    if higher_is_worse:
        if critical is not None and value >= critical:
            return CRITICAL
        if warning is not None and value >= warning:
            return WARNING
    else:
        if critical is not None and value <= critical:
            return CRITICAL
        if warning is not None and value <= warning:
            return WARNING
    return OK


def evaluate_service(name, active_state):
    """``active_state`` is systemctl's answer (active, inactive, failed...) or None when unknown."""
    label = "service_" + name
    if active_state is None:
        return CheckResult(label, UNKNOWN, "service %s: state unknown (no systemctl)" % name)
    if active_state == "active":
        return CheckResult(label, OK, "service %s active" % name)
    return CheckResult(label, CRITICAL, "service %s is %s" % (name, active_state))


def evaluate_status(status, error, thresholds):
    """Results from the parsed status (or the error that kept us from reading it)."""
    if status is None:
        return [CheckResult("http_status", UNKNOWN, "status endpoint unreachable: %s" % error)]
    results = []
    if status["shutting_down"]:
        results.append(CheckResult("http_status", WARNING, "PowerMTA is shutting down"))
    elif status["state"] not in (None, "running"):
        results.append(CheckResult("http_status", CRITICAL, "PowerMTA status is %s" % status["state"]))
    else:
        results.append(CheckResult("http_status", OK, "status endpoint answers (%s)" % (status["state"] or "?")))

    for key, label, noun in (
        ("queued_recipients", "queued_recipients", "recipients queued"),
        ("queued_domains", "queued_domains", "domains queued"),
    ):
        value = status[key]
        warning = thresholds[key + "_warning"]
        critical = thresholds[key + "_critical"]
        state = _threshold_state(value, warning, critical)
        if value is None:
            message = "%s: not in status" % noun
        elif state == OK:
            message = "%d %s" % (value, noun)
        else:
            message = "%d %s (%s at %d)" % (
                value, noun, "critical" if state == CRITICAL else "warning",
                critical if state == CRITICAL else warning,
            )
        results.append(CheckResult(label, state, message, value, warning, critical, minimum=0))

    for key, label, limit in (
        ("connections_in", "connections_in", "connections_in_max"),
        ("connections_out", "connections_out", "connections_out_max"),
    ):
        if status[key] is not None:
            results.append(CheckResult(label, OK, "%d %s" % (status[key], label.replace("_", " ")),
                                       status[key], minimum=0, maximum=status[limit]))
    return results


def evaluate_backoff(names, error, thresholds):
    warning = thresholds["backoff_queues_warning"]
    critical = thresholds["backoff_queues_critical"]
    if names is None:
        return CheckResult("backoff_queues", UNKNOWN, "queues in backoff unknown: %s" % error)
    count = len(names)
    state = _threshold_state(count, warning, critical)
    if count == 0:
        message = "no queue in backoff"
    else:
        shown = ", ".join(names[:5]) + (", ..." if count > 5 else "")
        message = "%d queue%s in backoff (%s)" % (count, "" if count == 1 else "s", shown)
    return CheckResult("backoff_queues", state, message, count, warning, critical, minimum=0)


def evaluate_spool(path, total_bytes, free_bytes, thresholds):
    """Free space of one spool directory's file system."""
    suffix = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    label = "spool_free_pct" if path == "/var/spool/pmta" else "spool_free_pct_" + suffix
    warning = thresholds["spool_free_percent_warning"]
    critical = thresholds["spool_free_percent_critical"]
    if total_bytes is None:
        return CheckResult(label, UNKNOWN, "spool %s: %s" % (path, free_bytes), subject=path)
    percent = 100.0 * free_bytes / total_bytes if total_bytes else 0.0
    percent = round(percent, 2)
    state = _threshold_state(percent, warning, critical, higher_is_worse=False)
    message = "spool %s %.1f%% free (%s)" % (path, percent, _human_bytes(free_bytes))
    min_free = thresholds.get("spool_min_free_bytes") or 0
    # §3.3.2.4: below min-free-space PowerMTA "stops accepting email into the spool"; with no space at all it
    # cannot write a spool file whatever the threshold.
    accepting = free_bytes > 0 and free_bytes >= min_free
    if not accepting:
        state = CRITICAL
        message = "spool %s full: %s free, %s (PowerMTA refuses new mail)" % (
            path, _human_bytes(free_bytes),
            "below min-free-space %s" % _human_bytes(min_free) if min_free else "no space left")
    elif state == CRITICAL:
        message += ", nearly full"
    return CheckResult(label, state, message, percent, warning, critical, 0, 100, unit="%", subject=path,
                       details={"free_bytes": free_bytes, "accepting": accepting})


def _human_bytes(count):
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return "%.1f %s" % (value, unit)
        value /= 1024
    return "%d B" % count  # pragma: no cover


def evaluate_license(license_fields, error, today, thresholds):
    warning = thresholds["license_days_warning"]
    critical = thresholds["license_days_critical"]
    if license_fields is None:
        return CheckResult("license_days", UNKNOWN, "license unreadable: %s" % error)
    expires = license_fields["expires"]
    if expires is None:
        raw = license_fields["expires_raw"]
        if raw and raw.strip().lower() in ("never", "unlimited", "none", "0"):
            return CheckResult("license_days", OK, "license does not expire")
        if raw:
            return CheckResult("license_days", UNKNOWN, "license expiry %r not understood" % raw)
        return CheckResult("license_days", OK, "license has no expiry date")
    days = (expires - today).days
    state = _threshold_state(days, warning, critical, higher_is_worse=False)
    if days < 0:
        state = CRITICAL
        message = "license expired on %s" % expires.isoformat()
    else:
        message = "license expires %s (%d days)" % (expires.isoformat(), days)
    return CheckResult("license_days", state, message, days, warning, critical, unit="")


def evaluate_acct_age(path, age_seconds, error, traffic_last_hour_out, thresholds):
    """Age of the accounting file's last write.

    A quiet PowerMTA writes nothing, so the thresholds apply only while the
    status shows outbound traffic in the last hour (or when it is unknown).
    """
    warning = thresholds["acct_age_seconds_warning"]
    critical = thresholds["acct_age_seconds_critical"]
    if age_seconds is None:
        if traffic_last_hour_out == 0:
            return CheckResult("acct_age", OK, "accounting %s absent, no outbound traffic in the last hour" % path)
        if traffic_last_hour_out is None:
            return CheckResult("acct_age", UNKNOWN, "accounting %s: %s (traffic unknown)" % (path, error))
        return CheckResult("acct_age", WARNING, "accounting %s: %s" % (path, error))
    age = max(0, int(age_seconds))
    if traffic_last_hour_out == 0:
        return CheckResult("acct_age", OK, "accounting last written %ds ago (no outbound traffic in the last hour)"
                           % age, age, warning, critical, minimum=0, unit="s")
    state = _threshold_state(age, warning, critical)
    if traffic_last_hour_out is None and state != OK:
        # without the status we cannot tell a quiet PowerMTA from broken accounting
        return CheckResult("acct_age", UNKNOWN, "accounting last written %ds ago (traffic unknown)" % age,
                           age, warning, critical, minimum=0, unit="s")
    message = "accounting last written %ds ago" % age
    if state != OK:
        message += " while PowerMTA delivered mail in the last hour"
    return CheckResult("acct_age", state, message, age, warning, critical, minimum=0, unit="s")


def summarize(results, prefix="PMTA"):
    """``(exit_code, one status line with perfdata)``.

    The line lists the problems worst first (or every message when all is
    OK), as Nagios shows only the first line.
    """
    state = worst_state(result.state for result in results)
    problems = sorted((r for r in results if r.state != OK), key=lambda r: -_SEVERITY[r.state])
    shown = problems if problems else [r for r in results if r.value is not None or r.name.startswith("service_")]
    text = "; ".join(r.message for r in shown) or "no checks ran"
    perf = " ".join(p for p in (r.perfdata() for r in results) if p)
    line = "%s %s - %s" % (prefix, STATE_NAMES[state], text.replace("|", "/"))
    if perf:
        line += " | " + perf
    return state, line


def validate_thresholds(overrides):
    """Defaults merged with ``overrides``; unknown names or wrong order fail clearly."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise HealthError("unknown threshold %r; known: %s" % (key, ", ".join(sorted(DEFAULT_THRESHOLDS))))
        number = _number(value)
        if number is None or number < 0:
            raise HealthError("threshold %s must be a number >= 0, got %r" % (key, value))
        merged[key] = number
    for base, higher_is_worse in (
        ("queued_recipients", True), ("queued_domains", True), ("backoff_queues", True),
        ("acct_age_seconds", True), ("spool_free_percent", False), ("license_days", False),
    ):
        warning, critical = merged[base + "_warning"], merged[base + "_critical"]
        if (higher_is_worse and warning > critical) or (not higher_is_worse and warning < critical):
            raise HealthError(
                "threshold %s_warning (%s) must be %s %s_critical (%s)"
                % (base, warning, "<=" if higher_is_worse else ">=", base, critical)
            )
    return merged


# ------------------------------------------------------------------- probes
# Largest status document read; PowerMTA's is a few kB.
MAX_STATUS_BYTES = 8 * 1024 * 1024


def probe_http_json(url, fetch, timeout=5.0, api_key=None, insecure=False):
    """GET ``url`` and decode JSON; returns ``(document, None)`` or ``(None, error text)``.

    ``fetch(url, headers, timeout, validate_certs, max_bytes)`` does the request and returns the
    body; like urllib it raises ``urllib.error.HTTPError``, ``URLError`` or ``OSError``. The module
    passes one over Ansible's ``open_url``, the host commands a standard-library one, so this file
    stays importable without Ansible.
    """
    headers = {"Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    try:
        body = fetch(url, headers=headers, timeout=timeout, validate_certs=not insecure,
                     max_bytes=MAX_STATUS_BYTES)
    except urllib.error.HTTPError as exc:
        return None, "HTTP %s from %s" % (exc.code, url)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, "%s: %s" % (url, reason)
    try:
        return json.loads(body.decode("utf-8", "replace")), None
    except ValueError as exc:
        return None, "%s did not return JSON (%s)" % (url, exc)


def probe_service(name, systemctl=None, timeout=10):
    """systemctl's ActiveState word for ``name``, or None when systemctl is absent."""
    systemctl = systemctl or shutil.which("systemctl")
    if not systemctl:
        return None
    try:
        completed = subprocess.run([systemctl, "is-active", name], capture_output=True, text=True,
                                   timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    word = completed.stdout.strip().splitlines()[0] if completed.stdout.strip() else ""
    return word or "unknown"


def probe_command(argv, timeout=20):
    """``(stdout, None)`` or ``(None, error)``; never raises."""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return None, "%s not found" % argv[0]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "%s: %s" % (" ".join(argv), exc)
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        return None, "%s exited %d%s" % (" ".join(argv), completed.returncode, (": " + detail[0]) if detail else "")
    return completed.stdout, None


def probe_statvfs(path):
    """``(total_bytes, free_bytes)`` for unprivileged users, or ``(None, error)``."""
    try:
        stat = os.statvfs(path)
    except OSError as exc:
        return None, exc.strerror or str(exc)
    return stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize


def probe_file_age(path, now=None):
    """Seconds since ``path`` was last modified, or ``(None, error)``."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        return None, "%s: %s" % (path, exc.strerror or exc)
    return (now if now is not None else time.time()) - mtime, None


def read_license(path, pmta_binary):
    """Licence fields from the file, else from ``pmta show license``: ``(fields, None)`` or ``(None, error)``."""
    errors = []
    if path:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return parse_license(handle.read()), None
        except OSError as exc:
            errors.append("%s: %s" % (path, exc.strerror or exc))
    if pmta_binary:
        output, error = probe_command([pmta_binary, "show", "license"])
        if output is not None:
            return parse_license(output), None
        errors.append(error)
    return None, "; ".join(errors) or "no license source configured"


def run_checks(options, today=None, now=None, fetch=None):
    """Run every configured check; ``options`` as in ``default_options()``.

    ``fetch`` is the HTTP fetcher for ``status_url`` (see ``probe_http_json``).

    Returns ``(results, status)`` where ``status`` is the parsed status dict
    or None.
    """
    thresholds = validate_thresholds(options.get("thresholds"))
    results = []
    for service in options.get("services") or []:
        results.append(evaluate_service(service, probe_service(service, options.get("systemctl"))))

    status = None
    status_error = None
    if options.get("status_url"):
        api_key = options.get("api_key")
        document = None
        if not api_key and options.get("api_key_file"):
            try:
                with open(options["api_key_file"], encoding="utf-8") as handle:
                    api_key = handle.read().strip()
            except OSError as exc:
                status_error = "API key file %s: %s" % (options["api_key_file"], exc.strerror or exc)
        if fetch is None:
            raise HealthError("status_url is set but the caller gave no HTTP fetcher")
        if status_error is None:
            document, status_error = probe_http_json(options["status_url"], fetch, options.get("timeout", 5.0),
                                                     api_key, options.get("insecure", False))
        if document is not None:
            try:
                status = parse_status(document)
            except HealthError as exc:
                status_error = str(exc)
        results.extend(evaluate_status(status, status_error, thresholds))

    pmta = options.get("pmta_binary")
    if options.get("check_backoff", True) and pmta:
        # PowerMTA lists 20 queues unless told otherwise; a CLI that refuses --maxitems gets a second try
        output, error = probe_command([pmta, "--json", "show", "queues", "--mode=backoff", "--maxitems=1000"])
        if output is None:
            output, error = probe_command([pmta, "--json", "show", "queues", "--mode=backoff"])
        names = None
        if output is not None:
            try:
                names = parse_backoff_queues(output)
                if names is None:
                    error = "no queue list in `pmta --json show queues` output"
            except HealthError as exc:
                error = str(exc)
        results.append(evaluate_backoff(names, error, thresholds))

    for spool in options.get("spool_dirs") or []:
        total, free = probe_statvfs(spool)
        results.append(evaluate_spool(spool, total, free, thresholds))

    if options.get("license_file") or (options.get("check_license", True) and pmta):
        fields, error = read_license(options.get("license_file"), pmta if options.get("check_license", True) else None)
        results.append(evaluate_license(fields, error, today or datetime.date.today(), thresholds))

    if options.get("acct_file"):
        age, error = probe_file_age(options["acct_file"], now)
        traffic = status["traffic_last_hour_out"] if status else None
        results.append(evaluate_acct_age(options["acct_file"], age, error, traffic, thresholds))
    return results, status


def default_options():
    return {
        "services": ["pmta"],
        "systemctl": None,
        "status_url": "http://127.0.0.1:8080/status?format=json",
        "timeout": 5.0,
        "api_key": None,
        "api_key_file": None,
        "insecure": False,
        "pmta_binary": "/usr/sbin/pmta",
        "check_backoff": True,
        "check_license": True,
        "license_file": "/etc/pmta/license",
        "spool_dirs": ["/var/spool/pmta"],
        "acct_file": "/var/log/pmta/acct.csv",
        "thresholds": {},
    }


# --------------------------------------------------------------------- CLI
def _build_parser():
    import argparse

    parser = argparse.ArgumentParser(
        prog="check_pmta",
        description="PowerMTA health check (Nagios plugin API: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). "
                    "Precedence: built-in defaults, then --config, then the options given here.",
    )
    defaults = default_options()
    parser.add_argument("--config", help="JSON file with the options below (the monitoring role writes one)")
    parser.add_argument("--url", help="status URL on loopback (default %s)" % defaults["status_url"])
    parser.add_argument("--timeout", type=float, help="seconds (default %s)" % defaults["timeout"])
    parser.add_argument("--api-key-file", help="file holding the X-API-Key value, if the status needs one")
    parser.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate of an https URL")
    parser.add_argument("--service", action="append", dest="services",
                        help="systemd unit that must be active (repeatable; default pmta)")
    parser.add_argument("--pmta", help="pmta command (default %s); '' skips backoff and licence CLI"
                        % defaults["pmta_binary"])
    parser.add_argument("--license-file", help="default %s; '' reads `pmta show license` only"
                        % defaults["license_file"])
    parser.add_argument("--no-license", action="store_true", help="skip the licence expiry check")
    parser.add_argument("--no-backoff", action="store_true", help="skip the queues-in-backoff check")
    parser.add_argument("--spool", action="append", dest="spool_dirs", help="spool directory (repeatable)")
    parser.add_argument("--acct-file", help="accounting file (default %s), '' to skip" % defaults["acct_file"])
    parser.add_argument("--json", action="store_true", help="print the structured result as JSON (for Zabbix)")
    for key, value in DEFAULT_THRESHOLDS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=float, dest="t_" + key, default=None,
                            help="default %s" % value)
    return parser


def options_from_args(args):
    """Defaults, then the ``--config`` file, then explicit command-line options."""
    options = default_options()
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            raise HealthError("--config %s: %s" % (args.config, exc)) from exc
        if not isinstance(loaded, dict):
            raise HealthError("--config %s must hold a JSON object" % args.config)
        unknown = sorted(set(loaded) - set(options))
        if unknown:
            raise HealthError("--config %s: unknown keys %s (known: %s)"
                              % (args.config, ", ".join(unknown), ", ".join(sorted(options))))
        options.update(loaded)
    if args.url is not None:
        options["status_url"] = args.url
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.insecure:
        options["insecure"] = True
    if args.api_key_file:
        options["api_key_file"] = args.api_key_file
    if args.services:
        options["services"] = args.services
    if args.pmta is not None:
        options["pmta_binary"] = args.pmta or None
    if args.license_file is not None:
        options["license_file"] = args.license_file or None
    if args.no_license:
        options["check_license"] = False
        options["license_file"] = None
    if args.no_backoff:
        options["check_backoff"] = False
    if args.spool_dirs:
        options["spool_dirs"] = args.spool_dirs
    if args.acct_file is not None:
        options["acct_file"] = args.acct_file or None
    thresholds = dict(options.get("thresholds") or {})
    for key in DEFAULT_THRESHOLDS:
        value = getattr(args, "t_" + key)
        if value is not None:
            thresholds[key] = value
    options["thresholds"] = thresholds
    return options


def nagios_main(argv=None, stdout=None, fetch=None):
    """Entry point of ``check_pmta``; returns the exit code. ``fetch``: see ``probe_http_json``."""
    import sys

    stdout = stdout or sys.stdout
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad options: that would read as CRITICAL
        if exc.code in (0, None):
            return OK
        stdout.write("PMTA UNKNOWN - bad arguments (see check_pmta --help)\n")
        return UNKNOWN
    try:
        options = options_from_args(args)
        results, status = run_checks(options, fetch=fetch)
    except HealthError as exc:
        stdout.write("PMTA UNKNOWN - %s\n" % exc)
        return UNKNOWN
    except Exception as exc:  # a monitoring plugin must answer UNKNOWN, never a traceback
        stdout.write("PMTA UNKNOWN - internal error: %s: %s\n" % (type(exc).__name__, exc))
        return UNKNOWN
    state, line = summarize(results)
    if args.json:
        stdout.write(json.dumps({
            "state": STATE_NAMES[state], "exit_code": state, "summary": line,
            "checks": [r.as_dict() for r in results], "status": status,
        }, sort_keys=True) + "\n")
    else:
        stdout.write(line + "\n")
    return state
