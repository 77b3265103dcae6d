"""Baseline snapshots on both backends (SQLite and a real PostgreSQL): the repository stores
bytes exactly and replaces a check's row; a restart restores windows equal to those held
before a clean stop (the same flags on the next results, nothing but the snapshot read); after
a crash the last periodic snapshot plus the results stored after it equal a full rebuild; a
damaged snapshot or one of another window length falls back to the rebuild with a log line."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.engine.baselines import BaselinePolicy, Baselines
from daemon.engine.window import dump
from daemon.models import CheckResult, EngineState
from daemon.store import Store
from tests.daemon.store.conftest import OpenStore

T0 = datetime(2026, 3, 2, tzinfo=UTC)
POLICY = BaselinePolicy(max_samples=120, min_samples=20)
CHECKS = ("api", "db", "web")


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Iterator[Store]:
    s = open_store(tmp_path / "state")
    yield s
    s.close()


def cycle_results(cycle: int, rng: random.Random) -> list[CheckResult]:
    """One result a check a minute; `db` carries a numeric value, every 37th `web` result
    spikes (stored degraded by baselines, still fed), one in 50 `api` results fails."""
    at = T0 + timedelta(minutes=cycle)
    out = []
    for name in CHECKS:
        latency = rng.lognormvariate(math.log(30), 0.2)
        if name == "web" and cycle % 37 == 36:
            latency *= 12
        status = "failing" if name == "api" and rng.random() < 0.02 else "ok"
        values = {"rows": rng.randint(900, 1100)} if name == "db" else {}
        out.append(
            CheckResult(
                check=name,
                status=status,
                evidence="e",
                started_at=at,
                latency_ms=latency,
                values=values,
            )
        )
    return out


def restoring(store: Store, policy: BaselinePolicy = POLICY) -> Baselines:
    return Baselines(
        policy, store.results.figures, snapshots=store.snapshots.read, tail=store.results.figures
    )


def run(baselines: Baselines, store: Store, cycles: range, seed: int) -> list[CheckResult]:
    """Judge, feed and store `cycles` as the pipeline does; returns every judged result."""
    rng = random.Random(seed)
    judged: list[CheckResult] = []
    for cycle in cycles:
        batch = cycle_results(cycle, rng)
        now = batch[0].started_at + timedelta(seconds=5)
        baselines.prepare(batch, now)
        out, _ = baselines.apply(batch, now)
        store.incidents.commit_cycle(out, EngineState(), [], [], [])
        judged += out
    return judged


def save(baselines: Baselines, store: Store, at: datetime) -> int:
    rows = baselines.snapshots(10_000)
    store.snapshots.write(rows, at)
    baselines.saved(check for check, _, _ in rows)
    return len(rows)


def views(baselines: Baselines) -> dict[tuple[str, str | None, str], list[float]]:
    return {key: window.values() for key, window in baselines._windows.items()}


def test_the_repository_stores_bytes_exactly_and_replaces_a_checks_row(store: Store) -> None:
    every_byte = bytes(range(256)) * 40
    store.snapshots.write([("api", T0, every_byte), ("db", T0, b"")], T0)
    store.snapshots.write([("api", T0 + timedelta(hours=1), b"\x00new")], T0)
    found = store.snapshots.read(["api", "db", "missing"])
    assert found == {"api": (T0 + timedelta(hours=1), b"\x00new"), "db": (T0, b"")}
    assert store.snapshots.size() == (2, 4)
    store.snapshots.write([("db", T0, every_byte)], T0)
    assert store.snapshots.read(["db"])["db"][1] == every_byte
    assert store.snapshots.prune(T0 + timedelta(minutes=1)) == 1  # db covers only T0
    assert list(store.snapshots.read(["api", "db"])) == ["api"]
    many = [f"c{i}" for i in range(1200)]  # more than one IN list
    store.snapshots.write([(c, T0, c.encode()) for c in many], T0)
    assert len(store.snapshots.read(many)) == 1200


def test_stored_figures_after_a_time_are_only_the_later_ones(store: Store) -> None:
    run(Baselines(POLICY, store.results.figures), store, range(10), seed=1)
    later = store.results.figures("db", 100, T0 + timedelta(minutes=6))
    assert [row.started_at.minute for row in later] == [9, 8, 7]
    assert store.results.figures("db", 2, T0)[0].values["rows"] == later[0].values["rows"]


def test_a_clean_restart_restores_the_same_windows_and_flags(store: Store) -> None:
    running = restoring(store)
    run(running, store, range(300), seed=2)  # full and wrapped (120 samples a window)
    assert save(running, store, T0 + timedelta(minutes=300)) == 3
    assert running.snapshots(10) == []  # nothing changed since

    restarted = restoring(store)
    reads: list[str] = []
    restarted._load = lambda check, limit: reads.append(check) or []  # type: ignore[method-assign]
    next_batch = cycle_results(300, random.Random(3))
    restarted.prepare(next_batch, T0 + timedelta(minutes=300, seconds=5))
    assert reads == []  # no check re-read its history
    assert {k: dump(w) for k, w in restarted._windows.items()} == {
        k: dump(w) for k, w in running._windows.items()
    }
    assert run(restarted, store, range(300, 420), seed=4) == run(
        running, store, range(300, 420), seed=4
    )


def test_after_a_crash_the_periodic_snapshot_and_the_tail_equal_a_full_rebuild(
    store: Store,
) -> None:
    running = restoring(store)
    run(running, store, range(250), seed=5)
    save(running, store, T0 + timedelta(minutes=250))  # the hourly snapshot…
    run(running, store, range(250, 310), seed=6)  # …then an hour more, and a crash

    restored, rebuilt = restoring(store), Baselines(POLICY, store.results.figures)
    for baselines in (restored, rebuilt):
        baselines.prepare(cycle_results(310, random.Random(7)), T0 + timedelta(minutes=310))
    assert views(restored) == views(running)  # exactly what the crashed process held
    api = ("api", None, "latency_ms")
    assert {k: v for k, v in views(restored).items() if k != api} == {
        k: v for k, v in views(rebuilt).items() if k != api
    }
    assert len(views(restored)[("web", None, "latency_ms")]) == POLICY.max_samples
    # A rebuild reads the last 120 rows, failures included: api's window is short by the
    # failed runs, and is the newest part of the restored one.
    rebuilt_api, restored_api = views(rebuilt)[api], views(restored)[api]
    assert len(rebuilt_api) < len(restored_api) and restored_api[-len(rebuilt_api) :] == rebuilt_api
    flags = [run(b, store, range(310, 400), seed=8) for b in (restored, rebuilt, running)]
    assert flags[0] == flags[2]
    assert [r for r in flags[0] if r.check != "api"] == [r for r in flags[1] if r.check != "api"]
    assert any(r.status == "degraded" for r in flags[0])  # the spikes were judged


def test_a_damaged_snapshot_falls_back_to_the_rebuild_with_a_log_line(store: Store) -> None:
    running = restoring(store)
    run(running, store, range(200), seed=9)
    save(running, store, T0 + timedelta(minutes=200))
    data = bytearray(store.snapshots.read(["db"])["db"][1])
    data[-5] ^= 0xFF
    store.snapshots.write([("db", T0 + timedelta(minutes=199), bytes(data))], T0)

    restored, rebuilt = restoring(store), Baselines(POLICY, store.results.figures)
    with capture_logs() as logs:
        for baselines in (restored, rebuilt):
            baselines.prepare(cycle_results(200, random.Random(1)), T0 + timedelta(minutes=200))
    db = ("db", None, "latency_ms")
    assert views(restored)[db] == views(rebuilt)[db] and len(views(rebuilt)[db]) == 120
    assert views(restored) == views(running)  # db's rows were all ok: the same windows
    [line] = [e for e in logs if e["event"].startswith("baseline snapshots not usable")]
    assert line["checks"] == 1 and line["example"] == "db" and "damaged" in line["why"]
    assert run(restored, store, range(200, 260), seed=2) == run(
        running, store, range(200, 260), seed=2
    )


def test_a_changed_window_length_never_reuses_a_snapshot(store: Store) -> None:
    running = restoring(store)
    run(running, store, range(150), seed=3)
    save(running, store, T0 + timedelta(minutes=150))
    shorter = BaselinePolicy(max_samples=120, min_samples=20, window=timedelta(hours=1))
    restored = restoring(store, shorter)
    with capture_logs() as logs:
        restored.prepare(cycle_results(150, random.Random(1)), T0 + timedelta(minutes=150))
    assert any("configuration changed" in str(e.get("why")) for e in logs)
    rebuilt = Baselines(shorter, store.results.figures)
    rebuilt.prepare(cycle_results(150, random.Random(1)), T0 + timedelta(minutes=150))
    assert views(restored) == views(rebuilt) and restored._tick_s == 3600 / 1024
    assert len(views(restored)[("api", None, "latency_ms")]) <= 60  # only the last hour
