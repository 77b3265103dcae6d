"""Compact windows judge exactly as the old exact computation did: on seeded latency series
(steady, diurnal, a step change, spikes, integer ties) and a value that drops to zero, the
flagged results, their sentences, medians, z and ratios are identical, cycle by cycle, both
while windows fill, once the ring wraps, and when samples age out of the time window. Also the
memory a full window holds, and a restart that re-seeds the windows from a real store."""

from __future__ import annotations

import math
import random
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.engine.baselines import LATENCY, BaselinePolicy, Baselines
from daemon.engine.window import Window
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


def run_both(
    policy: BaselinePolicy, cycles: int, seed: int, names: tuple[str, ...] = (*SERIES, "queue")
) -> dict[str, int]:
    """Feed both implementations the same cycles; assert they agree on every one. Returns how
    many results were flagged per check (so the comparison is never vacuous)."""
    rng = random.Random(seed)
    compact = Baselines(policy, lambda check, limit: [])
    exact = ExactBaselines(policy, lambda check, limit: [])
    flagged: dict[str, int] = {}
    for cycle in range(cycles):
        batch = list(results(cycle, rng, names))
        now = batch[0].started_at
        got, got_anomalies = compact.apply(batch, now)
        want, want_anomalies = exact.apply(batch, now)
        assert got_anomalies == want_anomalies, f"cycle {cycle}"
        assert [r.model_dump() for r in got] == [r.model_dump() for r in want], f"cycle {cycle}"
        for anomaly in got_anomalies:
            flagged[anomaly.check] = flagged.get(anomaly.check, 0) + 1
    for key in exact._windows:
        assert compact.history(*key) == exact.history(*key)
    # windows emptied by age linger (empty) until the hourly sweep; never judged meanwhile
    assert {k for k, w in compact._windows.items() if len(w)} == set(exact._windows)
    return flagged


def test_flags_equal_the_exact_computation_while_filling_and_after_the_ring_wraps() -> None:
    flagged = run_both(BaselinePolicy(max_samples=300, min_samples=30), cycles=1500, seed=18)
    assert flagged.get("step", 0) >= 5  # the step is flagged until the median catches up
    assert flagged.get("spikes", 0) >= 5
    assert flagged.get("ties", 0) >= 5
    assert flagged.get("queue", 0) >= 2  # the drops to zero


def test_flags_equal_the_exact_computation_when_samples_age_out() -> None:
    policy = BaselinePolicy(window=timedelta(hours=6), max_samples=2000, min_samples=30)
    flagged = run_both(policy, cycles=900, seed=7)  # 6 h = 360 samples: pruned by age
    assert flagged.get("step", 0) >= 5 and flagged.get("spikes", 0) >= 2


def test_flags_equal_the_exact_computation_with_full_default_windows() -> None:
    flagged = run_both(BaselinePolicy(), cycles=2100, seed=3, names=("spikes",))
    assert flagged.get("spikes", 0) >= 5


@pytest.mark.parametrize("capacity", [1, 2, 7, 64])
def test_window_median_and_mad_are_those_of_statistics(capacity: int) -> None:
    import statistics

    rng = random.Random(capacity)
    window, plain = Window(capacity), list[float]()
    for i in range(400):
        value = rng.choice((rng.uniform(0, 9), float(rng.randint(0, 3)), 5.0))
        window.add(value, float(i))
        plain = [*plain, value][-capacity:]
        if i % 13 == 12 and len(plain) > 1:
            window.pop_oldest()
            plain = plain[1:]
        median = statistics.median(plain)
        assert window.median() == median
        assert window.mad(median) == statistics.median(abs(x - median) for x in plain)
        assert window.values() == plain


def test_a_full_default_window_holds_its_samples_in_under_48_kb() -> None:
    policy = BaselinePolicy()
    rng = random.Random(1)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    window = Window(policy.max_samples)
    for i in range(3 * policy.max_samples):  # full, then wrapped twice: no growth
        window.add(rng.uniform(1, 100), float(i))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(window) == policy.max_samples
    assert window.nbytes() == 24 * policy.max_samples
    assert held <= 48 * 1024 + 1024  # the old deque of (datetime, float) held ~200 KB


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
    fed = Window(100)
    for i, value in enumerate(values):
        fed.add(value, float(i))
    built = Window.of(values, [float(i) for i in range(130)], 100)
    assert built.values() == fed.values() and built.median() == fed.median()
    assert built.mad(built.median()) == fed.mad(fed.median())
    built.add(7.0, 130.0)
    fed.add(7.0, 130.0)
    assert built.values() == fed.values() and built.oldest_time() == fed.oldest_time() == 31.0
