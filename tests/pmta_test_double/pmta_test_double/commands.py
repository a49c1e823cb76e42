# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TEST DOUBLE — not PowerMTA: the queue commands of ``pmta`` (v5.0 User's Guide §6.3), daemon side.

Its own reading of the guide, not the collection's code:
- ``pause queue domain[/vmta]`` (§6.3.23) "prevents them from being delivered until they are resumed": matching
  queues stop (their mail stays); an exact name whose queue does not exist yet is created paused, so mail that
  arrives for it waits too. An exact name of an unknown vMTA is an error.
- ``resume queue`` (§6.3.25): matching queues deliver again.
- ``schedule [--retry-recipients] domain/vmta`` (§6.3.10): matching queues' recipients are due now, instead of
  at their retry-after time ("the normal retry interval should be bypassed"); prints
  ``N of M matching queues scheduled.`` (N: queues with recipients, not paused).
- ``delete --queue=|--jobId=|--orig=|--rcpt=|--envId=|--older-than=`` (§6.3.22): needs --queue or --jobId; the
  recipients go, each with a ``b`` accounting record "deleted by administrator" unless --no-accounting.
- ``disable source [--reenable-after=T] ip domain[/vmta]`` (§6.3.33): that IP is not used for those queues (a
  vMTA with no other source IP does not deliver them) until ``enable source ip domain[/vmta]`` (§6.3.34) or T.
- ``show disabled sources [domain[/vmta]]`` (§6.3.35): the guide shows no output; the double prints one line per
  entry: ``IP QUEUE-PATTERN REENABLE`` (``never`` or the UTC time).
An omitted ``/vmta`` matches every vMTA (as for ``show queues``, §6.3.13).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import time

from . import acct, values
from .clock import CLOCK


def split(pattern):
    domain, _slash, vmta = pattern.partition("/")
    return domain.lower(), vmta or "*"


def matches(pattern, key):
    p_domain, p_vmta = split(pattern)
    q_domain, q_vmta = split(key)
    return fnmatch.fnmatchcase(q_domain, p_domain) and fnmatch.fnmatchcase(q_vmta, p_vmta)


def _exact(pattern):
    domain, vmta = split(pattern)
    return "/" in pattern and "*" not in domain and "*" not in vmta


def _check_pattern(pattern):
    if not pattern or pattern.count("/") > 1 or any(c.isspace() for c in pattern):
        raise ValueError("invalid queue name %r: expected domain[/vmta]" % pattern)


def pause(outbound, pattern, paused):
    """Pause or resume the matching queues; returns how many."""
    from .queues import Queue

    _check_pattern(pattern)
    with outbound.lock:
        hits = [q for q in outbound.queues.values() if matches(pattern, q.key)]
        if not hits and paused and _exact(pattern):
            domain, vmta = split(pattern)
            vmta = "" if vmta == "{default}" else vmta
            if vmta and vmta not in outbound.state.config.vmtas:
                raise ValueError("unknown virtual MTA %r" % vmta)
            queue = outbound.queues[(domain, vmta)] = Queue(domain, vmta)
            hits = [queue]
        for queue in hits:
            queue.paused = paused
    outbound.state.log("%s queue %s: %d queue(s)" % ("pause" if paused else "resume", pattern, len(hits)))
    return len(hits)


def schedule(outbound, pattern, retry_recipients=False):
    """Due now; returns (scheduled, matching)."""
    _check_pattern(pattern)
    now = CLOCK.now()
    scheduled = matching = 0
    with outbound.lock:
        for queue in outbound.queues.values():
            if not matches(pattern, queue.key):
                continue
            matching += 1
            if queue.paused or not queue.recipients:
                continue
            scheduled += 1
            queue.retry_at = 0.0
            for recipient in queue.recipients:
                # The double keeps no separate retry bucket: --retry-recipients and plain schedule both make
                # every waiting recipient due.
                recipient.next_attempt = min(recipient.next_attempt, now)
    return scheduled, matching


def delete(outbound, queue_pattern=None, job_id=None, orig=None, rcpt=None, env_id=None, older_than=None,
           accounting=True):
    """Remove matching recipients (not those in a delivery session right now); returns how many."""
    if queue_pattern is None and job_id is None:
        raise ValueError("delete needs --queue or --jobId")
    pattern = queue_pattern or "*/*"
    _check_pattern(pattern)
    limit = values.interval(older_than) if older_than else None
    now = CLOCK.now()
    gone = []
    with outbound.lock:
        for queue in outbound.queues.values():
            if not matches(pattern, queue.key):
                continue
            for recipient in list(queue.recipients):
                message = recipient.message
                if getattr(recipient, "taken", False):
                    continue
                if (job_id is not None and message.job_id != job_id) or (orig is not None and message.orig != orig) \
                        or (rcpt is not None and recipient.rcpt.lower() != rcpt.lower()) \
                        or (env_id is not None and message.envid != env_id) \
                        or (limit is not None and now - message.received < limit):
                    continue
                queue.recipients.remove(recipient)
                outbound.spool.done(recipient)
                gone.append((queue, recipient))
    if accounting and gone:
        rows = [outbound.row(queue, recipient, "b", "5.0.0 (deleted by administrator)",
                             "smtp;550 5.0.0 deleted by administrator", "", "", "", "", "other")
                for queue, recipient in gone]
        acct.write(outbound.state.config.acct_files, "b", rows)
    outbound.state.log("delete %s: %d recipient(s)" % (pattern, len(gone)))
    return len(gone)


def disable_source(outbound, ip, pattern, reenable_after=None):
    ip = str(ipaddress.ip_address(ip))
    _check_pattern(pattern)
    until = CLOCK.now() + values.interval(reenable_after) if reenable_after else float("inf")
    with outbound.lock:
        outbound.disabled_sources[(ip, pattern.lower())] = until
    outbound.state.log("disable source %s for %s until %s" % (ip, pattern, until))
    return 1


def enable_source(outbound, ip, pattern):
    """Removes the entries of IP the pattern covers; returns how many."""
    ip = str(ipaddress.ip_address(ip))
    _check_pattern(pattern)
    with outbound.lock:
        gone = [key for key in outbound.disabled_sources if key[0] == ip and matches(pattern, key[1])]
        for key in gone:
            del outbound.disabled_sources[key]
    return len(gone)


def disabled_for(outbound, queue_key, now=None):
    """IPs disabled for the queue now; expired entries (reenable-after) are dropped."""
    now = CLOCK.now() if now is None else now
    with outbound.lock:
        for key in [k for k, until in outbound.disabled_sources.items() if until <= now]:
            del outbound.disabled_sources[key]
        return {ip for (ip, pattern) in outbound.disabled_sources if matches(pattern, queue_key)}


def disabled_sources(outbound, pattern=None):
    disabled_for(outbound, "")  # drop the expired
    with outbound.lock:
        entries = sorted(outbound.disabled_sources.items())
    lines = []
    for (ip, entry), until in entries:
        if pattern and not matches(pattern, entry) and not matches(entry, pattern):
            continue
        when = "never" if until == float("inf") else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(until))
        lines.append("%s %s %s" % (ip, entry, when))
    return lines
