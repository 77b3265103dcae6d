"""Baseline figures as 16-bit codes: log-quantised, order-preserving, with a bounded relative
error, so a window of 2,000 samples holds its values in 4 KB instead of 16 KB.

Why a log scale: the rule compares ratios and deviations relative to the median, so the error
that matters is relative. 65,535 levels spread evenly in log between `LOW` (~0.001) and `HIGH`
(~1.07e9) — the range latencies in ms, byte sizes, counts and depths take — put every decoded
value within `EPSILON` (2.1e-4) of the value it stands for. Code 0 is an exact zero (a queue
that drops to empty must stay exactly zero). A value outside the range (negative, below `LOW`,
above `HIGH`) has no code: its window keeps plain doubles instead (`daemon.engine.window`).

The mapping is monotonic, so sorted codes are sorted values and the k-th smallest code is the
code of the k-th smallest value: the median of a coded window is the coded median.
"""

from __future__ import annotations

import math
from array import array

LOW = 2.0**-10
HIGH = 2.0**30
LEVELS = 65535
"""Codes 1..65535 for positive values; 0 for zero."""
_LN_LOW = math.log(LOW)
STEP = (math.log(HIGH) - _LN_LOW) / (LEVELS - 1)
"""Width of one level in natural log (4.2e-4)."""
EPSILON = math.expm1(STEP / 2)
"""Largest relative error of a decoded value: half a level (2.1e-4)."""

TABLE = array("d", [0.0] + [math.exp(_LN_LOW + (c - 1) * STEP) for c in range(1, LEVELS + 1)])
"""Decoded value of every code (512 KB once per process, not per window)."""


def encode(x: float) -> int | None:
    """The code of `x`, or None when it has none (negative, or outside LOW..HIGH)."""
    if x == 0:
        return 0
    if not LOW <= x <= HIGH:
        return None
    return 1 + round((math.log(x) - _LN_LOW) / STEP)


def decode(code: int) -> float:
    return TABLE[code]
