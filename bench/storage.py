"""What storing results costs at 10,000 checks every 60 s: bytes a cycle and a day for raw
results and for each rollup tier, the steady-state file size, the rollup time per hour of
data, the longest transaction maintenance holds, and the commit's cost a result.

Two parts, in one process:

- `commit`: a cycle's results (half `http`-like, half `tcp`-like, with their values and no
  labels) inserted in one transaction by `daemon.store.results.insert_results`, against the
  same statement as it was before (a JSON dump of values and labels for every row),
  interleaved round by round: microseconds a result.
- `simulate`: hours of cycles written with synthetic timestamps through the real store
  (`insert_results` in one transaction a cycle, as the daemon commits), and after each hour
  the daemon's hourly maintenance (`Store.maintenance`: roll up, prune, release pages), every
  step timed. Retentions are scaled down (hours instead of days) so the run reaches the
  steady state; bytes a row of each tier come from SQLite's `dbstat`, so the day and
  steady-state figures for real retentions are rows x measured bytes.

Run: `python -m bench.storage [--checks 10000] [--hours 10] [--json]`.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import emit, isolate_this_process, machine, parser, quiet_logs, table

INTERVAL_S = 60
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
SCALED = {"retention": 2, "minute_rollups": 4, "hour_rollups": 6}
"""The simulation's retentions, in hours: every tier is full after 7 simulated hours."""
CONFIGS = {
    "defaults (14d raw, 35d minutes, 400d hours)": (14, 35, 400),
    "10k checks (2d raw, 7d minutes, 400d hours)": (2, 7, 400),
}
"""Retentions (days) whose steady-state size is reported from the measured bytes a row."""
MB = 1024 * 1024


def cycle(checks: int, started: datetime) -> list[Any]:
    """One cycle's results: half http-like, half tcp-like; one in 97 failing."""
    from daemon.models import CheckResult

    out = []
    for n in range(checks):
        at = started + timedelta(microseconds=(n * 5_987_123) % (INTERVAL_S * 1_000_000))
        latency = 5.0 + (n * 7 + at.minute * 13) % 90
        failing = (n + at.minute) % 97 == 0
        if n % 2:
            evidence = f"GET https://svc-{n}.internal/health returned 200 in {latency:.0f} ms"
            values: dict[str, Any] = {"latency_ms": latency, "status_code": 200}
        else:
            evidence = f"connected to 10.{n // 65536}.{n // 256 % 256}.{n % 256}:5432"
            values = {"connect_ms": latency, "bytes_received": 0}
        out.append(
            CheckResult.model_construct(
                check=f"check-{n:05d}",
                status="failing" if failing else "ok",
                evidence=("refused: " + evidence) if failing else evidence,
                started_at=at,
                latency_ms=latency,
                subject=None,
                values=values,
                labels={},
            )
        )
    return out


def legacy_insert(conn: Any, results: list[Any]) -> None:
    """The statement before this change: a JSON dump of values and of labels, every row."""
    from daemon.store.results import INSERT_RESULT
    from daemon.util.time import db_ts

    dumps, rows = json.dumps, []
    for r in results:
        started, values, labels = db_ts(r.started_at), dumps(r.values), dumps(r.labels)
        at, where = r.latency_ms, r.location
        rows.append((r.check, r.status, started, at, r.subject, r.evidence, values, labels, where))
    conn.executemany(INSERT_RESULT, rows)


def commit_costs(checks: int, rounds: int) -> dict[str, Any]:
    """µs a result of one cycle's insert, old and new statement, interleaved."""
    from daemon.store import Store
    from daemon.store.results import insert_results

    variants: dict[str, Callable[[Any, list[Any]], None]] = {
        "before": legacy_insert,
        "after": insert_results,
    }
    statement: dict[str, list[float]] = {name: [] for name in variants}
    whole: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        for r in range(rounds):
            order = list(variants.items())
            for name, insert in order if r % 2 else order[::-1]:  # alternate who goes first
                results = cycle(checks, START + timedelta(minutes=2 * r + (name == "after")))
                t0 = time.perf_counter()
                with store.db.transaction() as conn:
                    insert(conn, results)
                    t1 = time.perf_counter()
                t2 = time.perf_counter()
                statement[name].append((t1 - t0) / checks * 1e6)
                whole[name].append((t2 - t0) / checks * 1e6)

    def figures(times: dict[str, list[float]]) -> dict[str, float]:
        before, after = (statistics.median(times[n]) for n in ("before", "after"))
        return {
            "before": round(before, 2),
            "after": round(after, 2),
            "after_vs_before": round(after / before, 3),
        }

    return {
        "rounds": rounds,
        "us_per_result_statement": figures(statement),
        "us_per_result_with_commit": figures(whole),
    }


def tier_bytes(store: Any) -> dict[str, int]:
    """Bytes on disk of the raw results (table and indexes) and of the rollups, from dbstat."""
    with store.db.transaction(write=False) as conn:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    sizes = dict((str(name), int(size)) for name, size in rows)
    raw = sum(v for k, v in sizes.items() if k.startswith("check_results"))
    rolled = sum(v for k, v in sizes.items() if k.startswith("check_rollups"))
    return {"raw": raw, "rollups": rolled}


def counts(store: Any) -> dict[str, int]:
    with store.db.transaction(write=False) as conn:
        raw = conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0]
        by_size = dict(
            conn.execute("SELECT size_s, COUNT(*) FROM check_rollups GROUP BY size_s").fetchall()
        )
    return {"raw": int(raw), "minute": int(by_size.get(60, 0)), "hour": int(by_size.get(3600, 0))}


def db_bytes(store: Any) -> int:
    """The database's pages (the main file once the WAL is checkpointed)."""
    with store.db.transaction(write=False) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages * size)


def wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def timed(steps: Iterator[tuple[str, int]]) -> Iterator[tuple[str, int, float]]:
    while True:
        t0 = time.perf_counter()
        step = next(steps, None)
        if step is None:
            return
        yield step[0], step[1], time.perf_counter() - t0


def simulate(checks: int, hours: int) -> dict[str, Any]:
    from daemon.store import Store
    from daemon.store.results import insert_results

    keep = {name: timedelta(hours=h) for name, h in SCALED.items()}
    per_hour: list[dict[str, Any]] = []
    commits: list[float] = []
    longest: dict[str, float] = {}
    durations: dict[str, list[float]] = {}
    rollup_s = 0.0
    rolled_hours = 0
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp)) as store:
        for hour in range(hours):
            for minute in range(60):
                results = cycle(checks, START + timedelta(hours=hour, minutes=minute))
                t0 = time.perf_counter()
                with store.db.transaction() as conn:
                    insert_results(conn, results)
                commits.append(time.perf_counter() - t0)
            now = START + timedelta(hours=hour + 1)
            spent: dict[str, float] = {}
            steps = store.maintenance(
                now, keep["retention"], keep["minute_rollups"], keep["hour_rollups"]
            )
            for what, _, seconds in timed(steps):
                spent[what] = spent.get(what, 0.0) + seconds
                longest[what] = max(longest.get(what, 0.0), seconds)
                durations.setdefault(what, []).append(seconds)
            marks = store.rollups.marks()
            if hour >= 1:  # from the 2nd hour on, each pass rolls up one whole hour of data
                rollup_s += spent.get("rolled up", 0.0)
                rolled_hours += 1
            per_hour.append(
                {
                    "hour": hour + 1,
                    "db_bytes": db_bytes(store),
                    "wal_bytes": wal_bytes(store.path),
                    "tiers": tier_bytes(store),
                    "rows": counts(store),
                    "maintenance_s": {k: round(v, 3) for k, v in spent.items()},
                    "marks": marks,
                }
            )
    last = per_hour[-1]
    raw_row = last["tiers"]["raw"] / max(1, last["rows"]["raw"])
    buckets = last["rows"]["minute"] + last["rows"]["hour"]
    bucket_row = last["tiers"]["rollups"] / max(1, buckets)
    day = {
        "raw": raw_row * checks * 86_400 / INTERVAL_S,
        "minute": bucket_row * checks * 1440,
        "hour": bucket_row * checks * 24,
    }
    steady = [h["db_bytes"] for h in per_hour if h["hour"] > SCALED["hour_rollups"] + 1]
    return {
        "hours": hours,
        "scaled_retention_h": SCALED,
        "bytes_per_raw_result": round(raw_row, 1),
        "bytes_per_bucket": round(bucket_row, 1),
        "raw_bytes_per_cycle": round(raw_row * checks),
        "bytes_per_day": {k: round(v) for k, v in day.items()},
        "steady_state": {
            "db_bytes": steady,
            "spread": None if not steady else round(max(steady) / min(steady) - 1, 4),
        },
        "projected_steady_bytes": {
            name: round(day["raw"] * raw + day["minute"] * mins + day["hour"] * hrs)
            for name, (raw, mins, hrs) in CONFIGS.items()
        },
        "rollup_s_per_hour_of_data": None
        if not rolled_hours
        else round(rollup_s / rolled_hours, 2),
        "longest_maintenance_transaction_s": {k: round(v, 4) for k, v in longest.items()},
        "maintenance_transaction_s": {
            what: {
                "steps": len(times),
                "median": round(statistics.median(times), 4),
                "p99": round(sorted(times)[max(0, int(len(times) * 0.99) - 1)], 4),
            }
            for what, times in durations.items()
        },
        "cycle_commit_s": {
            "median": round(statistics.median(commits), 4),
            "max": round(max(commits), 4),
        },
        "per_hour": per_hour,
    }


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def run(checks: int, hours: int, rounds: int) -> dict[str, Any]:
    started = load()
    return {
        "bench": "storage",
        "machine": machine(),
        "load_at_start": started,
        "checks": checks,
        "interval_s": INTERVAL_S,
        "commit": commit_costs(checks, rounds),
        "simulate": simulate(checks, hours),
        "load_at_end": load(),
    }


def render(data: dict[str, Any]) -> str:
    m, s = data["machine"], data["simulate"]
    stmt, whole = (
        data["commit"]["us_per_result_statement"],
        data["commit"]["us_per_result_with_commit"],
    )
    day = s["bytes_per_day"]
    rows = [
        ["raw results a cycle", f"{s['raw_bytes_per_cycle'] / MB:.2f} MB"],
        ["raw results a day", f"{day['raw'] / MB:,.0f} MB"],
        ["minute rollups a day", f"{day['minute'] / MB:,.0f} MB"],
        ["hour rollups a day", f"{day['hour'] / MB:,.1f} MB"],
        ["bytes a raw result / a bucket", f"{s['bytes_per_raw_result']} / {s['bytes_per_bucket']}"],
    ]
    rows += [
        [f"steady state, {name}", f"{size / MB / 1024:,.1f} GB"]
        for name, size in s["projected_steady_bytes"].items()
    ]
    steady = s["steady_state"]["db_bytes"]
    if steady:
        rows.append(
            [
                "measured steady file, retentions {}/{}/{} h".format(
                    *s["scaled_retention_h"].values()
                ),
                f"{min(steady) / MB:,.0f}-{max(steady) / MB:,.0f} MB",
            ]
        )
    rows.append(["rollup time per hour of data", f"{s['rollup_s_per_hour_of_data']} s"])
    rows += [
        [
            f"maintenance transaction, {what}: median / p99 / max",
            f"{step['median'] * 1e3:.0f} / {step['p99'] * 1e3:.0f} / "
            f"{s['longest_maintenance_transaction_s'][what] * 1e3:.0f} ms",
        ]
        for what, step in s["maintenance_transaction_s"].items()
    ]
    commit = s["cycle_commit_s"]
    rows += [
        [
            "a cycle's commit, median / max",
            f"{commit['median'] * 1e3:.0f} / {commit['max'] * 1e3:.0f} ms",
        ],
        ["insert µs a result, before / after", _pair(stmt)],
        ["with the commit, before / after", _pair(whole)],
    ]
    return "\n".join(
        [
            f"bench.storage — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}; "
            f"load {data['load_at_start']} → {data['load_at_end']}",
            f"{data['checks']:,} checks every {data['interval_s']} s, {s['hours']} simulated hours",
            "",
            table(["figure", "value"], rows),
        ]
    )


def _pair(figures: dict[str, float]) -> str:
    return f"{figures['before']} / {figures['after']} ({figures['after_vs_before']:.2f}x)"


def main() -> None:
    p = parser("Database bytes, rollup time and commit cost at thousands of checks.")
    p.add_argument("--checks", type=int, default=10_000, help="checks, each run every 60 s")
    p.add_argument("--hours", type=int, default=10, help="simulated hours of cycles")
    p.add_argument("--rounds", type=int, default=5, help="rounds of the commit comparison")
    args = p.parse_args()
    isolate_this_process()
    quiet_logs()
    data = run(max(1, args.checks), max(1, args.hours), max(1, args.rounds))
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
