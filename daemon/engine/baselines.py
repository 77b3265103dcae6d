"""Soft anomalies: ok results whose latency or numeric values sit far outside their own history.

Deterministic (median/MAD over a rolling window, no model). It only ever turns an `ok` result
into `degraded`; it never touches a result the rules already judged, and it does no I/O itself.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from daemon.config.settings import BaselineSettings
from daemon.engine.snapshots import Figure, ReadSnapshots, Restored, Snapshot, pack, restorable
from daemon.engine.window import TICKS, Window
from daemon.models import CheckResult

log = structlog.get_logger(__name__)

LATENCY = "latency_ms"
MEDIAN_PREFIX = "baseline_median_"
"""Values added to a result this module degraded; also how such a result is recognised when
history is reloaded from the store."""
TIMES = "\u00d7"
"""The multiplication sign in "6.1x the median"; an escape because ruff flags the literal."""
SWEEP_S = 3600.0
"""How often every window is pruned and empty ones dropped (memory only: a window is always
pruned before it is judged or fed)."""
_MAD_SCALE = 1.4826
"""Makes the MAD comparable to a standard deviation for normally distributed samples."""

Key = tuple[str, str | None, str]
"""(check, subject, metric): one window."""


class Sample(Protocol):
    """What baselines read of a result: a `CheckResult`, or a stored row's figures
    (`daemon.store.results.Figures`) when windows are seeded."""

    @property
    def check(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def values(self) -> Mapping[str, object]: ...


ReadTail = Callable[[str, int, datetime], Sequence[Sample]]
"""A check's latest `limit` stored results started after a time, newest first."""


@dataclass(frozen=True)
class BaselinePolicy:
    window: timedelta = timedelta(days=7)
    max_samples: int = 2000
    min_samples: int = 30
    z_threshold: float = 6.0
    min_ratio: float = 3.0
    min_delta_ms: float = 50.0
    """Latency only: values have no unit to make an absolute floor meaningful."""

    @classmethod
    def from_settings(cls, settings: BaselineSettings) -> BaselinePolicy:
        return cls(
            window=settings.window,
            min_samples=settings.min_samples,
            min_ratio=settings.min_ratio,
            z_threshold=settings.z_threshold,
            min_delta_ms=settings.min_delta_ms,
        )

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("baseline window must be positive, e.g. '7d'")
        if not 1 <= self.min_samples <= self.max_samples:
            raise ValueError("baseline min_samples must be between 1 and max_samples")
        if self.min_ratio < 1 or self.z_threshold <= 0 or self.min_delta_ms < 0:
            raise ValueError("baseline min_ratio must be >= 1, z_threshold > 0, min_delta_ms >= 0")


@dataclass(frozen=True)
class Anomaly:
    """One outlying figure. `ratio` and `z` are magnitudes in the direction of the deviation
    (a value at a third of its median has ratio 3.0); `value < median` tells the direction."""

    check: str
    subject: str | None
    metric: str
    value: float
    median: float
    ratio: float
    z: float
    sentence: str


def figure(result: Sample, metric: str) -> float | None:
    """The finite number `metric` names in `result`, or None (missing, bool, str, NaN)."""
    raw = result.latency_ms if metric == LATENCY else result.values.get(metric)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return float(raw)


def is_duration(metric: str) -> bool:
    """Latency-like figures (`latency_ms`, `connect_ms`…): judged upward only, with the
    `min_delta_ms` floor, so sub-millisecond jitter is never an anomaly."""
    return metric == LATENCY or metric.endswith("_ms")


NOT_MEASUREMENTS = ("_code", "port", "days_left", "threshold", "_id")
"""Numeric values that are identifiers, codes or limits, not measurements: status and exit
codes, ports, certificate days left (a steady countdown the TLS rules already judge)."""


def baselined(metric: str) -> bool:
    return not metric.startswith(MEDIAN_PREFIX) and not metric.endswith(NOT_MEASUREMENTS)


def metrics(result: Sample) -> Iterator[tuple[str, float]]:
    """Every baseline-able figure of a result, each once: latency, then numeric values."""
    for metric in dict.fromkeys((LATENCY, *result.values)):
        if not baselined(metric):
            continue
        value = figure(result, metric)
        if value is not None:
            yield metric, value


def detect(
    result: CheckResult, history: Sequence[float], metric: str, policy: BaselinePolicy
) -> Anomaly | None:
    """Whether `metric` of `result` is an outlier against `history` (earlier ok figures).
    The exact computation over a plain sequence; `Baselines` gets the same figures from its
    compact windows (`daemon.engine.window`)."""
    x = figure(result, metric)
    if x is None or len(history) < policy.min_samples:
        return None
    median = statistics.median(history)
    if median <= 0:
        return None
    mad = statistics.median(abs(h - median) for h in history)
    return verdict(result, metric, x, median, mad, policy)


def verdict(
    result: CheckResult, metric: str, x: float, median: float, mad: float, policy: BaselinePolicy
) -> Anomaly | None:
    """The rule itself, given the window's median and MAD: robust z and ratio both past their
    thresholds, and for durations upward only and past the absolute floor."""
    if median <= 0:
        # Ratios mean nothing around zero or for signed series; such metrics are not judged.
        return None
    # A constant series has MAD 0: floor it so z stays finite and the ratio gate decides.
    floor = max(0.01 * median, 1.0) if is_duration(metric) else 0.01 * median
    z = abs(x - median) / (_MAD_SCALE * max(mad, floor))
    if x >= median:
        ratio = x / median
    elif is_duration(metric):
        return None  # faster than usual is never a problem
    else:
        ratio = median / x if x > 0 else math.inf
    if z < policy.z_threshold or ratio < policy.min_ratio:
        return None
    if is_duration(metric) and x - median < policy.min_delta_ms:
        return None
    return Anomaly(
        check=result.check,
        subject=result.subject,
        metric=metric,
        value=x,
        median=median,
        ratio=ratio,
        z=z,
        sentence=_sentence(metric, x, median, ratio, policy.window),
    )


def _sentence(metric: str, x: float, median: float, ratio: float, window: timedelta) -> str:
    span = _span(window)
    if metric == LATENCY:
        return f"latency {_num(x)} ms is {ratio:.1f}{TIMES} the {span} median {_num(median)} ms"
    if x >= median:
        return f"value {metric} {_num(x)} is {ratio:.1f}{TIMES} the {span} median {_num(median)}"
    if math.isinf(ratio):
        return f"value {metric} {_num(x)} is down from the {span} median {_num(median)}"
    return f"value {metric} {_num(x)} is {ratio:.1f}{TIMES} below the {span} median {_num(median)}"


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            return f"{seconds // size}-{unit}"
    return f"{seconds}-second"


def _num(x: float) -> str:
    if x == int(x) or abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


class Baselines:
    """Rolling windows per (check, subject, metric), fed by results, seeded lazily from the store.

    A result this module degrades still feeds its raw figure to the window: otherwise a
    permanent shift (a new release that is simply slower) would be flagged forever. With it,
    the shift stops being flagged once it dominates the window (z and the median catch up,
    at the latest when it holds half the samples). Memory is bounded: every window is a
    `Window` of at most `max_samples` 16-bit codes (~4.5 B a sample with its times), and windows
    whose newest sample has aged out are dropped. Call `apply` before the cycle's results are
    stored.
    """

    def __init__(
        self,
        policy: BaselinePolicy,
        load: Callable[[str, int], Sequence[Sample]],
        *,
        snapshots: ReadSnapshots | None = None,
        tail: ReadTail | None = None,
    ) -> None:
        self.policy = policy
        self._load = load
        self._snapshots = snapshots if tail is not None else None
        self._tail = tail
        self._covers: dict[str, datetime] = {}
        """Per check, the start of the newest result given to its windows."""
        self._changed: set[str] = set()
        """Checks whose windows took samples since their snapshot was last saved."""
        self._loaded: set[str] = set()
        self._windows: dict[Key, Window] = {}
        self._limit = -math.inf
        """The current cutoff (POSIX seconds): a window is pruned to it when it is read or fed,
        so a cycle costs in proportion to its results, not to every window held."""
        self._swept = -math.inf
        self._tick_s = policy.window.total_seconds() / TICKS

    def apply(
        self, results: list[CheckResult], now: datetime
    ) -> tuple[list[CheckResult], list[Anomaly]]:
        """`results` with ok outliers turned degraded, and the anomalies found. Seeds the
        windows of checks seen for the first time (blocking: see `prepare`)."""
        cutoff = now - self.policy.window
        self._limit = cutoff.timestamp()
        if self._limit - self._swept >= SWEEP_S:  # drop windows of checks gone quiet
            self._prune(cutoff)
            self._swept = self._limit
        self.prepare(results, now)
        out: list[CheckResult] = []
        found: list[Anomaly] = []
        # Each result's figures read once, for judging and feeding alike.
        figured = [(r, list(metrics(r)) if r.status == "ok" else []) for r in results]
        covers = self._covers
        for result in results:
            newest = covers.get(result.check)
            if newest is None or result.started_at > newest:
                covers[result.check] = result.started_at
        for result, figures in figured:
            anomalies = self._judge(result, figures) if figures else []
            found += anomalies
            out.append(_degrade(result, anomalies) if anomalies else result)
        for result, figures in sorted(figured, key=lambda pair: pair[0].started_at):
            if figures and result.started_at >= cutoff:
                self._feed(result, figures)
        return out, found

    def prepare(self, results: list[CheckResult], now: datetime) -> None:
        """Load the history of checks seen for the first time (blocking store reads: the
        pipeline calls it on the store's thread before `apply`)."""
        cutoff = now - self.policy.window
        earliest: dict[str, datetime] = {}  # one pass: 10,000 new checks must not be O(n^2)
        for r in results:
            if r.check not in self._loaded:
                first = earliest.get(r.check)
                earliest[r.check] = r.started_at if first is None else min(first, r.started_at)
        restored = self._restore(list(earliest)) if self._snapshots and earliest else {}
        for check, before in earliest.items():
            found = restored.get(check)
            if found is None:
                self._seed(check, cutoff, before, self._load(check, self.policy.max_samples))
            else:
                self._catch_up(check, found, cutoff, before)
            self._loaded.add(check)  # after the load: a store error retries next cycle

    def snapshots(self, limit: int) -> list[Snapshot]:
        """Up to `limit` checks whose windows changed since they were last saved, packed
        (they stay "changed" until `saved` is told they were stored)."""
        chosen = set(itertools.islice(self._changed, limit))
        grouped: dict[str, dict[Figure, Window]] = {check: {} for check in chosen}
        for (check, subject, metric), window in self._windows.items():
            if check in grouped:
                grouped[check][(subject, metric)] = window
        return [
            (check, self._covers[check], pack(windows))
            for check, windows in grouped.items()
            if check in self._covers
        ]

    def saved(self, checks: Iterable[str]) -> None:
        """These checks' snapshots are stored: they are not written again until they change."""
        self._changed.difference_update(checks)

    def history(self, check: str, subject: str | None, metric: str) -> list[float]:
        """The figures currently in one window, oldest first."""
        window = self._windows.get((check, subject, metric))
        return window.values() if window is not None else []

    def _judge(self, result: CheckResult, figures: list[tuple[str, float]]) -> list[Anomaly]:
        anomalies = []
        for metric, x in figures:
            window = self._window((result.check, result.subject, metric))
            if window is None or len(window) < self.policy.min_samples:
                continue
            median = window.median()
            if median <= 0:
                continue  # not judged (see `verdict`): skip the MAD
            anomaly = verdict(result, metric, x, median, window.mad(median), self.policy)
            if anomaly is not None:
                anomalies.append(anomaly)
        return anomalies

    def _restore(self, checks: list[str]) -> dict[str, Restored]:
        """The stored snapshots of `checks` that this configuration can use. One that is
        unreadable, of another format or of another window length or capacity is skipped (its
        check is rebuilt from results), with one log line for the lot."""
        assert self._snapshots is not None
        stored = self._snapshots(checks)
        usable, refused = restorable(stored, self.policy.max_samples, self._tick_s)
        if refused:
            check, why = next(iter(refused.items()))
            log.warning(
                "baseline snapshots not usable: rebuilding those checks' windows from results",
                checks=len(refused),
                example=check,
                why=why,
            )
        return usable

    def _catch_up(
        self,
        check: str,
        found: Restored,
        cutoff: datetime,
        before: datetime,
    ) -> None:
        """Restore a check's windows from its snapshot, then feed the results stored after
        what it covers (none after a clean stop; up to an hour's after a crash). When those
        alone fill `max_samples` rows, the snapshot adds nothing: rebuilt from them."""
        covers, windows = found
        limit = self.policy.max_samples
        rows = self._tail(check, limit, covers) if self._tail is not None else []
        if len(rows) < limit:
            for (subject, metric), window in windows.items():
                self._windows[(check, subject, metric)] = window
            self._covers[check] = covers
        self._seed(check, cutoff, before, rows)

    def _seed(self, check: str, cutoff: datetime, before: datetime, rows: Sequence[Sample]) -> None:
        """Feed stored rows (newest first) to a check's windows: built at once when new."""
        series: dict[Key, tuple[list[float], list[float]]] = {}
        for row in reversed(rows):  # newest first from the store
            # Rows this module degraded were ok in substance: same choice as for live results.
            ok = row.status == "ok" or (
                row.status == "degraded" and any(k.startswith(MEDIAN_PREFIX) for k in row.values)
            )
            # Only strictly earlier rows: the current cycle may already be in the store.
            if ok and cutoff <= row.started_at < before:
                at = row.started_at.timestamp()
                for metric, value in metrics(row):
                    values, times = series.setdefault((row.check, row.subject, metric), ([], []))
                    values.append(value)
                    times.append(at)
        if rows:
            newest = max(rows[0].started_at, self._covers.get(check, rows[0].started_at))
            self._covers[check] = min(newest, before)  # (only rows before it were fed)
        if series:
            self._changed.add(check)
        capacity = self.policy.max_samples
        for key, (values, times) in series.items():
            window = self._windows.get(key)
            if window is None:  # built at once: one sort, not an insertion per sample
                self._windows[key] = Window.of(values, times, capacity, self._tick_s)
            else:
                for value, at in zip(values, times, strict=True):
                    window.add(value, at)

    def _feed(self, result: CheckResult, figures: list[tuple[str, float]]) -> None:
        """Add the figures of a result `_judge` just read (so its windows are pruned)."""
        at = result.started_at.timestamp()
        self._changed.add(result.check)
        for metric, value in figures:
            key = (result.check, result.subject, metric)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = Window(self.policy.max_samples, self._tick_s)
            window.add(value, at)

    def _window(self, key: Key) -> Window | None:
        """The window of `key`, its samples older than the cutoff dropped."""
        window = self._windows.get(key)
        if window is not None:
            window.prune(self._limit)
        return window

    def _prune(self, cutoff: datetime) -> None:
        limit = cutoff.timestamp()
        for key, window in list(self._windows.items()):
            window.prune(limit)
            if not len(window):
                del self._windows[key]


def _degrade(result: CheckResult, anomalies: list[Anomaly]) -> CheckResult:
    sentences = "; ".join(a.sentence for a in anomalies)
    values = dict(result.values)
    values.update({f"{MEDIAN_PREFIX}{a.metric}": a.median for a in anomalies})
    return result.model_copy(
        update={
            "status": "degraded",
            "evidence": f"{result.evidence} — {sentences}",
            "values": values,
        }
    )
