# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Values that hold a /REGEX/: reply rules (§3.3.15), pattern-list entries (§3.3.14), relay patterns.

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).

Checkers return ``None`` when the value is valid, else ``(message, hint)``,
like those in ``values``.
"""

from __future__ import annotations

import re

from .tokens import NAME as _NAME
from .tokens import TIME as _TIME
from .tokens import TIME_HINT
from .tokens import bad as _bad

# The reply actions §3.3.15 lists, nothing else: flags, and the two that take a value.
_REPLY_FLAGS = frozenset({"skip-mx", "bounce-queue", "bounce-rcpt", "disable-source-ip", "defer-queue"})
_REPLY_ACTIONS_HINT = (
    "§3.3.15 lists mode=normal, mode=backoff, skip-mx, bounce-queue, bounce-rcpt, disable-source-ip, "
    "reenable-after=TIME and defer-queue, comma-separated"
)


def split_regex(value):
    """Split ``/re/ rest`` → (regex, rest), or None when there is no closing slash.

    The pattern ends at the last slash: results and actions never contain one, and
    real patterns do (``and/or``), escaped or not.
    """
    if not value.startswith("/"):
        return None
    end = value.rfind("/")
    if end <= 0:
        return None
    return value[1:end], value[end + 1 :].strip()


def check_regex_words(value, words_after):
    split = split_regex(value)
    if split is None:
        return _bad("expected a /REGEX/", "enclose the pattern in slashes, e.g. /^421 .* too many/")
    if words_after and not split[1]:
        return _bad("argument missing after the pattern", "add the result after /REGEX/")
    return None


def _reply_actions(text):
    """The actions of a reply rule: comma- (or blank-) separated, e.g. ``mode=backoff,skip-mx``."""
    return [item for item in re.split(r"[,\s]+", text) if item]


def check_reply(value):
    """``reply /REGEX/ ACTION-LIST`` with the combinations §3.3.15 does not allow."""
    split = split_regex(value)
    if split is None:
        return _bad("expected reply /REGEX/ ACTIONS", "write e.g. reply /too many connections/ mode=backoff")
    if not split[1]:
        return _bad("no action after the pattern", "add an action such as mode=backoff (§3.3.15)")
    seen = set()
    for action in _reply_actions(split[1]):
        key, equals, argument = action.partition("=")
        key = key.lower()
        if key == "mode":
            if argument.lower() not in ("backoff", "normal"):
                return _bad("invalid mode %r" % action, "use mode=backoff or mode=normal (§3.3.15)")
            if "mode" in seen:
                return _bad(
                    "mode= given twice in one reply rule",
                    "keep one mode=; §3.3.15 does not allow both mode=backoff and mode=normal",
                )
        elif key == "reenable-after":
            if "reenable-after" in seen:
                return _bad("more than one reenable-after in one reply rule", "keep one (§3.3.15)")
            if "disable-source-ip" not in seen:
                return _bad(
                    "reenable-after without a preceding disable-source-ip",
                    "write disable-source-ip,reenable-after=TIME in that order (§3.3.15)",
                )
            if not argument or not (_TIME.match(argument) or argument.lower() == "never"):
                return _bad("invalid time in %r" % action, "write reenable-after=TIME, " + TIME_HINT)
        elif key in _REPLY_FLAGS and not equals:
            if key in seen:
                return _bad("%s given twice in one reply rule" % key, "keep one (§3.3.15)")
        else:
            return _bad("unknown reply action %r" % action, _REPLY_ACTIONS_HINT)
        seen.add(key)
    if "skip-mx" in seen and "bounce-queue" in seen:
        return _bad("both skip-mx and bounce-queue in one reply rule", "keep one of them (§3.3.15)")
    return None


def check_pattern_result(result):
    """A <pattern-list> RESULT (§3.3.14): virtual-mta=NAME and/or recipient-priority=N, comma-separated;
    or call-to:NAME (§3.3.14.4); or ``<pattern-list>`` opening a conditional nested list."""
    if not result:
        return _bad("argument missing after the pattern", "add virtual-mta=NAME, recipient-priority=N or call-to:NAME")
    if result.replace(" ", "").lower() == "<pattern-list>":
        return None
    if result.lower().startswith("call-to:"):
        target = result[8:].strip()
        if not target or len(target.split()) > 1:
            return _bad("call-to needs one pattern list name, got %r" % target, "write call-to:LIST (§3.3.14.4)")
        return None
    seen = set()
    for item in re.split(r"\s*,\s*", result.strip()):
        key, equals, argument = item.partition("=")
        key = key.lower()
        if key == "virtual-mta" and equals and _NAME.match(argument):
            pass
        elif key == "recipient-priority" and equals:
            if not argument.isdigit() or int(argument) > 100:
                return _bad("invalid %r" % item, "recipient-priority is a number from 0 to 100 (§3.3.14)")
        else:
            return _bad(
                "invalid pattern-list result %r" % item,
                "use virtual-mta=NAME, recipient-priority=N (comma-separated) or call-to:LIST (§3.3.14)",
            )
        if key in seen:
            return _bad("%s given twice in one result" % key, "keep one %s= (§3.3.14)" % key)
        seen.add(key)
    return None


def check_pattern_rule(value):
    """``mail-from /REGEX/ RESULT``, ``rcpt-to /REGEX/ RESULT`` (§3.3.14.2, §3.3.14.3)."""
    split = split_regex(value)
    if split is None:
        return _bad("expected a /REGEX/", "enclose the pattern in slashes, e.g. /^newsletter/")
    return check_pattern_result(split[1])


def check_header_rule(value):
    """``header NAME /REGEX/ RESULT`` (§3.3.14.1)."""
    parts = value.split(None, 1)
    if len(parts) < 2:
        return _bad("argument missing", "write header NAME /REGEX/ RESULT")
    return check_pattern_rule(parts[1])


def check_header_pattern(value):
    parts = value.split(None, 1)
    if len(parts) < 2:
        return _bad("argument missing", "write header NAME /REGEX/ RESULT")
    return check_regex_words(parts[1], 1)


def check_email_regex(value):
    """A relay-address given as /REGEX/ (§3.3.1.32.3)."""
    return check_regex_words(value, 0)
