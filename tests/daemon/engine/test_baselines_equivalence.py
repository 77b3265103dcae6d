"""Compact windows judge as the exact computation does, within a stated bound: on seeded latency
series (steady, diurnal, a step change, spikes, integer ties) and a value that drops to zero,
every judged median and MAD is within the 16-bit codes' error of the exact one (median within
EPSILON relative, MAD within EPSILON·MAD + 2·EPSILON·median), and a result is flagged
differently only when its exact figures are borderline (a gate's threshold lies inside the
error interval of z, the ratio or the delta), cycle by cycle, while windows fill, once the ring
wraps, and when samples age out. Also ageing with unaligned times (never early, at most one
tick late), the memory a full window holds, and a restart that re-seeds from a real store."""

from __future__ import annotations

import math
import random
import statistics
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.engine.baselines import LATENCY, BaselinePolicy, Baselines, is_duration, metrics
from daemon.engine.codes import EPSILON, HIGH, LOW, decode, encode
from daemon.engine.window import TICKS, Window
from daemon.models import CheckResult, EngineState
from daemon.store import Store
from tests.daemon.engine.exact_baselines import ExactBaselines

T0 = datetime(2026, 3, 2, tzinfo=UTC)
Series = Callable[[random.Random, int], float]


def steady(rng: random.Random, i: int) -> float:
    return rng.lognormvariate(math.log(20), 0.15)


def diurnal(rng: random.Random, i: int) -> float:
    return 40 + 30 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0, 3)


def step(rng: random.Random, i: int) -> float:
    return rng.lognormvariate(math.log(20 if i < 500 else 120), 0.1)


def spikes(rng: random.Random, i: int) -> float:
    base = rng.lognormvariate(math.log(15), 0.2)
    return base * rng.choice((8, 20)) if rng.random() < 0.02 else base


def ties(rng: random.Random, i: int) -> float:
    return float(round(rng.gauss(12, 1.5))) + (200.0 if i % 97 == 96 else 0.0)


SERIES: dict[str, Series] = {
    "steady": steady,
    "diurnal": diurnal,
    "step": step,
    "spikes": spikes,
    "ties": ties,
}


def results(
    cycle: int, rng: random.Random, names: tuple[str, ...] = (*SERIES, "queue")
) -> Iterator[CheckResult]:
    at = T0 + timedelta(minutes=cycle)
    for name in names:
        if name not in SERIES:
            continue
        series = SERIES[name]
        latency = series(rng, cycle)
        status = "failing" if rng.random() < 0.01 else "ok"
        yield CheckResult(
            check=name,
            status=status,
            evidence=f"{name} answered",
            started_at=at,
            latency_ms=latency,
            values={"latency_ms": latency, "status_code": 200},
        )
    depth = 0 if cycle % 211 == 210 else rng.randint(400, 600)
    for subject in ("q1", "q2") if "queue" in names else ():
        yield CheckResult(
            check="queue",
            status="ok",
            evidence="depth",
            started_at=at,
            subject=subject,
            values={"queue_depth": depth, "wait_ms": rng.uniform(1, 3)},
        )


EPS = EPSILON * (1 + 1e-9)
"""The codes' relative error, with room for the last bit of float rounding."""


def stats(history: list[float]) -> tuple[float, float]:
    median = statistics.median(history)
    return median, statistics.median(abs(h - median) for h in history)


def borderline(metric: str, x: float, m: float, mad: float, policy: BaselinePolicy) -> bool:
    """Whether some input within the stated error of the exact (x, median, MAD) lands on the
    other side of a gate: z of the threshold, the ratio of `min_ratio`, for durations the
    delta of `min_delta_ms`. Only such results may be flagged differently."""
    n, e_n = abs(x - m), EPS * (abs(x) + m)
    floor = max(0.01 * m, 1.0) if is_duration(metric) else 0.01 * m
    d, e_d = max(mad, floor), EPS * mad + 2 * EPS * m
    z_lo = max(n - e_n, 0.0) / (1.4826 * (d + e_d))
    z_hi = (n + e_n) / (1.4826 * max(d - e_d, 1e-300))
    if z_lo <= policy.z_threshold <= z_hi:
        return True
    if x > 0:
        r = x / m if x >= m else m / x
        if r / (1 + EPS) ** 2 <= policy.min_ratio <= r * (1 + EPS) ** 2:
            return True
    return is_duration(metric) and abs(x - m - policy.min_delta_ms) <= e_n


def run_both(
    policy: BaselinePolicy, cycles: int, seed: int, names: tuple[str, ...] = (*SERIES, "queue")
) -> tuple[dict[str, int], int]:
    """Feed both implementations the same cycles. On every judged figure the compact median
    and MAD are within the codes' bound of the exact ones, and a figure is flagged differently
    only where it is `borderline`. Returns how many results were flagged per check (so the
    comparison is never vacuous) and how many figures were flagged differently."""
    rng = random.Random(seed)
    compact = Baselines(policy, lambda check, limit: [])
    exact = ExactBaselines(policy, lambda check, limit: [])
    flagged: dict[str, int] = {}
    differ = 0
    for cycle in range(cycles):
        batch = list(results(cycle, rng, names))
        now = batch[0].started_at
        cutoff = now - policy.window
        near: set[tuple[str, str | None, str]] = set()
        for result in batch:
            for metric, x in metrics(result) if result.status == "ok" else ():
                key = (result.check, result.subject, metric)
                history = [v for t, v in exact._windows.get(key, ()) if t >= cutoff]
                window = compact._windows.get(key)
                if window is not None:
                    window.prune(cutoff.timestamp())
                assert len(history) == (len(window) if window is not None else 0), key
                if len(history) < policy.min_samples or window is None:
                    continue
                m, mad = stats(history)
                got_m = window.median()
                assert abs(got_m - m) <= EPS * abs(m), (cycle, key)
                if m <= 0:
                    continue
                got_mad = window.mad(got_m)
                assert abs(got_mad - mad) <= EPS * mad + 2 * EPS * m + 1e-12, (cycle, key)
                if borderline(metric, x, m, mad, policy):
                    near.add(key)
        got, got_anomalies = compact.apply(batch, now)
        _, want_anomalies = exact.apply(batch, now)
        mine = {(a.check, a.subject, a.metric): a for a in got_anomalies}
        theirs = {(a.check, a.subject, a.metric): a for a in want_anomalies}
        for key in mine.keys() ^ theirs.keys():
            assert key in near, f"cycle {cycle}: {key} flagged differently, not borderline"
            differ += 1
        for key in mine.keys() & theirs.keys():
            a, b = mine[key], theirs[key]
            assert a.value == b.value and abs(a.median - b.median) <= EPS * b.median
        assert [r.status for r in got] == [
            "degraded" if any(k[:2] == (r.check, r.subject) for k in mine) else r.status
            for r in batch
        ]
        for anomaly in got_anomalies:
            flagged[anomaly.check] = flagged.get(anomaly.check, 0) + 1
    for key in exact._windows:
        held, real = compact.history(*key), exact.history(*key)
        assert len(held) == len(real)
        assert all(abs(h - r) <= EPS * abs(r) for h, r in zip(held, real, strict=True))
    # windows emptied by age linger (empty) until the hourly sweep; never judged meanwhile
    assert {k for k, w in compact._windows.items() if len(w)} == set(exact._windows)
    return flagged, differ


def test_flags_match_the_exact_computation_while_filling_and_after_the_ring_wraps() -> None:
    flagged, differ = run_both(BaselinePolicy(max_samples=300, min_samples=30), 1500, seed=18)
    assert flagged.get("step", 0) >= 5  # the step is flagged until the median catches up
    assert flagged.get("spikes", 0) >= 5
    assert flagged.get("ties", 0) >= 5
    assert flagged.get("queue", 0) >= 2  # the drops to zero
    assert differ <= sum(flagged.values()) // 100  # borderline and rare: at most 1 %


def test_flags_match_the_exact_computation_when_samples_age_out() -> None:
    """A window of 1024 minutes: its ticks are whole minutes, so samples taken on the minute
    age out exactly when the exact computation drops them (checked every cycle above)."""
    policy = BaselinePolicy(window=timedelta(minutes=1024), max_samples=2000, min_samples=30)
    flagged, differ = run_both(policy, 1800, seed=7)
    assert flagged.get("step", 0) >= 5 and flagged.get("spikes", 0) >= 2
    assert differ <= sum(flagged.values()) // 100


def test_flags_match_the_exact_computation_with_full_default_windows() -> None:
    flagged, differ = run_both(BaselinePolicy(), cycles=2100, seed=3, names=("spikes",))
    assert flagged.get("spikes", 0) >= 5
    assert differ <= sum(flagged.values()) // 100


def test_codes_keep_order_and_relative_error_across_the_range() -> None:
    rng = random.Random(4)
    xs = sorted(
        [0.0, LOW, HIGH]
        + [math.exp(rng.uniform(math.log(LOW), math.log(HIGH))) for _ in range(20000)]
    )
    codes = [encode(x) for x in xs]
    assert None not in codes
    known = [c for c in codes if c is not None]
    assert known == sorted(known) and known[0] == 0 and decode(0) == 0.0
    for x, code in zip(xs[1:], known[1:], strict=True):
        assert abs(decode(code) - x) <= EPSILON * x
    assert EPSILON < 2.2e-4
    assert [encode(x) for x in (-1.0, LOW / 2, HIGH * 2)] == [None, None, None]


@pytest.mark.parametrize("capacity", [1, 2, 7, 64])
def test_window_median_and_mad_stay_within_the_bound_of_statistics(capacity: int) -> None:
    """Coded windows (bound), and a window made exact by a negative value (identical)."""
    rng = random.Random(capacity)
    coded, plain = Window(capacity, 1.0), list[float]()
    promoted, raw = Window(capacity, 1.0), list[float]()
    for i in range(400):
        value = rng.choice((rng.uniform(0, 9), float(rng.randint(0, 3)), 5.0))
        coded.add(value, float(i))
        promoted.add(-value - 1 if i == 0 else value, float(i))
        plain = [*plain, value][-capacity:]
        raw = [*raw, -value - 1 if i == 0 else value][-capacity:]
        if i % 13 == 12 and len(plain) > 1:
            coded.prune(float(i - len(plain) + 2))  # the oldest sample's tick has ended
            promoted.prune(float(i - len(raw) + 2))
            plain, raw = plain[1:], raw[1:]
        m, mad = stats(plain)
        got_m = coded.median()
        assert abs(got_m - m) <= EPS * m
        assert abs(coded.mad(got_m) - mad) <= EPS * mad + 2 * EPS * m
        assert all(abs(h - p) <= EPS * p for h, p in zip(coded.values(), plain, strict=True))
        if i:  # exact for good, including the samples coded before the negative one came
            assert promoted.exact
            if i >= capacity:
                assert promoted.values() == raw
                assert (promoted.median(), promoted.mad(promoted.median())) == stats(raw)


def test_samples_age_out_never_early_and_at_most_one_tick_late() -> None:
    """Unaligned times: the window holds exactly the samples the exact rule keeps, plus at
    most those within one tick (window / TICKS) before the cutoff."""
    span = 3600.0
    tick = span / TICKS
    rng = random.Random(11)
    window, fed = Window(10_000, tick), list[tuple[float, float]]()
    at = 0.0
    for _ in range(6000):
        at += rng.uniform(0.1, 2.5)
        value = rng.uniform(1, 100)
        window.add(value, at)
        fed.append((at, value))
        limit = at - span
        window.prune(limit)
        kept = [t for t, _ in fed if t >= limit]
        assert len(window) >= len(kept)
        extra = fed[len(fed) - len(window) : len(fed) - len(kept)]
        assert all(limit - tick < t < limit for t, _ in extra)
        if len(window) > len(kept):
            assert window.oldest_tick() > limit - 2 * tick
    assert len(window) < len(fed)  # ageing happened


def test_a_full_default_window_holds_its_samples_in_under_16_kb() -> None:
    policy = BaselinePolicy()
    rng = random.Random(1)
    tick = policy.window.total_seconds() / TICKS
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    window = Window(policy.max_samples, tick)
    at = 1.7e9
    for _ in range(3 * policy.max_samples):  # full, then wrapped twice: no growth
        at += rng.uniform(55, 65)  # one a minute, jittered
        window.add(rng.lognormvariate(3, 0.5), at)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(window) == policy.max_samples and not window.exact
    runs = policy.max_samples * 65 // int(tick) + 2  # ticks the samples span, at most
    assert window.nbytes() <= 4 * policy.max_samples + 6 * runs
    assert held <= 12 * 1024  # 8 KB of codes, ~1.2 KB of ticks; the old doubles held 48 KB


def test_a_restart_reseeds_the_windows_from_the_store_and_judges_the_same(tmp_path: Path) -> None:
    """Baselines are not stored: a restart re-reads each check's latest `max_samples` results.
    (A check with several subjects shares those rows among them, as before: not covered.)"""
    names = tuple(SERIES)
    policy = BaselinePolicy(max_samples=200, min_samples=30)
    rng = random.Random(5)
    store = Store.open(tmp_path)
    running = Baselines(policy, store.results.figures)
    for cycle in range(260):
        batch = list(results(cycle, rng, names))
        judged, _ = running.apply(batch, batch[0].started_at)
        store.incidents.commit_cycle(judged, EngineState(), [], [], [])
    store.close()

    restarted_store = Store.open(tmp_path)
    restarted = Baselines(policy, restarted_store.results.figures)
    for cycle in range(260, 330):
        batch = list(results(cycle, rng, names))
        now = batch[0].started_at
        assert restarted.apply(batch, now) == running.apply(batch, now), f"cycle {cycle}"
    for key in running._windows:
        assert restarted.history(*key) == running.history(*key)
    assert len(running.history("step", None, LATENCY)) == 200
    restarted_store.close()


def test_a_window_built_at_once_equals_one_fed_sample_by_sample() -> None:
    rng = random.Random(9)
    values = [rng.uniform(1, 50) for _ in range(130)]
    fed = Window(100, 1.0)
    for i, value in enumerate(values):
        fed.add(value, float(i))
    built = Window.of(values, [float(i) for i in range(130)], 100, 1.0)
    assert built.values() == fed.values() and built.median() == fed.median()
    assert built.mad(built.median()) == fed.mad(fed.median())
    built.add(7.0, 130.0)
    fed.add(7.0, 130.0)
    assert built.values() == fed.values() and built.oldest_tick() == fed.oldest_tick() == 31.0
