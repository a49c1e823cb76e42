# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics for PowerMTA hosts, written for node_exporter's textfile collector.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only: the ``monitoring`` role installs this package,
``_monitoring``, with ``_warmup`` (accounting, engine), ``_fleet/isp_groups.py`` and ``_common/atomic.py``
side by side on the host, and ``pmta-metrics-collector`` (run by a systemd timer) calls
``collector_main``.

Sources, all read locally on the host:

- the HTTP status (loopback) and the health checks of ``_health.run_checks``:
  queue depth, recipients queued, connections, backoff queues, spool space,
  licence days, accounting age, one state per check;
- the accounting files, read incrementally: only the bytes written since the
  last run are parsed (by ``_acct.AcctStats``), and the counts are added to
  counters kept in a state file, so ``pmta_acct_records_total`` only grows and
  Prometheus ``rate()`` gives delivered/bounced/deferred rates per vMTA and ISP;
- the warm-up state (local fact ``pmta_warmup.fact``): stage, daily limit and
  status per IP x ISP group;
- the latest DNSBL result (local fact ``pmta_dnsbl.fact``, written by the
  warm-up step from ``warmup_dnsbl_check``): listed zones per IP.

The output file is replaced atomically (write to a temporary file in the same
directory, fsync, rename), so node_exporter never reads half a file.
"""

from __future__ import annotations

import json
import math
import os
import time

try:
    from ansible_collections.mailops.powermta.plugins.module_utils._common.atomic import write_atomic
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct as _acct
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import acct_tail as _acct_tail
    from ansible_collections.mailops.powermta.plugins.module_utils._warmup import engine as _warmup

    from . import health as _health
except ImportError:  # loaded by path on the host
    from _common.atomic import write_atomic  # type: ignore[no-redef]
    from _warmup import acct as _acct  # type: ignore[no-redef]
    from _warmup import acct_tail as _acct_tail  # type: ignore[no-redef]
    from _warmup import engine as _warmup  # type: ignore[no-redef]

    from _monitoring import health as _health  # type: ignore[no-redef]

STATE_VERSION = 1
# Outcome label -> the _acct counter it comes from.
ACCT_OUTCOMES = (
    ("delivered", "delivered"),
    ("bounced", "bounced"),
    ("deferred", "deferred"),
    ("complaint", "complaints"),
    ("throttled", "throttled"),
)
# Bounce categories (guide §11.6) that say the address is dead: the per-ISP x IP hard-bounce rate of the alert
# rules, and what the suppression export suppresses on the first bounce (_suppression.HARD_CATEGORIES).
HARD_BOUNCE_CATEGORIES = ("bad-mailbox", "inactive-mailbox", "bad-domain")


class MetricsError(ValueError):
    """Bad collector configuration; the message names the key and the fix."""


# ---------------------------------------------------------------- exposition
def _escape_label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class Registry:
    """Metric families in the Prometheus text exposition format (version 0.0.4)."""

    def __init__(self):
        self._families = {}

    def add(self, name, kind, help_text, value, labels=None):
        if kind not in ("gauge", "counter"):
            raise MetricsError("metric %s: kind must be gauge or counter" % name)
        family = self._families.setdefault(name, {"kind": kind, "help": help_text, "samples": {}})
        if family["kind"] != kind:
            raise MetricsError("metric %s registered as %s and %s" % (name, family["kind"], kind))
        key = tuple(sorted((labels or {}).items()))
        family["samples"][key] = value

    def names(self):
        return sorted(self._families)

    def value(self, name, **labels):
        return self._families[name]["samples"][tuple(sorted(labels.items()))]

    def render(self):
        lines = []
        for name in sorted(self._families):
            family = self._families[name]
            lines.append("# HELP %s %s" % (name, family["help"].replace("\\", "\\\\").replace("\n", " ")))
            lines.append("# TYPE %s %s" % (name, family["kind"]))
            for labels, value in sorted(family["samples"].items()):
                if labels:
                    text = ",".join('%s="%s"' % (key, _escape_label(val)) for key, val in labels)
                    lines.append("%s{%s} %s" % (name, text, _format_value(value)))
                else:
                    lines.append("%s %s" % (name, _format_value(value)))
        return "\n".join(lines) + "\n" if lines else ""


# ------------------------------------------------------- status and health
def add_health_metrics(registry, results, status):
    """Gauges from ``_health.run_checks``: one state per check plus the measured numbers."""
    registry.add("pmta_status_up", "gauge", "1 when the PowerMTA status endpoint answered with a status.",
                 1 if status is not None else 0)
    overall = _health.worst_state(r.state for r in results) if results else _health.UNKNOWN
    registry.add("pmta_health_state", "gauge", "Overall health, Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
                 overall)
    for result in results:
        registry.add("pmta_health_check_state", "gauge",
                     "Health per check, Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
                     result.state, {"check": result.name})
        if result.name.startswith("service_"):
            registry.add("pmta_service_active", "gauge", "1 when the systemd unit is active.",
                         1 if result.state == _health.OK else 0, {"unit": result.name[len("service_"):]})
        elif result.name == "backoff_queues" and result.value is not None:
            registry.add("pmta_backoff_queues", "gauge", "Queues in backoff mode.", result.value)
        elif result.name.startswith("spool_free_pct") and result.value is not None:
            registry.add("pmta_spool_free_ratio", "gauge", "Free space of the spool file system (0-1).",
                         round(result.value / 100.0, 4), {"path": result.subject})
            registry.add("pmta_spool_free_bytes", "gauge",
                         "Free space of the spool file system for non-root users (as min-free-space counts it).",
                         result.details["free_bytes"], {"path": result.subject})
            registry.add("pmta_spool_accepting", "gauge",
                         "1 while the spool has room for new mail (free space above min-free-space, 3.3.2.4), "
                         "0 when full: PowerMTA refuses new mail.",
                         1 if result.details["accepting"] else 0, {"path": result.subject})
        elif result.name == "license_days" and result.value is not None:
            registry.add("pmta_license_days_remaining", "gauge", "Days until the PowerMTA licence expires.",
                         result.value)
        elif result.name == "acct_age" and result.value is not None:
            registry.add("pmta_acct_last_write_age_seconds", "gauge", "Seconds since the accounting file changed.",
                         result.value)
    if status is None:
        return
    for key, name, help_text in (
        ("queued_recipients", "pmta_queued_recipients", "Recipients queued (all queue types)."),
        ("queued_domains", "pmta_queued_domains", "Domains with SMTP queues."),
        ("queued_kilobytes", "pmta_queued_kilobytes", "Kilobytes in the SMTP queues."),
        ("spool_files", "pmta_spool_files", "Spool files in use."),
    ):
        if status.get(key) is not None:
            registry.add(name, "gauge", help_text, status[key])
    for direction in ("in", "out"):
        if status.get("connections_" + direction) is not None:
            registry.add("pmta_smtp_connections", "gauge", "Open SMTP connections.",
                         status["connections_" + direction], {"direction": direction})
        if status.get("traffic_total_" + direction) is not None:
            registry.add("pmta_traffic_recipients_total", "counter",
                         "Recipients received (in) or delivered (out) since PowerMTA started.",
                         status["traffic_total_" + direction], {"direction": direction})
        if status.get("traffic_last_hour_" + direction) is not None:
            registry.add("pmta_traffic_recipients_last_hour", "gauge", "Recipients in the last hour, per PowerMTA.",
                         status["traffic_last_hour_" + direction], {"direction": direction})


# ------------------------------------------------------------- accounting
def load_state(path):
    """The collector's saved state, or a fresh one (a corrupt file is reported, not fatal)."""
    fresh = {"version": STATE_VERSION, "files": {}, "counters": {}}
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return fresh, None
    except (OSError, ValueError) as exc:
        return fresh, "state %s unreadable, counters restart: %s" % (path, exc)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return fresh, "state %s has another version, counters restart" % path
    state.setdefault("files", {})
    state.setdefault("counters", {})
    return state, None


def _counter_key(vmta, ip, isp, outcome):
    return "\t".join((vmta or "", ip or "", isp or "", outcome))


def read_new_accounting(state, patterns, max_bytes=64 * 1024 * 1024, classifier=None):
    """Parse what was appended to the accounting files since the last run; update ``state``.

    The files and their cursors are followed by ``_acct_tail`` (device and inode, so a file renamed by
    rotation is followed; a file that shrank or was replaced starts again at 0; a partly written last line
    waits for the next run), at most ``max_bytes`` per file and run (a big backlog is caught up over several
    runs). Returns a summary dict.
    """
    stats = _acct.AcctStats(classifier=classifier, classify_by_mx=True)
    state["files"], summary = _acct_tail.tail(state["files"], patterns, stats.add_lines, max_bytes=max_bytes)
    summary["records"] = stats.totals["used"]
    summary["corrupt"] = stats.totals["corrupt"]
    for item in stats.stats():
        for outcome, counter in ACCT_OUTCOMES:
            count = item.get(counter, 0)
            if count:
                key = _counter_key(item["vmta"], item["ip"], item["isp"], outcome)
                state["counters"][key] = state["counters"].get(key, 0) + count
        hard = sum(item.get("bounced_by_category", {}).get(category, 0) for category in HARD_BOUNCE_CATEGORIES)
        if hard:
            key = _counter_key(item["vmta"], item["ip"], item["isp"], "hard_bounced")
            state["counters"][key] = state["counters"].get(key, 0) + hard
    return summary


def add_acct_metrics(registry, state):
    for key, value in sorted(state["counters"].items()):
        vmta, ip, isp, outcome = key.split("\t")
        registry.add("pmta_acct_records_total", "counter",
                     "Accounting records per vMTA, source IP, ISP group and outcome (delivered, bounced, "
                     "hard_bounced, deferred, complaint, throttled) since the collector was installed.",
                     value, {"vmta": vmta, "ip": ip, "isp": isp, "outcome": outcome})


# ----------------------------------------------------------- warm-up, DNSBL
def read_json_file(path):
    """``(document, None)``, ``(None, None)`` when absent, ``(None, error)`` when unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, "%s: %s" % (path, exc)


def add_warmup_metrics(registry, fact, schedule=None):
    """Stage, daily limit and status per IP x ISP group from the warm-up local fact."""
    if not fact:
        registry.add("pmta_warmup_state_present", "gauge", "1 when the warm-up state fact was read.", 0)
        return
    raw = fact["state"] if isinstance(fact, dict) and "ips" not in fact and isinstance(fact.get("state"), dict) \
        else fact
    state = _warmup.normalize_state(raw)
    registry.add("pmta_warmup_state_present", "gauge", "1 when the warm-up state fact was read.", 1)
    if state.get("updated_at"):
        updated = _warmup.parse_time(state["updated_at"], "updated_at")
        registry.add("pmta_warmup_updated_timestamp_seconds", "gauge", "When the last warm-up step ran (Unix time).",
                     int(updated.timestamp()))
    isps = sorted({isp for pairs in state["ips"].values() for isp in pairs})
    stages_by_isp = _warmup.normalize_schedule(schedule, isps)
    for ip, pairs in sorted(state["ips"].items()):
        for isp, pair in sorted(pairs.items()):
            stages = stages_by_isp[isp]
            stage = min(pair["stage"], len(stages))
            labels = {"ip": ip, "isp": isp}
            registry.add("pmta_warmup_stage", "gauge", "Current warm-up stage (1 = first).", stage, labels)
            registry.add("pmta_warmup_stages", "gauge", "Number of stages in the schedule.", len(stages), labels)
            limit = _warmup.level_of(pair, stages)  # an approach level below a throttled ceiling counts
            registry.add("pmta_warmup_daily_limit", "gauge", "Messages per day allowed today (0 while paused).",
                         limit, labels)
            for status in ("warming", "paused", "done"):
                registry.add("pmta_warmup_status", "gauge", "1 for the pair's current status.",
                             1 if pair["status"] == status else 0, dict(labels, status=status))


def blocklisted_from(document):
    """``{ip: [zones]}`` from the DNSBL fact: either ``{"blocklisted": {...}}`` or warmup_dnsbl_check's ``results``."""
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("blocklisted"), dict):
        return {str(ip): sorted(str(z) for z in (zones or [])) for ip, zones in document["blocklisted"].items()}
    if isinstance(document.get("results"), list):
        listed = {}
        for item in document["results"]:
            if isinstance(item, dict) and item.get("ip"):
                zones = listed.setdefault(str(item["ip"]), [])
                if item.get("status") == "listed":
                    zones.append(str(item.get("zone")))
        return {ip: sorted(zones) for ip, zones in listed.items()}
    return None


def add_blocklist_metrics(registry, document, ips=()):
    listed = blocklisted_from(document)
    registry.add("pmta_blocklist_data_present", "gauge", "1 when a DNSBL result was read.", 0 if listed is None else 1)
    if listed is None:
        return
    checked = document.get("checked_at") or document.get("updated_at")
    if checked:
        try:
            when = _warmup.parse_time(checked, "checked_at")
            registry.add("pmta_blocklist_checked_timestamp_seconds", "gauge",
                         "When the DNSBL result was produced (Unix time).", int(when.timestamp()))
        except _warmup.WarmupInputError:
            pass
    for ip in sorted(set(listed) | set(ips)):
        zones = listed.get(ip, [])
        registry.add("pmta_blocklisted", "gauge", "1 when the IP is on at least one DNSBL (reputation listings).",
                     1 if zones else 0, {"ip": ip})
        for zone in zones:
            registry.add("pmta_blocklist_listed", "gauge", "1 per DNSBL zone listing the IP.", 1,
                         {"ip": ip, "zone": zone})


# ---------------------------------------------------------------- collector
DEFAULT_CONFIG = {
    "output": "/var/lib/prometheus/node-exporter/pmta.prom",
    "state_file": "/var/lib/mailops-powermta/metrics-state.json",
    "health": {},
    "acct_files": ["/var/log/pmta/acct*.csv"],
    "acct_max_bytes_per_run": 64 * 1024 * 1024,
    "warmup_fact": "/etc/ansible/facts.d/pmta_warmup.fact",
    "warmup_schedule": {},
    "dnsbl_fact": "/etc/ansible/facts.d/pmta_dnsbl.fact",
}


def load_config(path):
    config = json.loads(json.dumps(DEFAULT_CONFIG))
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                loaded = json.load(handle)
        except (OSError, ValueError) as exc:
            raise MetricsError("--config %s: %s" % (path, exc)) from exc
        if not isinstance(loaded, dict):
            raise MetricsError("--config %s must hold a JSON object" % path)
        unknown = sorted(set(loaded) - set(DEFAULT_CONFIG))
        if unknown:
            raise MetricsError("--config %s: unknown keys %s (known: %s)"
                               % (path, ", ".join(unknown), ", ".join(sorted(DEFAULT_CONFIG))))
        config.update(loaded)
    return config


def collect(config, now=None, fetch=None):
    """One collection: returns ``(registry, notes)``; saves the accounting state.

    ``fetch`` reads the status URL (see ``_health.probe_http_json``).
    """
    started = time.time()
    registry = Registry()
    notes = []

    health_options = _health.default_options()
    unknown = sorted(set(config.get("health") or {}) - set(health_options))
    if unknown:
        raise MetricsError("health options: unknown keys %s" % ", ".join(unknown))
    health_options.update(config.get("health") or {})
    results, status = _health.run_checks(health_options, fetch=fetch)
    add_health_metrics(registry, results, status)

    state_dir = os.path.dirname(os.path.abspath(config["state_file"]))
    os.makedirs(state_dir, mode=0o750, exist_ok=True)
    state, error = load_state(config["state_file"])
    if error:
        notes.append(error)
    summary = read_new_accounting(state, config["acct_files"], config["acct_max_bytes_per_run"])
    state["bytes_read"] = state.get("bytes_read", 0) + summary["bytes"]
    write_atomic(config["state_file"], json.dumps(state, sort_keys=True), mode=0o640)
    add_acct_metrics(registry, state)
    registry.add("pmta_acct_bytes_read_total", "counter", "Accounting bytes parsed by the collector.",
                 state["bytes_read"])

    fact, error = read_json_file(config["warmup_fact"]) if config.get("warmup_fact") else (None, None)
    if error:
        notes.append(error)
    try:
        add_warmup_metrics(registry, fact, config.get("warmup_schedule"))
    except _warmup.WarmupInputError as exc:
        notes.append("warm-up state: %s" % exc)
    ips = sorted(fact.get("ips", {}) if isinstance(fact, dict) else {})
    dnsbl, error = read_json_file(config["dnsbl_fact"]) if config.get("dnsbl_fact") else (None, None)
    if error:
        notes.append(error)
    add_blocklist_metrics(registry, dnsbl, ips)

    registry.add("pmta_collector_errors", "gauge", "Problems met by the last collection (see the journal).",
                 len(notes))
    registry.add("pmta_collector_duration_seconds", "gauge", "How long the last collection took.",
                 round(time.time() - started, 3))
    registry.add("pmta_collector_last_run_timestamp_seconds", "gauge", "When the last collection ran (Unix time).",
                 int(now if now is not None else time.time()))
    return registry, notes


def collector_main(argv=None, fetch=None):
    """Entry point of ``pmta-metrics-collector``; returns the exit code. ``fetch``: see ``collect``."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="pmta-metrics-collector",
                                     description="Write PowerMTA metrics for node_exporter's textfile collector.")
    parser.add_argument("--config", default="/etc/mailops-powermta/metrics.json",
                        help="JSON settings (default %(default)s; built-in defaults when it is absent)")
    parser.add_argument("--stdout", action="store_true", help="print the metrics instead of writing the file")
    args = parser.parse_args(argv)
    try:
        explicit = args.config != parser.get_default("config")
        config = load_config(args.config if explicit or os.path.exists(args.config) else None)
        registry, notes = collect(config, fetch=fetch)
    except (MetricsError, _health.HealthError) as exc:
        sys.stderr.write("pmta-metrics-collector: %s\n" % exc)
        return 2
    for note in notes:
        sys.stderr.write("pmta-metrics-collector: %s\n" % note)
    text = registry.render()
    if args.stdout:
        sys.stdout.write(text)
    else:
        write_atomic(config["output"], text)
    return 0
