"""One baseline window in fixed, small memory: its samples as 16-bit codes (`daemon.engine.codes`)
in arrival order and sorted, and their times as counts per time tick, so a full window of 2,000
samples holds about 9 KB and judging reads O(log n) slots.

Why this shape: exact flags need every value and every sample's age; at 2,000 samples by 25,000
windows (10,000 checks) that alone is 1.2 GB as doubles. Here a value costs 2 B twice (its code
in arrival order, to evict the oldest, and in the sorted companion, for the median and MAD), and
time costs a few bytes per tick of `window / TICKS` (one tick holds every sample started in it),
not 8 B a sample.

What it costs in exactness, bounded and tested against the exact computation:
- values: each decoded value is within `codes.EPSILON` (2.1e-4) relative of the real one, so the
  median is too, and the MAD is within EPSILON·MAD + 2·EPSILON·median (each deviation moves by at
  most EPSILON·(x + m) and order statistics follow a monotone bound);
- age: a sample is dropped once its whole tick is older than the cutoff: never early, at most one
  tick (window / 1024: 9.8 min of a 7-day window) late. Times aligned on tick boundaries (a
  window of 1024 minutes and samples on the minute) age out exactly.
A window that sees a value without a code (negative, or beyond the code range) switches to plain
doubles for good (`exact`): such metrics are rare, and exact windows stay correct.
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from bisect import bisect_left, insort
from collections.abc import Sequence
from itertools import accumulate, groupby
from typing import Any

from daemon.engine.codes import TABLE, encode

TICKS = 1024
"""Time ticks a window's span is cut into: the resolution of ageing."""
_INF = float("inf")
_MAX_RUN = 65535


class Window:
    """At most `capacity` samples, oldest evicted first; times are POSIX seconds, `tick_s` the
    width of one age tick (the time window / `TICKS`)."""

    __slots__ = (
        "_base",
        "_counts",
        "_head",
        "_sorted",
        "_ticks",
        "_values",
        "capacity",
        "tick_s",
    )

    def __init__(self, capacity: int, tick_s: float) -> None:
        if capacity < 1:
            raise ValueError("a window holds at least one sample")
        if not tick_s > 0:
            raise ValueError("a window's tick is a positive number of seconds")
        self.capacity = capacity
        self.tick_s = tick_s
        self._values: array[Any] = array("H")
        """Codes (or doubles once exact) in arrival order, a ring once full: oldest at `_head`."""
        self._sorted: array[Any] = array("H")
        self._head = 0
        self._base = 0
        """Tick number of the first sample stamped into an empty window: `_ticks` count from it."""
        self._ticks = array("I")
        """Tick numbers (time // tick_s - _base), oldest first, one per run of samples in that
        tick (32 bits: 4 billion ticks is 8 years of a one-minute window)."""
        self._counts = array("H")
        """Samples in each run, parallel to `_ticks`."""

    @classmethod
    def of(
        cls, values: Sequence[float], times: Sequence[float], capacity: int, tick_s: float
    ) -> Window:
        """A window holding the last `capacity` of `values` (oldest first), at `times`: one
        sort instead of an insertion per sample."""
        if len(values) != len(times):
            raise ValueError("values and times differ in length")
        window = cls(capacity, tick_s)
        values, times = values[-capacity:], times[-capacity:]
        found = [encode(v) for v in values]
        if None in found:
            window._values = array("d", values)
        else:
            window._values = array("H", found)  # no None left
        window._sorted = array(window._values.typecode, sorted(window._values))
        if times:  # runs of equal ticks at once (as `_stamp` would make them, one by one)
            ticks = [math.floor(at / tick_s) for at in times]
            window._base = ticks[0]
            for tick, run in groupby(accumulate(ticks, max)):  # an older one joins the run
                count = sum(1 for _ in run)
                while count > 0:
                    window._ticks.append(max(tick - window._base, 0))
                    window._counts.append(min(count, _MAX_RUN))
                    count -= _MAX_RUN
        return window

    @property
    def exact(self) -> bool:
        """Whether the window holds plain doubles (a value had no code)."""
        return self._values.typecode == "d"

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: float, at: float) -> None:
        item: float | None = value if self.exact else encode(value)
        if item is None:
            self._promote()
            item = value
        if len(self._values) < self.capacity:
            self._values.append(item)  # int code or float per typecode
            insort(self._sorted, item)
            if len(self._values) == self.capacity:  # full for good: drop the growth slack
                self._values = array(self._values.typecode, self._values)
                self._sorted = array(self._sorted.typecode, self._sorted)
        else:
            head = self._head
            self._discard(self._values[head])
            self._values[head] = item
            self._head = (head + 1) % self.capacity
            self._unstamp(1)
            insort(self._sorted, item)
        self._stamp(at)

    def prune(self, limit: float) -> None:
        """Drop the samples whose whole tick is older than `limit` (POSIX seconds)."""
        ticks, tick_s, drop = self._ticks, self.tick_s, 0
        runs = 0
        last = math.floor(limit / tick_s) - self._base  # ticks before it ended by `limit`
        while runs < len(ticks) and ticks[runs] < last:
            drop += self._counts[runs]
            runs += 1
        if drop:
            self._pop_oldest(drop)

    def values(self) -> list[float]:
        """The samples as the window holds them (decoded), oldest first."""
        head = self._head
        raw = list(self._values[head:]) + list(self._values[:head])
        return [float(v) for v in raw] if self.exact else [TABLE[c] for c in raw]

    def oldest_tick(self) -> float:
        """Start (POSIX seconds) of the oldest sample's tick; the window must not be empty."""
        return (self._ticks[0] + self._base) * self.tick_s

    def median(self) -> float:
        """`statistics.median` of the samples as held (the window must not be empty)."""
        index, table = self._lookup()
        n = len(index)
        i = n // 2
        return table[index[i]] if n % 2 else (table[index[i - 1]] + table[index[i]]) / 2

    def mad(self, median: float) -> float:
        """`statistics.median(abs(x - median) for x in samples)`, without sorting them."""
        index, table = self._lookup()
        n = len(index)
        split = bisect_left(index, median, key=table.__getitem__)  # below: < median
        if n % 2:
            return _deviations(index, table, split, median, n // 2)[0]
        low, high = _deviations(index, table, split, median, n // 2 - 1)
        return (low + high) / 2

    def _lookup(self) -> tuple[Sequence[int], array[float]]:
        """The sorted samples as (index, table): the i-th smallest is `table[index[i]]`. Codes
        and the decoding table, or for an exact window positions and the doubles themselves:
        two C subscripts either way, no Python call per probe."""
        if self.exact:
            return range(len(self._sorted)), self._sorted
        return self._sorted, TABLE

    def nbytes(self) -> int:
        """Bytes the samples occupy (the arrays' buffers)."""
        arrays = (self._values, self._sorted, self._ticks, self._counts)
        return sum(a.buffer_info()[1] * a.itemsize for a in arrays)

    def _promote(self) -> None:
        self._values = array("d", (TABLE[c] for c in self._values))
        self._sorted = array("d", (TABLE[c] for c in self._sorted))

    def _stamp(self, at: float) -> None:
        ticks = self._ticks
        if not ticks:  # (re)based whenever empty
            self._base = math.floor(at / self.tick_s)
        tick = max(math.floor(at / self.tick_s) - self._base, 0)
        # A sample older than the newest run joins it: it then ages out late, never early.
        if ticks and tick <= ticks[-1] and self._counts[-1] < _MAX_RUN:
            self._counts[-1] += 1
        else:
            ticks.append(max(tick, ticks[-1]) if ticks else tick)
            self._counts.append(1)

    def _unstamp(self, count: int) -> None:
        """Forget the times of the `count` oldest samples."""
        counts, runs = self._counts, 0
        while count:
            if counts[runs] > count:
                counts[runs] -= count
                break
            count -= counts[runs]
            runs += 1
        if runs:
            del counts[:runs]
            del self._ticks[:runs]

    def _pop_oldest(self, count: int) -> None:
        """Drop the `count` oldest samples (aged out of the window's span)."""
        values, head = self._values, self._head
        ordered = values[head:] + values[:head] if head else values
        for item in ordered[:count]:
            self._discard(item)
        self._values = ordered[count:]
        self._head = 0
        self._unstamp(count)

    def _discard(self, item: float) -> None:
        data = self._sorted
        del data[bisect_left(data, item)]  # any equal code or double is the same sample's


def _deviations(
    index: Sequence[int], table: array[float], split: int, m: float, k: int
) -> tuple[float, float]:
    """The k-th and (k+1)-th smallest (0-based) of |x - m| over the sorted values x(i) =
    table[index[i]], split at `split` into values below m (deviations m - x(split-1-j), rising
    with j) and at or above it (x(split+j) - m, rising with j): a partition search over two
    sorted runs for how many of the k+1 smallest come from the lower run. (k+1)-th is +inf
    when there is none."""
    below, above = split, len(index) - split
    take = k + 1
    lo, hi = max(0, take - above), min(take, below)
    while lo < hi:
        i = (lo + hi) // 2  # i from the lower run, take - i from the upper one
        # lower run's i-th (i < below) against the upper run's (take-i-1)-th (< above)
        if m - table[index[split - 1 - i]] < table[index[split + take - i - 1]] - m:
            lo = i + 1
        else:
            hi = i
    i, j = lo, take - lo
    last_low = m - table[index[split - i]] if i > 0 else -_INF
    last_high = table[index[split + j - 1]] - m if j > 0 else -_INF
    next_low = m - table[index[split - 1 - i]] if i < below else _INF
    next_high = table[index[split + j]] - m if j < above else _INF
    return max(last_low, last_high), min(next_low, next_high)


# -- snapshots: a window as bytes and back, exactly -------------------------------------------

FORMAT = 1
"""Version byte of `dump`'s bytes. Bump it whenever the layout or `daemon.engine.codes`' scale
changes: `load` refuses any other version, and the caller rebuilds the window from results."""
_HEAD = struct.Struct("<BBIdqIII")
"""version, kind (0 codes, 1 doubles), capacity, tick_s, base tick, samples, runs, CRC-32."""
_KINDS = {"H": 0, "d": 1}


class SnapshotError(ValueError):
    """Bytes that are not a window this code can restore: corrupt, truncated, of another
    format version, or of another window configuration (capacity, tick)."""


def dump(window: Window) -> bytes:
    """The window as bytes: samples oldest first (the ring unrolled) and sorted, tick runs and
    counts, base tick, and whether it holds codes or plain doubles. Little-endian, with a
    CRC-32 of the payload so a damaged row is refused rather than restored wrong."""
    head = window._head
    values = window._values[head:] + window._values[:head] if head else window._values
    payload = b"".join(_le(a) for a in (values, window._sorted, window._ticks, window._counts))
    kind = _KINDS[values.typecode]
    return (
        _HEAD.pack(
            FORMAT,
            kind,
            window.capacity,
            window.tick_s,
            window._base,
            len(values),
            len(window._ticks),
            zlib.crc32(payload),
        )
        + payload
    )


def load(data: bytes, capacity: int, tick_s: float) -> Window:
    """The window `dump` wrote, exactly, if it was written for this `capacity` and `tick_s`
    (a window of another length has other ticks: it must be rebuilt); else SnapshotError."""
    if len(data) < _HEAD.size:
        raise SnapshotError("truncated window header")
    version, kind, cap, tick, base, n, runs, crc = _HEAD.unpack_from(data)
    if version != FORMAT:
        raise SnapshotError(f"window format {version}, this release reads {FORMAT}")
    if cap != capacity or tick != tick_s:
        raise SnapshotError("window configuration changed (capacity or length)")
    if kind not in (0, 1) or n > capacity:
        raise SnapshotError("inconsistent window header")
    typecode = "H" if kind == 0 else "d"
    size = array(typecode).itemsize
    payload = memoryview(data)[_HEAD.size :]
    if len(payload) != 2 * n * size + runs * 6 or zlib.crc32(payload) != crc:
        raise SnapshotError("window bytes damaged (length or checksum)")
    parts, offset = [], 0
    for code, count in ((typecode, n), (typecode, n), ("I", runs), ("H", runs)):
        part = array(code)
        end = offset + count * part.itemsize
        part.frombytes(payload[offset:end])
        if sys.byteorder == "big":
            part.byteswap()
        parts.append(part)
        offset = end
    if sum(parts[3]) != n:
        raise SnapshotError("window tick counts do not add up to its samples")
    window = Window(capacity, tick_s)
    window._values, window._sorted, window._ticks, window._counts = parts
    window._base = base
    return window


def _le(a: array[Any]) -> bytes:
    """An array's items as little-endian bytes, whatever this machine's byte order."""
    if sys.byteorder == "big":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()
