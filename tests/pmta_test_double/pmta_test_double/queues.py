# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the outbound queues and their scheduler.

One queue per recipient domain (or MX rollup, §10.17) and vMTA, named
``domain/vmta`` as PowerMTA names them. Per queue, from the merged ``<domain>``
settings (routing.py): ``max-smtp-out`` connections (``backoff-max-smtp-out`` in
backoff), ``max-msg-per-connection``, ``max-msg-rate`` (``backoff-max-msg-rate``;
``N/d`` counts per UTC day and resets at midnight, §3.3.10.33), ``retry-after``
(a list steps per attempt, the last repeats, §10.15; ``backoff-retry-after`` in
backoff), ``bounce-after``, ``backoff-to-normal-after``. Per vMTA and per pool (§3.3.12, §3.3.13):
``max-smtp-out`` and ``max-smtp-msg-rate`` across its queues. Cold
vMTAs (§10.7, §3.3.12.4, §3.3.10.48) re-select at reception: the first N
messages per queue per day of a warm vMTA go to its cold vMTA(s), round robin,
using the rollup queue's setting when the domain rolls up. ``reroute-to-virtual-mta``
(§3.3.10.49, a vMTA, never a pool) moves a queue's mail to another vMTA: at
reception and, after a reload, what is already queued.
Queued mail is also written to the ``<spool>`` directories (spool.py) before it is acknowledged and
loaded again at startup, so it survives a restart as in PowerMTA (§3.3.1.4).
"""

from __future__ import annotations

import collections
import itertools
import threading
import time

from . import acct, dsn, routing, values
from .clock import CLOCK
from .spool import Spool

TICK = 0.05  # wall-clock seconds between scheduler passes


class Message:
    _ids = itertools.count(1)

    def __init__(self, orig, envid, data, received, src_type, src_mta, job_id):
        self.id = next(self._ids)
        self.orig = orig
        self.envid = envid
        self.data = data
        self.received = received
        self.src_type = src_type
        self.src_mta = src_mta
        self.job_id = job_id
        self.spool_file = None  # spool.py
        self.spool_recipients = []


class Recipient:
    def __init__(self, message, rcpt, orcpt, vmta, pool):
        self.message = message
        self.rcpt = rcpt
        self.orcpt = orcpt
        self.domain = rcpt.rpartition("@")[2].lower()
        self.vmta = vmta
        self.pool = pool
        self.attempts = 0
        self.next_attempt = 0.0
        self.by_ip = False
        self.last_error = ("4.4.7 (delivery time expired)", "", "")  # status, diag, mta


class RateWindow:
    """``N/period``: at most N in any sliding period; a per-day rate counts per UTC day (§3.3.10.33)."""

    def __init__(self):
        self.stamps = collections.deque()
        self.day = None
        self.day_count = 0

    def allow(self, spec, now, take=True):
        if spec is None:
            return True
        count, period = spec
        if period == values.DAY:
            today = CLOCK.day(now)
            if today != self.day:
                self.day, self.day_count = today, 0  # midnight reset
            if self.day_count >= count:
                return False
            if take:
                self.day_count += 1
            return True
        while self.stamps and self.stamps[0] <= now - period:
            self.stamps.popleft()
        if len(self.stamps) >= count:
            return False
        if take:
            self.stamps.append(now)
        return True


class Queue:
    def __init__(self, name, vmta):
        self.name = name
        self.vmta = vmta
        self.recipients = []
        self.mode = "normal"
        self.backoff_since = 0.0
        self.retry_at = 0.0  # defer-queue
        self.disabled_until = 0.0  # disable-source-ip
        self.backoff_to_normal_after = None  # from a reply pattern's action
        self.active = 0
        self.rate = RateWindow()
        self.connect_rate = RateWindow()
        self.delivered = 0
        self.last_error = ""
        self.paused = False  # pmta pause queue (§6.3.23): no delivery, the mail stays

    def kilobytes(self):
        return sum(len(r.message.data) for r in self.recipients) / 1024.0

    @property
    def key(self):
        return "%s/%s" % (self.name, self.vmta or "{default}")


class Outbound:
    """All queues plus the scheduler thread; delivery sessions run in worker threads."""

    def __init__(self, state):
        self.state = state
        self.lock = threading.RLock()
        self.queues = {}
        self.vmta_rates = collections.defaultdict(RateWindow)
        self.vmta_active = collections.Counter()
        self.cold_counts = {}  # (warm, queue) -> (day, count)
        self.cold_first_day = {}  # (warm, queue) -> first day seen, for ramp lists
        self.cold_rr = collections.Counter()
        self.source_rr = collections.Counter()
        self.disabled_sources = {}  # (ip, queue pattern) -> until: pmta disable source (§6.3.33), commands.py
        self.resolver = routing.Resolver(state.config.name_servers, state.config.name_server_port)
        self.spool = Spool(state.config.spool_dirs(), state.log)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        """Load the spooled mail (§7 "Spool Initialization"), then start delivering."""
        loaded = self.spool.load(Message, Recipient)
        for message, recipients in loaded:
            self.enqueue(message, recipients, restored=True)
        if loaded:
            self.state.log("spool: %d message(s), %d recipient(s) loaded" % (
                len(loaded), sum(len(r) for _m, r in loaded)))
        self.thread.start()

    def reconfigure(self, config):
        self.resolver = routing.Resolver(config.name_servers, config.name_server_port)
        self.spool.reconfigure(config.spool_dirs())
        with self.lock:
            self._move_rerouted(config)

    # -- reception -----------------------------------------------------
    def enqueue(self, message, recipients, restored=False):
        """Queue accepted recipients; returns [(recipient, queue key)] after cold re-selection.
        The message is spooled first (OSError when no spool can take it: nothing is queued then);
        ``restored``: loaded from the spool at startup (already placed once, not written again)."""
        config = self.state.config
        targets = []
        for recipient in recipients:
            # DNS (for rollups) outside the lock: the scheduler must not wait on a slow resolver.
            name, by_ip = self._queue_name(config, recipient.domain, recipient.vmta)
            with self.lock:
                cold = None if restored else self._cold_vmta(config, recipient.vmta, name or recipient.domain)
            if cold:
                recipient.vmta, recipient.pool = cold, config.pool_of(cold)
                name, by_ip = self._queue_name(config, recipient.domain, cold)
            target = self._reroute(config, name or recipient.domain, recipient.vmta)
            if target:
                recipient.vmta, recipient.pool = target, config.pool_of(target)
                name, by_ip = self._queue_name(config, recipient.domain, target)
            recipient.by_ip = by_ip
            targets.append((recipient, name or recipient.domain))
        if not restored:
            self.spool.write(message, recipients)
        placed = []
        for recipient, queue_name in targets:
            with self.lock:
                queue = self.queues.get((queue_name, recipient.vmta))
                if queue is None:
                    queue = self.queues[(queue_name, recipient.vmta)] = Queue(queue_name, recipient.vmta)
                recipient.next_attempt = CLOCK.now()
                queue.recipients.append(recipient)
            placed.append((recipient, queue.key))
        return placed

    def _queue_name(self, config, domain, vmta):
        """``queue-to`` (§3.3.10.31, applied first), else the MX rollup (§10.17), else the domain."""
        queue_to = routing.domain_settings(config, domain, vmta).get("queue-to", "").strip('"').lower()
        if queue_to:
            return queue_to, False
        return routing.rollup_for(config, self.resolver, domain, vmta)

    @staticmethod
    def _reroute(config, queue_name, vmta):
        """§3.3.10.49: the vMTA the queue's mail is rerouted to, or None. A pool is not a target ("A reroute to
        a VirtualMTA pool is not supported"); "" clears an inherited value. One hop: the target's own reroute is
        not followed, so two vMTAs naming each other cannot loop."""
        target = routing.domain_settings(config, queue_name, vmta).get("reroute-to-virtual-mta", "").strip('"')
        if not target or target == vmta or target not in config.vmtas:
            return None
        return target

    def _move_rerouted(self, config):
        """After a reload, mail already queued for a vMTA that now reroutes goes to the target's queue."""
        for queue in list(self.queues.values()):
            target = self._reroute(config, queue.name, queue.vmta) if queue.recipients else None
            if not target:
                continue
            dest = self.queues.get((queue.name, target))
            if dest is None:
                dest = self.queues[(queue.name, target)] = Queue(queue.name, target)
            for recipient in queue.recipients:
                recipient.vmta, recipient.pool = target, config.pool_of(target)
                dest.recipients.append(recipient)
            queue.recipients = []

    def _cold_vmta(self, config, warm, queue_name):
        """§10.7: the first max-cold-virtual-mta-msg per day per queue of a warm vMTA go cold."""
        vmta = config.vmtas.get(warm)
        if vmta is None or not vmta.cold:
            return None  # "no re-selection takes place" without cold-virtual-mta
        settings = routing.domain_settings(config, queue_name, warm)
        limits = values.daily_limits(settings.get("max-cold-virtual-mta-msg", "0/d"))
        today = CLOCK.day()
        first = self.cold_first_day.setdefault((warm, queue_name), today)
        limit = limits[min(today - first, len(limits) - 1)]
        day, count = self.cold_counts.get((warm, queue_name), (today, 0))
        if day != today:
            count = 0
        if count >= limit:
            return None
        self.cold_counts[(warm, queue_name)] = (today, count + 1)
        index = self.cold_rr[warm]
        self.cold_rr[warm] += 1
        return vmta.cold[index % len(vmta.cold)]

    def sources(self, vmta_name):
        """[(ip, hostname)]: the vMTA's smtp-source-host lines, else the global ones (§3.3.1.16)."""
        config = self.state.config
        vmta = config.vmtas.get(vmta_name)
        return vmta.source_hosts if vmta is not None and vmta.source_hosts else config.source_hosts

    def enabled_sources(self, queue, now=None):
        """The sources not disabled for this queue; with no source line at all, the OS's address (one entry)."""
        from .commands import disabled_for

        sources = self.sources(queue.vmta) or [("", "")]
        disabled = disabled_for(self, queue.key, now)
        return [source for source in sources if source[0] not in disabled]

    def next_source(self, vmta):
        with self.lock:
            self.source_rr[vmta] += 1
            return self.source_rr[vmta] - 1

    # -- scheduling ----------------------------------------------------
    def run(self):
        while not self.stop.wait(TICK):
            try:
                self.tick()
            except Exception as exc:  # keep the daemon alive, but say why
                self.state.log("scheduler error: %r" % exc)

    def settings(self, queue):
        return routing.domain_settings(self.state.config, queue.name, queue.vmta)

    def tick(self):
        from .delivery import Session

        config = self.state.config
        now = CLOCK.now()
        with self.lock:
            for queue in list(self.queues.values()):
                settings = self.settings(queue)
                self._expire(queue, settings, now)
                self._maybe_normal(queue, settings, now)
                if not queue.recipients or queue.paused or now < queue.retry_at or now < queue.disabled_until:
                    continue
                if not self.enabled_sources(queue, now):
                    continue  # every source IP of the vMTA is disabled for this queue (§6.3.33)
                backoff = queue.mode == "backoff"
                limit = values.integer(settings["backoff-max-smtp-out" if backoff else "max-smtp-out"])
                vmta = config.vmtas.get(queue.vmta)
                vmta_limit = values.integer(vmta.settings.get("max-smtp-out", "0")) if vmta else 0
                pool = config.pools.get(config.pool_of(queue.vmta))
                pool_limit = values.integer(pool.settings.get("max-smtp-out", "0")) if pool else 0
                total = sum(self.vmta_active.values())
                while queue.active < max(limit, 1) and (not vmta_limit or self.vmta_active[queue.vmta] < vmta_limit) \
                        and (not pool_limit or sum(self.vmta_active[m] for m in pool.members) < pool_limit) \
                        and (not config.total_max_smtp_out or total < config.total_max_smtp_out):
                    if not self._connect_allowed(queue, settings, now):
                        break
                    batch = self._batch(queue, settings, now)
                    if not batch:
                        break
                    queue.connect_rate.allow(self._connect_rate(queue, settings), now)
                    queue.active += 1
                    self.vmta_active[queue.vmta] += 1
                    total += 1
                    threading.Thread(target=self._deliver, args=(Session(self, queue, settings, batch),),
                                     daemon=True).start()

    @staticmethod
    def _connect_rate(queue, settings):
        """max-connect-rate (backoff-max-connect-rate in backoff), §3.3.10."""
        key = "backoff-max-connect-rate" if queue.mode == "backoff" and "backoff-max-connect-rate" in settings \
            else "max-connect-rate"
        return values.rate(settings.get(key, "unlimited"))

    def _connect_allowed(self, queue, settings, now):
        return queue.connect_rate.allow(self._connect_rate(queue, settings), now, take=False)

    def _batch(self, queue, settings, now):
        """Ready recipients for one connection: one route, up to max-msg-per-connection messages."""
        ready = [r for r in queue.recipients if r.next_attempt <= now and not getattr(r, "taken", False)]
        if not ready:
            return []
        route = ready[0].domain if ready[0].by_ip else None
        per_connection = values.unlimited_or_int(settings.get("max-msg-per-connection", "0"))
        batch, messages = [], []
        for recipient in ready:
            if route is not None and recipient.domain != route:
                continue
            if recipient.message.id not in messages:
                if per_connection and len(messages) >= per_connection:
                    continue
                # The rate is taken per message when it is handed to a connection.
                if not self.rate_allows(queue, settings, now):
                    break
                messages.append(recipient.message.id)
            recipient.taken = True
            batch.append(recipient)
        return batch

    def rate_allows(self, queue, settings, now, take=True):
        """Queue rate (max-msg-rate / backoff-max-msg-rate) and vMTA max-smtp-msg-rate (§3.3.12)."""
        key = "backoff-max-msg-rate" if queue.mode == "backoff" and "backoff-max-msg-rate" in settings \
            else "max-msg-rate"
        queue_rate = values.rate(settings.get(key, "unlimited"))
        config = self.state.config
        vmta = config.vmtas.get(queue.vmta)
        vmta_rate = values.rate(vmta.settings.get("max-smtp-msg-rate", "unlimited")) if vmta else None
        pool = config.pools.get(config.pool_of(queue.vmta))
        pool_rate = values.rate(pool.settings.get("max-smtp-msg-rate", "unlimited")) if pool else None
        windows = [(queue.rate, queue_rate), (self.vmta_rates[queue.vmta], vmta_rate)]
        if pool is not None:
            windows.append((self.vmta_rates["pool:" + pool.name], pool_rate))  # §3.3.13.5, across members
        with self.lock:
            if not all(window.allow(spec, now, take=False) for window, spec in windows):
                return False
            if take:
                for window, spec in windows:
                    window.allow(spec, now)
        return True

    def _deliver(self, session):
        try:
            session.run()
        except Exception as exc:
            self.state.log("delivery error on %s: %r" % (session.queue.key, exc))
            session.transient_all("4.0.0 (internal error)", "smtp;451 4.3.0 test double error: %r" % exc, "")
        finally:
            with self.lock:
                for recipient in session.batch:
                    recipient.taken = False
                session.queue.active -= 1
                self.vmta_active[session.queue.vmta] -= 1

    def _expire(self, queue, settings, now):
        """bounce-after (§3.3.10.11): recipients older than it bounce as message-expired."""
        limit = values.interval(settings.get("bounce-after", "4d12h"))
        expired = [r for r in queue.recipients if not getattr(r, "taken", False)
                   and now - r.message.received >= limit]
        for recipient in expired:
            status, diag, mta = recipient.last_error
            self.finish(queue, recipient, "b", "4.4.7 (delivery time expired)", diag or "smtp;554 5.4.7 expired",
                        mta, "", "", "", "message-expired")

    def _maybe_normal(self, queue, settings, now):
        """backoff-to-normal-after (§3.3.10; a reply pattern's backoff-to-normal-after=T wins)."""
        if queue.mode != "backoff":
            return
        after = queue.backoff_to_normal_after
        if after is None:
            text = settings.get("backoff-to-normal-after", "never").lower()
            after = None if text == "never" else values.interval(text)
        if after is not None and now - queue.backoff_since >= after:
            self.set_mode(queue, "normal")

    def set_mode(self, queue, mode):
        if queue.mode != mode:
            queue.mode = mode
            queue.backoff_since = CLOCK.now()
            self.state.log("queue %s: mode %s" % (queue.key, mode))

    # -- outcomes ------------------------------------------------------
    def finish(self, queue, recipient, record, status, diag, mta, source_ip, dest_ip, esmtp, category=""):
        """Write a d or b record and drop the recipient from its queue."""
        with self.lock:
            if recipient in queue.recipients:
                queue.recipients.remove(recipient)
            self.spool.done(recipient)
            if record == "d":
                queue.delivered += 1
                if queue.mode == "backoff" and values.boolean(
                        self.settings(queue).get("backoff-to-normal-after-delivery"), False):
                    self.set_mode(queue, "normal")
                self.state.count_out(1, len(recipient.message.data))
        acct.write(self.state.config.acct_files, record, [self.row(queue, recipient, record, status, diag, mta,
                                                                   source_ip, dest_ip, esmtp, category)])
        if record == "b" and dsn.wanted(recipient.message, self.settings(queue)):
            self.local_dsn(recipient, status, diag, mta)

    def local_dsn(self, recipient, status, diag, mta):
        """PowerMTA's DSN to the originator (dsn.py), queued like any mail to its domain ({default} vMTA)."""
        original = recipient.message
        data = dsn.build(self.state.config.host_name, original, recipient.rcpt, recipient.orcpt, status, diag, mta,
                         full=getattr(original, "dsn_full", False))
        report = Message("", original.envid, data, CLOCK.now(), "local", "", original.job_id)
        report.local_dsn = False
        try:
            placed = self.enqueue(report, [Recipient(report, original.orig, "", "", "")])
        except OSError as exc:  # no spool can take it (spool.py): the DSN is lost, as the log says
            self.state.log("DSN for %s to %s not queued: %s" % (recipient.rcpt, original.orig, exc))
            return
        self.state.log("DSN for %s (%s) to %s queued on %s" % (recipient.rcpt, status, original.orig,
                                                               ", ".join(q for _r, q in placed)))

    def transient(self, queue, recipient, status, diag, mta, source_ip="", dest_ip="", esmtp=""):
        """Retry later (retry-after / backoff-retry-after list, §10.15) and write a t record."""
        settings = self.settings(queue)
        key = "backoff-retry-after" if queue.mode == "backoff" else "retry-after"
        intervals = values.interval_list(settings.get(key, "10m"))
        with self.lock:
            recipient.attempts += 1
            recipient.next_attempt = CLOCK.now() + intervals[min(recipient.attempts - 1, len(intervals) - 1)]
            recipient.last_error = (status, diag, mta)
            queue.last_error = diag
        if acct.wants(self.state.config.acct_files, "t"):
            acct.write(self.state.config.acct_files, "t", [self.row(queue, recipient, "t", status, diag, mta,
                                                                    source_ip, dest_ip, esmtp)])

    def queue_transient(self, queue, status, diag, mta, source_ip, dest_ip):
        if acct.wants(self.state.config.acct_files, "tq"):
            acct.write(self.state.config.acct_files, "tq", [{
                "timeLogged": acct.iso_time(), "queue": queue.key, "vmta": queue.vmta, "dsnStatus": status,
                "dsnDiag": diag, "dsnMta": mta, "dlvType": "smtp", "dlvSourceIp": source_ip,
                "dlvDestinationIp": dest_ip}])

    def row(self, queue, recipient, record, status, diag, mta, source_ip, dest_ip, esmtp, category=""):
        message = recipient.message
        action = {"d": "relayed", "b": "failed", "t": "delayed"}[record]
        return {
            "timeLogged": acct.iso_time(), "timeQueued": acct.iso_time(message.received), "orig": message.orig,
            "rcpt": recipient.rcpt, "orcpt": recipient.orcpt, "dsnAction": action, "dsnStatus": status,
            "dsnDiag": diag, "dsnMta": mta, "bounceCat": category, "srcType": message.src_type,
            "srcMta": message.src_mta, "dlvType": "smtp", "dlvSourceIp": source_ip, "dlvDestinationIp": dest_ip,
            "dlvEsmtpAvailable": esmtp, "dlvSize": str(len(message.data)), "vmta": queue.vmta,
            "jobId": message.job_id, "envId": message.envid, "queue": queue.key, "vmtaPool": recipient.pool,
        }

    # -- status --------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return [{"name": q.key, "domain": q.name, "vmta": q.vmta, "rcp": len(q.recipients), "mode": q.mode,
                     "conn": q.active, "delivered": q.delivered, "lastError": q.last_error, "paused": q.paused,
                     "kb": round(q.kilobytes(), 1),
                     "retry": min((r.next_attempt for r in q.recipients), default=0.0)}
                    for q in sorted(self.queues.values(), key=lambda q: q.key)]

    def shutdown(self):
        self.stop.set()
        deadline = time.monotonic() + 5
        while any(q.active for q in self.queues.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
