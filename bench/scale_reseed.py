"""The `reseed` part of `bench.scale`: seconds from start to baselines ready at N checks with
full windows, rebuilding every window from stored results (before) against restoring it from
its baseline snapshot and reading only the results stored after it (after), in one run on one
database, and what the snapshots cost (bytes a check, seconds to save them all, the longest
write transaction).

The database holds `rows` results a check, one a minute, half the checks `http`-like (latency)
and half `tcp`-like (latency and `connect_ms`): two figures, as the cycle part's checks. Steps:

1. before: a fresh `Store.open` and `Baselines` without snapshots; the first cycle's `prepare`
   (every check's history read, parsed and built into windows), timed on `sample` checks spread
   over the N and scaled to N when `sample` < N (each check is one indexed read of its own);
2. crash: snapshots that cover all but the last hour (an hourly snapshot, then a crash), so a
   restore reads 60 results a check after it; the same `prepare`, timed on all N checks;
3. clean stop: snapshots covering everything (the stop saved them), timed on all N checks.

Every restored window of the sampled checks is checked equal to the rebuilt one.
"""

from __future__ import annotations

import gc
import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
TAIL_MIN = 60
BATCH = 200


def reseed_part(n: int, rows: int, sample: int, workdir: Path) -> dict[str, Any]:
    from daemon.engine.baselines import BaselinePolicy, Baselines
    from daemon.engine.snapshots import pack
    from daemon.engine.window import TICKS, Window
    from daemon.models import CheckResult
    from daemon.store import Store
    from daemon.store.database import DB_NAME
    from daemon.util.time import db_ts

    policy = BaselinePolicy()
    tick_s = policy.window.total_seconds() / TICKS
    state = workdir / f"reseed-{n}"
    rng = random.Random(11)
    stamps = [NOW - timedelta(minutes=rows - i) for i in range(rows)]  # oldest first
    texts = [db_ts(s) for s in stamps]
    seconds = [s.timestamp() for s in stamps]
    names = [f"check-{i:05d}" for i in range(n)]
    Store.open(state).close()  # the schema
    # Setup, not measured: one connection without fsyncs, 50 checks a transaction.
    conn = sqlite3.connect(state / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    crash, clean = [], []
    for i, name in enumerate(names):
        latency = [round(rng.lognormvariate(3.3, 0.4), 3) for _ in range(rows)]
        connect = [round(x * rng.uniform(0.2, 0.4), 3) for x in latency] if i % 2 else None
        if i % 50 == 0:
            if i:
                conn.execute("COMMIT")
            conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO check_results (check_name, status, started_at, latency_ms, "
            "subject, evidence, values_json, labels_json) VALUES (?, 'ok', ?, ?, NULL, "
            "'answered', ?, '{}')",
            [
                (name, at, x, "{}" if connect is None else json.dumps({"connect_ms": c}))
                for at, x, c in zip(texts, latency, connect or latency, strict=True)
            ],
        )
        for cut, into in ((rows - TAIL_MIN, crash), (rows, clean)):
            windows = {(None, "latency_ms"): Window.of(latency[:cut], seconds[:cut], 2000, tick_s)}
            if connect is not None:
                windows[(None, "connect_ms")] = Window.of(
                    connect[:cut], seconds[:cut], 2000, tick_s
                )
            into.append((name, stamps[cut - 1], pack(windows)))
    conn.execute("COMMIT")
    conn.close()
    populate_s = time.perf_counter() - started

    first = [
        CheckResult(check=name, status="ok", evidence="e", started_at=NOW, latency_ms=30.0)
        for name in names
    ]
    step = max(n // sample, 1)
    sampled = first[::step][:sample]

    def ready(snapshots: bool, results: list[CheckResult]) -> tuple[float, Any]:
        gc.collect()
        began = time.perf_counter()
        opened = Store.open(state)
        reads = {"snapshots": opened.snapshots.read, "tail": opened.results.figures}
        baselines = Baselines(policy, opened.results.figures, **(reads if snapshots else {}))
        baselines.prepare(results, NOW + timedelta(seconds=1))
        took = time.perf_counter() - began
        opened.close()
        return took, baselines

    before_s, rebuilt = ready(False, sampled)
    written = _save(state, crash)
    crash_s, after_crash = ready(True, first)
    save = _save(state, clean)
    clean_s, after_clean = ready(True, first)
    with Store.open(state) as opened:
        snap_rows, snap_bytes = opened.snapshots.size()
    equal = all(
        after_crash._windows[key].values() == window.values()
        and after_clean._windows[key].values() == window.values()
        for key, window in rebuilt._windows.items()
    )
    before_n = before_s * n / len(sampled)
    return {
        "n": n,
        "rows_per_check": rows,
        "windows": len(after_clean._windows),
        "populate_s": round(populate_s, 1),
        "before_sampled_checks": len(sampled),
        "before_ms_per_check": round(1000 * before_s / len(sampled), 2),
        "before_s": round(before_n, 1),
        "after_clean_s": round(clean_s, 3),
        "after_crash_s": round(crash_s, 3),
        "after_clean_ms_per_check": round(1000 * clean_s / n, 3),
        "after_crash_ms_per_check": round(1000 * crash_s / n, 3),
        "ratio_before_vs_clean": round(before_n / clean_s, 1),
        "ratio_before_vs_crash": round(before_n / crash_s, 1),
        "snapshot_bytes_per_check": round(snap_bytes / max(snap_rows, 1)),
        "save_all_s": round(save["total_s"], 2),
        "save_longest_batch_ms": round(1000 * save["longest_s"], 1),
        "save_crash_set_s": round(written["total_s"], 2),
        "restored_equal_rebuilt": equal,
    }


def _save(state: Path, rows: list[tuple[str, datetime, bytes]]) -> dict[str, float]:
    """Write snapshots as `Pipeline.save_baselines` does: `BATCH` checks a transaction."""
    from daemon.store import Store

    longest, began = 0.0, time.perf_counter()
    with Store.open(state) as store:
        for start in range(0, len(rows), BATCH):
            t = time.perf_counter()
            store.snapshots.write(rows[start : start + BATCH], NOW)
            longest = max(longest, time.perf_counter() - t)
    return {"total_s": time.perf_counter() - began, "longest_s": longest}


def render(z: dict[str, Any]) -> str:
    return (
        f"reseed N={z['n']} ({z['rows_per_check']} results a check, {z['windows']} windows): "
        f"baselines ready — rebuild from results {z['before_s']:.1f} s "
        f"({z['before_ms_per_check']:.1f} ms a check, timed on {z['before_sampled_checks']}), "
        f"snapshot after a clean stop {z['after_clean_s']:.2f} s "
        f"({z['ratio_before_vs_clean']:.0f}x faster), after a crash (+{TAIL_MIN} min of "
        f"results) {z['after_crash_s']:.2f} s ({z['ratio_before_vs_crash']:.0f}x); snapshots "
        f"{z['snapshot_bytes_per_check'] / 1024:.1f} KB a check, saving all "
        f"{z['save_all_s']:.2f} s (longest {BATCH}-check transaction "
        f"{z['save_longest_batch_ms']:.0f} ms); restored = rebuilt: {z['restored_equal_rebuilt']}"
    )
