# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Value tokens shared by the value checkers (``values``, ``patterns``).

PRIVATE to the collection: no compatibility promise outside it.
Standard library only (the PowerMTA test double imports this package standalone).
"""

from __future__ import annotations

import re

# TIME-INTERVAL (§3.2): 300s, 10m, 1w2d12h, or plain seconds.
TIME = re.compile(r"(?:\d+[wdhms])+\Z|\d+\Z", re.I)
TIME_HINT = "a TIME-INTERVAL such as 300s, 10m, 1h or 1w2d12h (units w, d, h, m, s)"
# One name: no blanks, no commas.
NAME = re.compile(r"[^\s,]+\Z")


def bad(message, hint=""):
    """A checker's finding: (message, hint)."""
    return (message, hint)
