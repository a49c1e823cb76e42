# Copyright: mailops.powermta contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read only what was appended to accounting files since the last read (a cursor per file).

PRIVATE to the collection: no compatibility promise outside it.
Plain Python, standard library only: it runs on the PowerMTA host.

PowerMTA rotates its accounting files itself (§3.3.11): ``max-size`` starts a
new file (``acct-2026-05-01-0001.csv``, §11.3.1) and ``move-to`` moves the old
one to a directory that must be on the same volume (§3.3.11.2), so a rename
keeps the inode. A file is therefore known by device and inode, with a hash of
its first bytes to notice an inode the file system reused for a new file; its
cursor is the byte offset after the last complete line read, plus the header
line in force there (columns differ per file, §11.2.9). A file that shrank is
read again from the start; a partly written last line waits for the next read;
files that no longer exist drop out of the state. Compressed copies (``.gz``,
never written by PowerMTA) are skipped: they were read while they were plain.
"""

from __future__ import annotations

import hashlib
import io
import os

try:
    from . import acct as _acct
except ImportError:  # loaded by path on the host
    from _warmup import acct as _acct  # type: ignore[no-redef]

HEAD_BYTES = 1024
BLOCK_BYTES = 16 * 1024 * 1024  # memory per read stays flat whatever the file size


def _head_hash(handle, length):
    handle.seek(0)
    return hashlib.sha1(handle.read(length)).hexdigest()  # noqa: S324 - an identity, not a secret


def _blocks(handle, start, end, block_bytes):
    """``(text_lines, bytes)`` of the complete lines between ``start`` and ``end``, in blocks of whole lines."""
    position = start
    handle.seek(start)
    while position < end:
        data = handle.read(min(block_bytes, end - position))
        cut = data.rfind(b"\n")
        while cut < 0 and position + len(data) < end:  # a line longer than a block
            more = handle.read(min(block_bytes, end - position - len(data)))
            if not more:
                break
            data += more
            cut = data.rfind(b"\n")
        if cut < 0:
            return  # only a partly written last line: it waits for the next read
        data = data[: cut + 1]
        position += len(data)
        handle.seek(position)
        # CSV line ends only (str.splitlines would also split at U+2028, \x1c ... inside a field)
        yield io.StringIO(data.decode("utf-8", "replace"), newline="").readlines(), len(data)


def _first_header(handle):
    """The file's first line when it is a header row (a state saved without the header)."""
    handle.seek(0)
    first = handle.readline()
    return first.decode("utf-8", "replace") if first.startswith(b"type,") else None


def tail(files_state, patterns, consume, block_bytes=BLOCK_BYTES, max_bytes=None):
    """Feed the new complete lines of every file matching ``patterns`` to ``consume``.

    ``files_state``: ``{"DEV:INODE": {"path", "offset", "header", "head", "head_len"}}``
    from the previous read (not modified). ``consume(path, lines, header)`` reads
    the list ``lines`` (complete text lines, a block at a time) and returns the
    header line in force at its end. At most ``max_bytes`` per file and call when
    given (a backlog is caught up over several calls). Returns
    ``(new_files_state, summary)``; the caller saves the new state only once what
    it consumed is safe.
    """
    new_state = {}
    summary = {"files": 0, "bytes": 0}
    for path in _acct.expand_paths(patterns):
        if path.endswith(".gz"):
            continue
        try:
            handle = open(path, "rb")
        except OSError:
            continue
        with handle:
            info = os.fstat(handle.fileno())
            file_id = "%d:%d" % (info.st_dev, info.st_ino)
            entry = dict(files_state.get(file_id) or {})
            if entry and (info.st_size < entry.get("offset", 0)
                          or ("head" in entry and _head_hash(handle, entry["head_len"]) != entry["head"])):
                entry = {}  # truncated, or a new file on a reused inode
            entry.setdefault("offset", 0)
            entry.setdefault("header", None)
            entry["path"] = path
            if entry.get("head_len", 0) < HEAD_BYTES and info.st_size > entry.get("head_len", 0):
                entry["head_len"] = min(info.st_size, HEAD_BYTES)
                entry["head"] = _head_hash(handle, entry["head_len"])
            new_state[file_id] = entry
            if info.st_size == entry["offset"]:
                continue
            if entry["offset"] and not entry["header"]:
                entry["header"] = _first_header(handle)
            end = info.st_size if max_bytes is None else min(info.st_size, entry["offset"] + max_bytes)
            for lines, size in _blocks(handle, entry["offset"], end, block_bytes):
                entry["header"] = consume(path, lines, entry["header"])
                entry["offset"] += size
                summary["bytes"] += size
            summary["files"] += 1
    return new_state, summary
