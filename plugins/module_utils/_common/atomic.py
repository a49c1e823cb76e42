# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a file atomically: a reader sees the old or the new content, never a part.

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only (also installed on the hosts by the monitoring role).
"""

from __future__ import annotations

import os
import tempfile


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to a temporary file in the same directory, fsync, chmod, rename over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
