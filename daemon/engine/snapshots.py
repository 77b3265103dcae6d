"""A check's baseline windows as one snapshot: bytes the daemon stores at a clean stop and
hourly (`daemon.store.snapshots`), so a restart restores windows instead of re-reading and
re-parsing ~2,000 stored results a check (38-54 ms a check: minutes at 10,000 checks).

One snapshot a check, not a window: what a snapshot covers is per check (every result of the
check up to `covers` was given to its windows), so the results to feed after a restore are one
indexed read of the check's results after that time. Pure functions: no I/O here.

Layout: a version byte, the number of windows, then per window its subject (absent or UTF-8),
metric and `daemon.engine.window.dump` bytes (which carry their own version, configuration and
checksum). Anything that does not parse is a `SnapshotError`: the caller rebuilds from results.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from daemon.engine.window import SnapshotError, Window, dump, load

FORMAT = 1
_COUNT = struct.Struct("<BI")
_TEXT = struct.Struct("<i")
"""Length of a text field; -1 for an absent subject."""
_BLOB = struct.Struct("<I")

Figure = tuple[str | None, str]
"""(subject, metric): one window of a check."""
Snapshot = tuple[str, datetime, bytes]
"""(check, covers, bytes): a check's windows as `pack` wrote them, and the start time of the
newest of its results they were given (what a restore need not read again)."""
Restored = tuple[datetime, dict[Figure, Window]]
"""What a snapshot covers, and its windows."""
ReadSnapshots = Callable[[Sequence[str]], Mapping[str, tuple[datetime, bytes]]]
"""The stored snapshots of some checks: check → (covers, bytes)."""


def pack(windows: Mapping[Figure, Window]) -> bytes:
    """Every window of one check, as bytes `unpack` restores."""
    parts = [_COUNT.pack(FORMAT, len(windows))]
    for (subject, metric), window in windows.items():
        parts.append(_text(subject))
        parts.append(_text(metric))
        data = dump(window)
        parts.append(_BLOB.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def unpack(data: bytes, capacity: int, tick_s: float) -> dict[Figure, Window]:
    """The windows `pack` wrote, if every one fits this configuration; else SnapshotError
    (one bad window refuses the whole check: it is rebuilt from results together)."""
    view = memoryview(data)
    try:
        version, count = _COUNT.unpack_from(view)
        if version != FORMAT:
            raise SnapshotError(f"snapshot format {version}, this release reads {FORMAT}")
        offset = _COUNT.size
        windows: dict[Figure, Window] = {}
        for _ in range(count):
            subject, offset = _read_text(view, offset)
            metric, offset = _read_text(view, offset)
            if metric is None:
                raise SnapshotError("a window without a metric")
            (size,) = _BLOB.unpack_from(view, offset)
            offset += _BLOB.size
            if offset + size > len(view):
                raise SnapshotError("truncated snapshot")
            windows[(subject, metric)] = load(bytes(view[offset : offset + size]), capacity, tick_s)
            offset += size
    except (struct.error, UnicodeDecodeError) as exc:
        raise SnapshotError(f"unreadable snapshot ({exc})") from None
    if offset != len(view):
        raise SnapshotError("trailing bytes after the snapshot's windows")
    return windows


def restorable(
    stored: Mapping[str, tuple[datetime, bytes]], capacity: int, tick_s: float
) -> tuple[dict[str, Restored], dict[str, str]]:
    """The stored snapshots this configuration can use, and why each other one cannot."""
    usable: dict[str, Restored] = {}
    refused: dict[str, str] = {}
    for check, (covers, data) in stored.items():
        try:
            usable[check] = (covers, unpack(data, capacity, tick_s))
        except SnapshotError as exc:
            refused[check] = str(exc)
    return usable, refused


def _text(value: str | None) -> bytes:
    if value is None:
        return _TEXT.pack(-1)
    raw = value.encode()
    return _TEXT.pack(len(raw)) + raw


def _read_text(view: memoryview, offset: int) -> tuple[str | None, int]:
    (size,) = _TEXT.unpack_from(view, offset)
    offset += _TEXT.size
    if size < 0:
        return None, offset
    if offset + size > len(view):
        raise SnapshotError("truncated snapshot")
    return bytes(view[offset : offset + size]).decode(), offset + size
