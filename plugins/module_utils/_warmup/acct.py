# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming PowerMTA accounting (CSV) statistics per source IP, vMTA and ISP group.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only: it runs on the PowerMTA host.

Accounting files are RFC 4180 CSV whose first row names the columns; the column
order differs per record type and per ``record-fields`` setting, so every file
is parsed by its own header row (and a ``type,...`` row met later in a file, as
left by concatenated or re-opened files, replaces it). Records used:

- ``d`` delivered, ``b`` bounced (final outcome: both count as ``sent``);
- ``t`` per-recipient and ``tq`` queue-level transient failures (``deferred``);
  a transient reply that matches the ISP group's throttling patterns also
  counts as ``throttled``;
- ``f`` feedback-loop complaints.
Others (``r``, ``rb``, ``rs``) are counted by type and otherwise ignored.

Memory stays flat in file size: one pass, a row at a time; counters are keyed by
(IP, vMTA, ISP group) and the recipient-domain tallies are pruned to a bounded
size (exact while a key has fewer than ``DOMAIN_CAPACITY`` distinct domains,
approximate beyond). Lines that are not valid CSV, have the wrong number of
fields (truncated while being written) or an unreadable time are counted as
``corrupt`` and skipped, never fatal.
"""

from __future__ import annotations

import csv
import datetime
import email.utils
import glob
import gzip
import ipaddress
import itertools
import operator
import os
import sys

try:
    from ansible_collections.mailops.powermta.plugins.module_utils._fleet import isp_groups as _isp_groups
except ImportError:  # loaded by path
    from _fleet import isp_groups as _isp_groups  # type: ignore[no-redef]

DOMAIN_CAPACITY = 2000
RECORD_TYPES = ("d", "b", "t", "tq", "f")
COUNTER_KEYS = ("sent", "delivered", "bounced", "deferred", "deferred_queue", "complaints", "throttled")
OBSERVATION_KEYS = ("sent", "delivered", "bounced", "deferred", "complaints", "throttled")
_UTC = datetime.timezone.utc  # noqa: UP017 - may run on Python < 3.11 hosts

# csv refuses fields over 128 KiB by default; header_* fields can be long.
csv.field_size_limit(min(sys.maxsize, 16 * 1024 * 1024))


class AcctError(ValueError):
    """Bad arguments (never bad data: bad lines are counted and skipped)."""


def parse_since(value):
    """ISO 8601 (``2026-05-01T06:00:00Z``) or PowerMTA's ``2026-05-01 06:00:00+0000`` -> aware UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        parsed = parse_time_logged(str(value))
        if parsed is None:
            raise AcctError("since must be an ISO 8601 time such as 2026-05-01T06:00:00Z, got %r" % (value,))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return parsed.astimezone(_UTC)


def parse_time_logged(text):
    """PowerMTA ``timeLogged``: ISO form (``iso-times yes``, the default) or RFC 822 form."""
    text = text.strip()
    if not text:
        return None
    candidate = text
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    elif len(candidate) >= 5 and candidate[-5] in "+-" and candidate[-4:].isdigit():
        candidate = candidate[:-2] + ":" + candidate[-2:]
    try:
        parsed = datetime.datetime.fromisoformat(candidate)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_UTC)
    return parsed


def expand_paths(patterns):
    """Glob patterns -> existing files, oldest first (mtime, then name), each once.

    Oldest first keeps rotated files (``acct-2026-05-01-0001.csv``, ``.csv.1``,
    ``.csv.gz``) in the order PowerMTA wrote them.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found = {}
    for pattern in patterns or []:
        for path in glob.glob(os.path.expanduser(pattern)):
            if os.path.isfile(path):
                real = os.path.realpath(path)
                if real not in found:
                    found[real] = (os.stat(real).st_mtime, path)
    return [path for _mtime, path in sorted(found.values())]


def _ip_filter(ips):
    """The given texts plus their canonical forms (PowerMTA writes ``2001:db8::11``, users may not)."""
    result = set()
    for ip in ips:
        text = str(ip).strip()
        result.add(text)
        try:
            result.add(str(ipaddress.ip_address(text)))
        except ValueError as exc:
            raise AcctError("ips: %r is not an IPv4 or IPv6 address" % (ip,)) from exc
    return result


def _open(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


class _Key:
    """Counters for one (ip, vmta, isp)."""

    __slots__ = ("counts", "categories", "domains")

    def __init__(self):
        self.counts = [0] * len(COUNTER_KEYS)  # in COUNTER_KEYS order
        self.categories = {}
        self.domains = {}


def _getter(indexes):
    """One C call that returns the fields at ``indexes`` ("" for a missing column)."""
    if all(index >= 0 for index in indexes):
        return operator.itemgetter(*indexes)
    return lambda row: tuple(row[index] if index >= 0 else "" for index in indexes)


def _as_dict(counts):
    return {name: counts[index] for index, name in enumerate(COUNTER_KEYS)}


def _prune(domains, capacity):
    """Keep the most frequent half when a tally grows past its capacity."""
    keep = sorted(domains.items(), key=lambda item: (-item[1], item[0]))[: capacity // 2]
    domains.clear()
    domains.update(keep)


class AcctStats:
    """Accumulates accounting records; feed files with :meth:`add_file`."""

    def __init__(self, classifier=None, since=None, ips=None, vmtas=None, classify_by_mx=True,
                 top_domains=10, domain_capacity=DOMAIN_CAPACITY):
        self.classifier = classifier or _isp_groups.IspClassifier()
        self.since = parse_since(since)
        self.ips = _ip_filter(ips) if ips else None
        self.vmtas = set(vmtas) if vmtas else None
        self.classify_by_mx = classify_by_mx
        self.top_domains = top_domains
        self.domain_capacity = max(2 * top_domains, domain_capacity)
        self.keys = {}
        self.files = []
        self.totals = {"rows": 0, "used": 0, "corrupt": 0, "before_since": 0, "filtered": 0}
        self.ignored_types = {}
        self.first_time = None
        self.last_time = None
        # since as the text PowerMTA writes, per UTC offset seen: string compare, no parsing per row
        self._since_text = {}
        self._domain_cache = {}
        self._mx_cache = {}
        self._last_since = (None, "")  # (UTC offset text, since in that offset) of the last ISO time seen

    # -------------------------------------------------------------- time filter
    def _is_before_since(self, time_text):
        """True when the record is older than ``since``; None when the time cannot be read."""
        offset = time_text[19:]
        prefix = self._since_text.get(offset)
        if prefix is None:
            parsed = parse_time_logged(time_text)
            if parsed is None:
                return None
            if len(time_text) >= 19 and time_text[4] == "-" and time_text[10] == " " and offset:
                # ISO form with a fixed offset: cache since rendered in that offset
                local_since = self.since.astimezone(parsed.tzinfo)
                self._since_text[offset] = local_since.strftime("%Y-%m-%d %H:%M:%S")
            else:
                return parsed < self.since
            prefix = self._since_text[offset]
        self._last_since = (offset, prefix)
        return time_text[:19] < prefix

    # -------------------------------------------------------------- files
    def add_files(self, patterns):
        paths = expand_paths(patterns)
        for path in paths:
            self.add_file(path)
        return paths

    def add_file(self, path):
        info = {"path": path, "rows": 0, "used": 0, "corrupt": 0, "before_since": 0, "headers": 0,
                "skipped": False}
        self.files.append(info)
        if self.since is not None:
            try:
                mtime = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, _UTC)
            except OSError:
                mtime = None
            if mtime is not None and mtime < self.since:
                info["skipped"] = "not modified since %s" % self.since.strftime("%Y-%m-%dT%H:%M:%SZ")
                return info
        try:
            with _open(path) as handle:
                self._read(handle, info)
        except OSError as exc:
            info["error"] = "%s: %s" % (type(exc).__name__, exc)
        for key in ("rows", "used", "corrupt", "before_since"):
            self.totals[key] += info[key]
        return info

    def add_lines(self, name, lines, header=None):
        """Count text ``lines`` of a file read from an offset (``_acct_tail``); ``header``: the header line in force.

        Returns the header line in force after them.
        """
        info = {"path": name, "rows": 0, "used": 0, "corrupt": 0, "before_since": 0, "headers": 0, "skipped": False}
        self.files.append(info)
        self._read(itertools.chain((header,) if header else (), lines), info)
        for key in ("rows", "used", "corrupt", "before_since"):
            self.totals[key] += info[key]
        for line in reversed(lines):
            if line.startswith("type,"):
                return line
        return header

    def _classify_domain(self, raw):
        """Raw recipient domain -> (normalised domain, ISP group), cached by the caller."""
        domain = raw.lower().rstrip(">").rstrip(".")
        return domain, self.classifier.by_domain(domain)

    def _classify_mx(self, domain, dsn_mta):
        return self.classifier.classify(domain, _isp_groups.mx_host_from_dsn_mta(dsn_mta))

    def _read(self, handle, info):
        reader = csv.reader(handle, strict=True)
        state = {"width": 0, "columns": {}}
        counts = {"rows": 0, "used": 0, "corrupt": 0, "old": 0, "filtered": 0}
        while True:
            try:
                self._read_rows(reader, info, state, counts)
                break
            except csv.Error:
                # not valid CSV (NUL byte, stray quote): count the line and read on
                counts["rows"] += 1
                counts["corrupt"] += 1
        info["rows"] += counts["rows"]
        info["used"] += counts["used"]
        info["corrupt"] += counts["corrupt"]
        info["before_since"] += counts["old"]
        self.totals["filtered"] += counts["filtered"]

    def _read_rows(self, reader, info, state, totals):
        """The hot loop: locals only, one dict lookup per classification.

        Consecutive rows usually share their ``timeLogged`` second, so the time
        filter and the first/last bookkeeping run once per distinct time text.
        """
        keys = self.keys
        since = self.since
        ips_filter = self.ips
        vmtas_filter = self.vmtas
        is_throttle = self.classifier.is_throttle
        other = _isp_groups.OTHER
        by_mx = self.classify_by_mx
        ignored = self.ignored_types
        capacity = self.domain_capacity
        before_since = self._is_before_since
        domain_cache = self._domain_cache
        mx_cache = self._mx_cache
        classify_domain = self._classify_domain
        classify_mx = self._classify_mx
        new_key = _Key
        first_time = self.first_time or "\uffff"
        last_time = self.last_time or ""
        previous_time = None
        previous_before = False
        since_offset, since_prefix = self._last_since
        # every data row ends as exactly one of these; their sum is the row count
        used = corrupt = old = filtered = ignored_rows = 0
        width = state["width"]
        columns = state["columns"]

        def column(name):
            return columns.get(name, -1)

        i_time, i_rcpt, i_ip, i_vmta, i_cat, i_diag, i_mta, i_queue = (
            column("timeLogged"), column("rcpt"), column("dlvSourceIp"), column("vmta"), column("bounceCat"),
            column("dsnDiag"), column("dsnMta"), column("queue"))
        fields = _getter((i_time, i_ip, i_vmta, i_rcpt))
        try:
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue
                    if row[0] == "type":
                        info["headers"] += 1
                        columns = state["columns"] = {name: index for index, name in enumerate(row)}
                        width = state["width"] = len(row)
                        i_time, i_rcpt, i_ip, i_vmta, i_cat, i_diag, i_mta, i_queue = (
                            column("timeLogged"), column("rcpt"), column("dlvSourceIp"), column("vmta"),
                            column("bounceCat"), column("dsnDiag"), column("dsnMta"), column("queue"))
                        fields = _getter((i_time, i_ip, i_vmta, i_rcpt))
                        previous_time = None
                        continue
                    corrupt += 1
                    continue
                kind = row[0]
                if kind == "d" or kind == "t" or kind == "b" or kind == "tq" or kind == "f":
                    pass
                elif kind == "type":
                    # a repeated header of the same width: it may still reorder the columns
                    info["headers"] += 1
                    columns = state["columns"] = {name: index for index, name in enumerate(row)}
                    i_time, i_rcpt, i_ip, i_vmta, i_cat, i_diag, i_mta, i_queue = (
                        column("timeLogged"), column("rcpt"), column("dlvSourceIp"), column("vmta"),
                        column("bounceCat"), column("dsnDiag"), column("dsnMta"), column("queue"))
                    fields = _getter((i_time, i_ip, i_vmta, i_rcpt))
                    previous_time = None
                    continue
                else:
                    ignored_rows += 1
                    ignored[kind] = ignored.get(kind, 0) + 1
                    continue
                time_text, ip, vmta, raw = fields(row)
                if time_text != previous_time:
                    if since is not None:
                        if time_text[19:] == since_offset:
                            before = time_text[:19] < since_prefix
                        else:
                            before = before_since(time_text)
                            if before is None:
                                corrupt += 1
                                continue
                            since_offset, since_prefix = self._last_since
                        previous_before = before
                    previous_time = time_text
                    if not previous_before and time_text:
                        if time_text > last_time:
                            last_time = time_text
                        if time_text < first_time:
                            first_time = time_text
                if previous_before:
                    old += 1
                    continue
                if ips_filter is not None and ip not in ips_filter:
                    filtered += 1
                    continue
                if vmtas_filter is not None and vmta not in vmtas_filter:
                    filtered += 1
                    continue
                if kind == "tq":
                    raw = row[i_queue].split("/", 1)[0] if i_queue >= 0 else ""
                else:
                    raw = raw[raw.rfind("@") + 1:]
                cached = domain_cache.get(raw)
                if cached is None:
                    cached = classify_domain(raw)
                    if len(domain_cache) < 100000:
                        domain_cache[raw] = cached
                domain, isp = cached
                if isp == other and by_mx and i_mta >= 0:
                    dsn_mta = row[i_mta]
                    if dsn_mta:
                        isp = mx_cache.get(dsn_mta)
                        if isp is None:
                            isp = classify_mx(domain, dsn_mta)
                            if len(mx_cache) < 100000:
                                mx_cache[dsn_mta] = isp
                key = (ip, vmta, isp)
                entry = keys.get(key)
                if entry is None:
                    entry = keys[key] = new_key()
                counts = entry.counts
                if kind == "d":
                    counts[0] += 1
                    counts[1] += 1
                elif kind == "t":
                    counts[3] += 1
                    if i_diag >= 0 and is_throttle(isp, row[i_diag]):
                        counts[6] += 1
                elif kind == "b":
                    counts[0] += 1
                    counts[2] += 1
                    category = (row[i_cat] if i_cat >= 0 else "") or "other"
                    categories = entry.categories
                    categories[category] = categories.get(category, 0) + 1
                elif kind == "tq":
                    counts[3] += 1
                    counts[4] += 1
                    if i_diag >= 0 and is_throttle(isp, row[i_diag]):
                        counts[6] += 1
                    used += 1
                    continue
                else:
                    counts[5] += 1
                if domain:
                    tally = entry.domains
                    seen = tally.get(domain)
                    if seen is None:
                        tally[domain] = 1
                        if len(tally) > capacity:
                            _prune(tally, capacity)
                    else:
                        tally[domain] = seen + 1
                used += 1
        finally:
            totals["rows"] += used + corrupt + old + filtered + ignored_rows
            totals["used"] += used
            totals["corrupt"] += corrupt
            totals["old"] += old
            totals["filtered"] += filtered
            self.first_time = None if first_time == "\uffff" else first_time
            self.last_time = last_time or None

    # -------------------------------------------------------------- results
    def stats(self):
        """One dict per (ip, vmta, isp), sorted."""
        result = []
        for (ip, vmta, isp), entry in sorted(self.keys.items()):
            item = {"ip": ip, "vmta": vmta, "isp": isp}
            item.update(_as_dict(entry.counts))
            item["bounced_by_category"] = dict(sorted(entry.categories.items()))
            top = sorted(entry.domains.items(), key=lambda pair: (-pair[1], pair[0]))[: self.top_domains]
            item["top_domains"] = [{"domain": domain, "count": count} for domain, count in top]
            result.append(item)
        return result

    def observations(self):
        """``{ip: {isp: counters}}`` summed over vMTAs: the input of warmup_plan."""
        result = {}
        for (ip, _vmta, isp), entry in sorted(self.keys.items()):
            if not ip:
                continue
            target = result.setdefault(ip, {}).setdefault(isp, dict.fromkeys(OBSERVATION_KEYS, 0))
            counts = _as_dict(entry.counts)
            for name in OBSERVATION_KEYS:
                target[name] += counts[name]
        return result

    def top_recipient_domains(self):
        """Top recipient domains over everything read (from the bounded tallies)."""
        merged = {}
        for entry in self.keys.values():
            for domain, count in entry.domains.items():
                merged[domain] = merged.get(domain, 0) + count
        top = sorted(merged.items(), key=lambda pair: (-pair[1], pair[0]))[: self.top_domains]
        return [{"domain": domain, "count": count} for domain, count in top]

    def result(self):
        return {
            "files": self.files,
            "rows": self.totals["rows"],
            "used": self.totals["used"],
            "corrupt": self.totals["corrupt"],
            "before_since": self.totals["before_since"],
            "filtered": self.totals["filtered"],
            "ignored_types": dict(sorted(self.ignored_types.items())),
            "first_time": self.first_time,
            "last_time": self.last_time,
            "stats": self.stats(),
            "observations": self.observations(),
            "top_domains": self.top_recipient_domains(),
        }


def collect(paths, since=None, ips=None, vmtas=None, isp_groups=None, classify_by_mx=True, top_domains=10):
    """Read every file matching ``paths`` and return :meth:`AcctStats.result`."""
    if not isinstance(top_domains, int) or top_domains < 0:
        raise AcctError("top_domains must be a whole number >= 0, got %r" % (top_domains,))
    groups = _isp_groups.merge_isp_groups(isp_groups) if isp_groups else None
    stats = AcctStats(_isp_groups.IspClassifier(groups), since=since, ips=ips, vmtas=vmtas,
                      classify_by_mx=classify_by_mx, top_domains=top_domains)
    stats.add_files(paths)
    return stats.result()


def iter_records(lines, kinds, fields, counts, header=None):
    """Rows of the record types ``kinds`` from the CSV text ``lines`` (a list) as ``(kind, values)``.

    ``values`` holds the columns named in ``fields`` (two or more; "" where the
    file has no such column), read by the file's own header row (§11.2.9):
    ``header`` is the header line in force before the first line (a file read
    from an offset), and every ``type,...`` row met later replaces it. Rows of
    the wrong width or not valid CSV are counted in ``counts["corrupt"]`` and
    skipped; a stray quote (a line cut off by a crash) costs only its own line:
    the lines a bad record swallowed are parsed again one by one.
    ``counts["rows"]`` counts data rows, ``counts["header"]`` keeps the last
    header line in force.
    """
    kinds = frozenset(kinds)
    width = 0
    getter = None

    def use_header(row):
        columns = {name: index for index, name in enumerate(row)}
        counts["header"] = ",".join(row)
        return len(row), _getter(tuple(columns.get(name, -1) for name in fields))

    def one_by_one(physical):
        """Each line alone: its rows, or None for a line that is not CSV."""
        for line in physical:
            try:
                yield from csv.reader([line], strict=True)
            except csv.Error:
                yield None

    if header:
        width, getter = use_header(next(csv.reader([header]), []))
    base = 0  # index in ``lines`` of the reader's first line
    reader = csv.reader(lines, strict=True)
    done = 0  # lines of ``lines`` fully parsed
    rows = corrupt = 0
    while True:
        try:
            for row in reader:
                end = base + reader.line_num
                if end - done > 1 and len(row) != width:
                    rows_of = one_by_one(lines[done:end])  # a stray quote swallowed these lines
                else:
                    rows_of = (row,)
                done = end
                for row in rows_of:  # noqa: B020 - the swallowed lines replace the bad record
                    if row is None:
                        rows += 1
                        corrupt += 1
                        continue
                    if not row:
                        continue
                    kind = row[0]
                    if kind == "type":
                        width, getter = use_header(row)
                        continue
                    rows += 1
                    if len(row) != width:
                        corrupt += 1
                    elif kind in kinds:
                        yield kind, getter(row)
            break
        except csv.Error:
            # the record starting at lines[done] is not CSV: count that line, parse on from the next one
            rows += 1
            corrupt += 1
            done += 1
            base = done
            reader = csv.reader(itertools.islice(lines, base, None), strict=True)
    counts["rows"] += rows
    counts["corrupt"] += corrupt
