"""One baseline window in fixed, compact memory: its samples as C doubles, in arrival order and
sorted, so the median is an index and the MAD a binary search.

Why this shape: a window of `(datetime, float)` tuples in a deque cost ~104 B a sample and
`statistics.median` re-sorted 2,000 of them twice per figure judged (~0.6 ms). Here a sample
costs 24 B (value, its sorted copy, its start time — three `array('d')`), a new sample is one
`bisect.insort` (a memmove of at most a few KB), and judging reads O(log n) slots.

The figures are bit-for-bit those of `statistics.median` over the same samples: the median is
the same middle element (or the same two averaged), and the MAD is the k-th smallest of the
absolute deviations found by partition search over the two sorted runs of deviations (below and
above the median) instead of sorting them; `m - a` and `abs(a - m)` are the same IEEE double.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Sequence

_INF = float("inf")


class Window:
    """At most `capacity` samples, oldest evicted first; `times` are POSIX seconds (floats:
    distinct microsecond timestamps of this era stay distinct and ordered as doubles)."""

    __slots__ = ("_head", "_sorted", "_times", "_values", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a window holds at least one sample")
        self.capacity = capacity
        self._values = array("d")
        """Arrival order, a ring once full: the oldest sample is at `_head`."""
        self._times = array("d")
        """Parallel to `_values`."""
        self._sorted = array("d")
        self._head = 0

    @classmethod
    def of(cls, values: Sequence[float], times: Sequence[float], capacity: int) -> Window:
        """A window holding the last `capacity` of `values` (oldest first), at `times`: one
        sort instead of an insertion per sample."""
        window = cls(capacity)
        window._values = array("d", values[-capacity:])
        window._times = array("d", times[-capacity:])
        if len(window._values) != len(window._times):
            raise ValueError("values and times differ in length")
        window._sorted = array("d", sorted(window._values))
        return window

    def __len__(self) -> int:
        return len(self._values)

    def add(self, value: float, at: float) -> None:
        if len(self._values) < self.capacity:
            self._values.append(value)
            self._times.append(at)
            if len(self._values) == self.capacity:  # full for good: drop the growth slack
                self._values, self._times = array("d", self._values), array("d", self._times)
                self._sorted = array("d", self._sorted)
        else:
            head = self._head
            self._discard(self._values[head])
            self._values[head] = value
            self._times[head] = at
            self._head = (head + 1) % self.capacity
        insort(self._sorted, value)

    def oldest_time(self) -> float:
        return self._times[self._head]

    def pop_oldest(self) -> None:
        """Drop the oldest sample (aged out of the window's time span)."""
        head = self._head
        self._discard(self._values[head])
        if len(self._values) < self.capacity and head == 0:
            del self._values[0]
            del self._times[0]
            return
        # Unroll the ring into arrival order first: rare (ageing), so O(n) is fine here.
        self._values = self._values[head + 1 :] + self._values[:head]
        self._times = self._times[head + 1 :] + self._times[:head]
        self._head = 0

    def values(self) -> list[float]:
        """The samples, oldest first."""
        head = self._head
        return list(self._values[head:]) + list(self._values[:head])

    def median(self) -> float:
        """`statistics.median` of the samples (the window must not be empty)."""
        data = self._sorted
        n = len(data)
        i = n // 2
        return data[i] if n % 2 else (data[i - 1] + data[i]) / 2

    def mad(self, median: float) -> float:
        """`statistics.median(abs(x - median) for x in samples)`, without sorting them."""
        data = self._sorted
        n = len(data)
        split = bisect_left(data, median)  # data[:split] < median <= data[split:]
        if n % 2:
            return _deviations(data, split, median, n // 2)[0]
        low, high = _deviations(data, split, median, n // 2 - 1)
        return (low + high) / 2

    def nbytes(self) -> int:
        """Bytes the samples occupy (the arrays' buffers; capacity reached = the maximum)."""
        arrays = (self._values, self._times, self._sorted)
        return sum(a.buffer_info()[1] * a.itemsize for a in arrays)

    def _discard(self, value: float) -> None:
        data = self._sorted
        del data[bisect_left(data, value)]  # any equal double is the same sample's double


def _deviations(data: array[float], split: int, m: float, k: int) -> tuple[float, float]:
    """The k-th and (k+1)-th smallest (0-based) of |x - m| over sorted `data`, split at `split`
    into values below m (deviations m - data[split-1-j], rising with j) and at or above it
    (data[split+j] - m, rising with j): a partition search over two sorted runs for how many
    of the k+1 smallest come from the lower run. (k+1)-th is +inf when there is none."""
    below, above = split, len(data) - split
    take = k + 1
    lo, hi = max(0, take - above), min(take, below)
    while lo < hi:
        i = (lo + hi) // 2  # i from the lower run, take - i from the upper one
        # lower run's i-th (i < below) against the upper run's (take-i-1)-th (< above)
        if m - data[split - 1 - i] < data[split + take - i - 1] - m:
            lo = i + 1
        else:
            hi = i
    i, j = lo, take - lo
    last_low = m - data[split - i] if i > 0 else -_INF
    last_high = data[split + j - 1] - m if j > 0 else -_INF
    next_low = m - data[split - 1 - i] if i < below else _INF
    next_high = data[split + j] - m if j < above else _INF
    return max(last_low, last_high), min(next_low, next_high)
