"""Per-check minute and hour aggregates of check results, so uptime and history outlive raw
retention at a fraction of its size.

A bucket holds one check's runs that *started* in [start, start + size): their count by worst
status (a run is every result sharing a `started_at`, as `daemon.util.uptime` defines it, so a
run never straddles two buckets and counts from buckets add up exactly to counts from rows),
how many results they had, and latency percentiles computed exactly (nearest rank) from the
raw rows at rollup time — p50, p95, p99 and the maximum.

Rolling up is incremental and idempotent: `rollup_marks` records, per size, up to when every
bucket is written; a step recomputes whole buckets from the raw rows and upserts them, and a
mark moves only after its whole span is written, so a crash part-way and a rerun give the same
rows. Only periods closed for `LATE` are rolled up (a slow check commits after its start).
Each step is one short write transaction over a chunk of checks (about `BATCH_ROWS` raw rows),
so a cycle's commit waits at most one step, never a whole pass.

Owns `check_rollups` and `rollup_marks` (migration `MIGRATION` below, appended in `schema`).
Bucket starts are POSIX seconds (integers): 8 bytes instead of 32 for text, in the key too.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from daemon.util.time import db_ts
from daemon.util.uptime import RUN_RANK, RunCounts

if TYPE_CHECKING:  # `schema` imports this module's MIGRATION; `database` imports `schema`
    import sqlite3

    from daemon.store.database import Database

MIGRATION = """
CREATE TABLE check_rollups (check_name TEXT NOT NULL, size_s INTEGER NOT NULL,
    start_s INTEGER NOT NULL, results INTEGER NOT NULL, ok INTEGER NOT NULL,
    degraded INTEGER NOT NULL, error INTEGER NOT NULL, failing INTEGER NOT NULL,
    latency_n INTEGER NOT NULL, p50_ms REAL, p95_ms REAL, p99_ms REAL, max_ms REAL,
    PRIMARY KEY (check_name, size_s, start_s)) WITHOUT ROWID;
CREATE INDEX check_rollups_by_time ON check_rollups (size_s, start_s);
CREATE TABLE rollup_marks (size_s INTEGER PRIMARY KEY, done_until INTEGER NOT NULL);
"""
"""The schema change that adds this repository's tables (one migration of its own)."""

MINUTE = 60
HOUR = 3600
SIZES = (MINUTE, HOUR)
LATE = timedelta(minutes=15)
"""A period is rolled up once it ended this long ago: a result is stored with its start time
when its cycle commits, after the check's timeout at worst (at most a few minutes)."""
BATCH_ROWS = 5_000
"""Raw rows read (and their buckets written) in one transaction: tens of milliseconds."""
CATCH_UP_HOURS = 24
"""A span behind by whole hours covers up to this many (fewer checks a step, fewer steps)."""
MAX_CHUNK = 500
"""At most this many checks a step (`IN (…)` placeholders)."""
PRUNE_BATCH = 5_000
"""Rows deleted in one transaction when pruning results or buckets."""
_STATUSES = tuple(RUN_RANK)
_COLUMNS = (
    "check_name, size_s, start_s, results, ok, degraded, error, failing, latency_n, "
    "p50_ms, p95_ms, p99_ms, max_ms"
)


@dataclass(frozen=True)
class Bucket:
    """One check's runs started in [start, start + size)."""

    check: str
    size_s: int
    start_s: int
    results: int
    runs: RunCounts
    latency_n: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, UTC)

    def row(self) -> tuple[object, ...]:
        r = self.runs
        return (
            self.check,
            self.size_s,
            self.start_s,
            self.results,
            r.ok,
            r.degraded,
            r.error,
            r.failing,
            self.latency_n,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
        )


_PREFIX = {MINUTE: 16, HOUR: 13}
"""How much of `2026-11-10T12:34:56.789012+00:00` names its minute, its hour."""
_SUFFIX = {MINUTE: ":00+00:00", HOUR: ":00:00+00:00"}
_QUANTILES = (0.5, 0.95, 0.99, 1.0)
"""p50, p95, p99 and the maximum, by nearest rank (a measured value, never interpolated)."""


def epoch(value: datetime | str) -> float:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.timestamp()


def floor_to(seconds: float, size: int) -> int:
    return int(seconds // size) * size


def summarize(
    rows: Iterable[tuple[str, str, str, float | None]], size: int, since: int = 0
) -> list[Bucket]:
    """Buckets of `size` (MINUTE or HOUR) from raw (check, started_at, status, latency_ms)
    rows; rows whose bucket starts before `since` are left out. Pure: the rollup's whole
    arithmetic. A row's bucket is a prefix of its stored UTC text (`db_ts`), not a parse."""
    cut = _PREFIX[size]
    floor = _ts(since)[:cut]
    groups: dict[tuple[str, str], tuple[dict[str, int], list[float], list[int]]] = {}
    rank_of = RUN_RANK.get
    for check, started, status, latency in rows:
        prefix = started[:cut]
        if prefix < floor:
            continue
        group = groups.get((check, prefix))
        if group is None:
            group = groups[(check, prefix)] = ({}, [], [0])
        per_run, latencies, results = group
        rank = rank_of(status, 3)
        if per_run.get(started, -1) < rank:
            per_run[started] = rank
        results[0] += 1
        if latency is not None:
            latencies.append(float(latency))
    out = []
    for (check, prefix), (per_run, latencies, results) in sorted(groups.items()):
        counts = [0] * len(_STATUSES)
        for rank in per_run.values():
            counts[rank] += 1
        latencies.sort()
        n = len(latencies)
        stats: tuple[float | None, ...] = (None, None, None, None)
        if n:
            stats = tuple(latencies[max(0, math.ceil(q * n) - 1)] for q in _QUANTILES)
        start = int(datetime.fromisoformat(prefix + _SUFFIX[size]).timestamp())
        out.append(Bucket(check, size, start, results[0], RunCounts(*counts), n, *stats))
    return out


class Rollups:
    def __init__(self, db: Database) -> None:
        self.db = db

    def marks(self) -> dict[int, int | None]:
        """Per size, up to when (POSIX seconds) every bucket is written; None: never."""
        with self.db.transaction(write=False) as conn:
            found = dict(conn.execute("SELECT size_s, done_until FROM rollup_marks").fetchall())
        return {size: found.get(size) for size in SIZES}

    def run(self, now: datetime) -> int:
        """Every step due (`steps`) at once: buckets written."""
        return sum(self.steps(now))

    def steps(self, now: datetime) -> Generator[int, None, None]:
        """Roll up every closed period not rolled up yet, one transaction a step; yields the
        buckets each step wrote. Run each `next()` on the store's thread: between two steps
        the daemon's commits go ahead. A span's marks move in its last step's transaction."""
        end = floor_to(epoch(now - LATE), MINUTE)
        marks = self._start_marks()
        while marks is not None:
            span = _next_span(marks, end)
            if span is None:
                return
            lo, hi, minutes_from, whole_hour = span
            moved = dict(marks)
            if minutes_from < hi:
                moved[MINUTE] = hi
            if whole_hour:
                moved[HOUR] = hi
            stored = self._stored_between(lo, hi)
            estimate, after = max(1, (hi - lo) // MINUTE), ""
            while True:
                chunk = max(1, min(MAX_CHUNK, BATCH_ROWS // estimate))
                with self.db.transaction() as conn:
                    names = _names_after(conn, after, chunk) if stored else []
                    rows = _raw_rows(conn, names, lo, hi) if names else []
                    buckets = summarize(rows, MINUTE, minutes_from)
                    if whole_hour:
                        buckets += summarize(rows, HOUR)
                    _upsert(conn, buckets)
                    if len(names) < chunk:  # the last checks: the span is whole
                        for size in SIZES:
                            if moved[size] != marks[size]:
                                _set_mark(conn, size, moved[size])
                yield len(buckets)
                if len(names) < chunk:
                    break
                estimate, after = max(1, len(rows) // len(names)), names[-1]
            marks = moved

    def _start_marks(self) -> dict[int, int] | None:
        """The marks; for a size never rolled up, the hour of the oldest stored result."""
        marks = self.marks()
        if all(m is not None for m in marks.values()):
            return {size: m for size, m in marks.items() if m is not None}
        with self.db.transaction() as conn:
            first = conn.execute("SELECT MIN(started_at) FROM check_results").fetchone()[0]
            if first is None:
                return None
            start = floor_to(epoch(first), HOUR)
            for size in SIZES:
                if marks[size] is None:
                    _set_mark(conn, size, start)
        return {size: start if m is None else m for size, m in marks.items()}

    def _stored_between(self, lo: int, hi: int) -> bool:
        with self.db.transaction(write=False) as conn:
            found = conn.execute(
                "SELECT MIN(started_at) FROM check_results WHERE started_at >= ?", (_ts(lo),)
            ).fetchone()[0]
        return found is not None and found < _ts(hi)

    def prune_steps(self, size: int, older_than: datetime) -> Iterator[int]:
        """Delete buckets of `size` that start before `older_than`, a batch a transaction."""
        cutoff = int(epoch(older_than))
        while True:
            with self.db.transaction() as conn:
                removed = conn.execute(
                    "DELETE FROM check_rollups WHERE size_s = ? AND start_s < ? AND "
                    "(check_name, size_s, start_s) IN (SELECT check_name, size_s, start_s "
                    "FROM check_rollups WHERE size_s = ? AND start_s < ? LIMIT ?)",
                    (size, cutoff, size, cutoff, PRUNE_BATCH),
                ).rowcount
            yield removed
            if removed < PRUNE_BATCH:
                return

    def history(self, check: str, since: datetime, until: datetime) -> list[Bucket]:
        """`check`'s buckets in [since, until) for the time before its raw results (`Tiers`):
        hour buckets, then minute buckets; oldest first."""
        lo, hi = math.ceil(epoch(since)), epoch(until)
        with self.db.transaction(write=False) as conn:
            at = tiers(conn)
            spans = (
                (HOUR, lo, min(hi, at.minutes_from - HOUR + 1)),
                (MINUTE, max(lo, at.minutes_from), min(hi, at.raw_from)),
            )
            rows = [
                row
                for size, start, end in spans
                if start < end
                for row in conn.execute(
                    f"SELECT {_COLUMNS} FROM check_rollups WHERE check_name = ? AND "  # noqa: S608
                    "size_s = ? AND start_s >= ? AND start_s < ? ORDER BY start_s",
                    (check, size, int(start), math.ceil(end)),
                ).fetchall()
            ]
        return [_bucket(row) for row in rows]


def _next_span(marks: dict[int, int], end: int) -> tuple[int, int, int, bool] | None:
    """The next span to roll up: [lo, hi) within one hour (or whole hours), where its minute
    buckets start (the minute mark), and whether hour buckets are due too (then lo is an hour).
    None when everything closed before `end` is rolled up."""
    hour = floor_to(min(marks[MINUTE], marks[HOUR]), HOUR)
    whole_hour = marks[HOUR] <= hour and hour + HOUR <= end
    hi = min(hour + HOUR, end)
    if whole_hour and marks[MINUTE] == hour:  # catching up: several whole hours at once
        hi = hour + HOUR * max(1, min(CATCH_UP_HOURS, (end - hour) // HOUR))
    if marks[MINUTE] >= hi and not whole_hour:
        return None
    return (hour if whole_hour else marks[MINUTE]), hi, marks[MINUTE], whole_hour


def _ts(seconds: int) -> str:
    return db_ts(datetime.fromtimestamp(seconds, UTC))


def _names_after(conn: sqlite3.Connection, after: str, limit: int) -> list[str]:
    """The next `limit` check names in the raw results, one index seek each."""
    names: list[str] = []
    while len(names) < limit:
        found = conn.execute(
            "SELECT MIN(check_name) FROM check_results WHERE check_name > ?", (after,)
        ).fetchone()[0]
        if found is None:
            break
        names.append(found)
        after = found
    return names


def _raw_rows(
    conn: sqlite3.Connection, names: list[str], lo: int, hi: int
) -> list[tuple[str, str, str, float | None]]:
    marks = ", ".join("?" for _ in names)
    return [
        (row[0], row[1], row[2], row[3])
        for row in conn.execute(
            "SELECT check_name, started_at, status, latency_ms FROM check_results "  # noqa: S608
            f"WHERE check_name IN ({marks}) AND started_at >= ? AND started_at < ?",
            (*names, _ts(lo), _ts(hi)),
        )
    ]


def _upsert(conn: sqlite3.Connection, buckets: list[Bucket]) -> None:
    if buckets:
        conn.executemany(
            f"INSERT INTO check_rollups ({_COLUMNS}) VALUES "  # noqa: S608 - a constant
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (check_name, size_s, start_s) "
            "DO UPDATE SET results = excluded.results, ok = excluded.ok, "
            "degraded = excluded.degraded, error = excluded.error, failing = excluded.failing, "
            "latency_n = excluded.latency_n, p50_ms = excluded.p50_ms, "
            "p95_ms = excluded.p95_ms, p99_ms = excluded.p99_ms, max_ms = excluded.max_ms",
            [b.row() for b in buckets],
        )


def _set_mark(conn: sqlite3.Connection, size: int, until: int) -> None:
    conn.execute(
        "INSERT INTO rollup_marks (size_s, done_until) VALUES (?, ?) "
        "ON CONFLICT (size_s) DO UPDATE SET done_until = excluded.done_until",
        (size, until),
    )


def _bucket(row: Sequence[object]) -> Bucket:
    check, size, start, results, ok, degraded, error, failing, n, p50, p95, p99, top = row
    return Bucket(
        str(check),
        int(size),  # type: ignore[call-overload]
        int(start),  # type: ignore[call-overload]
        int(results),  # type: ignore[call-overload]
        RunCounts(int(ok), int(degraded), int(error), int(failing)),  # type: ignore[call-overload]
        int(n),  # type: ignore[call-overload]
        *(None if v is None else float(v) for v in (p50, p95, p99, top)),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Tiers:
    """Which store answers for which time, so no run is counted twice: hour buckets before
    `minutes_from`, minute buckets from it to `raw_from`, raw results from `raw_from` on.
    Raw results are pruned at whole hours (`Store.maintain`), so `raw_from` is where they
    start whole; a bucket counts in a window when it starts inside it."""

    minutes_from: float
    raw_from: float


def tiers(conn: sqlite3.Connection) -> Tiers:
    first_raw = conn.execute("SELECT MIN(started_at) FROM check_results").fetchone()[0]
    first_minute = conn.execute(
        "SELECT MIN(start_s) FROM check_rollups WHERE size_s = ?", (MINUTE,)
    ).fetchone()[0]
    raw_from = math.inf if first_raw is None else float(floor_to(epoch(first_raw), MINUTE))
    minutes_from = math.inf if first_minute is None else float(-(-first_minute // HOUR) * HOUR)
    if raw_from != math.inf:
        minutes_from = min(minutes_from, float(floor_to(raw_from, HOUR)))
    return Tiers(minutes_from, raw_from)


def rolled_counts(
    conn: sqlite3.Connection, since: Sequence[datetime], until: datetime, at: Tiers
) -> dict[str, list[RunCounts]]:
    """Per check, one RunCounts per `since` bound: the runs of buckets starting in
    [bound, until) that `at` gives to the rollups (before its `raw_from`)."""
    marks = [math.ceil(epoch(s)) for s in since]
    hi = min(epoch(until), at.raw_from)
    sums = ", ".join(
        f"SUM(CASE WHEN start_s >= ? THEN {status} ELSE 0 END)"
        for _ in marks
        for status in _STATUSES
    )
    params = [m for m in marks for _ in _STATUSES]
    spans = (
        (HOUR, min(marks), min(hi, at.minutes_from - HOUR + 1)),
        (MINUTE, max(min(marks), at.minutes_from), hi),
    )
    counts: dict[str, list[RunCounts]] = {}
    for size, lo, top in spans:
        if lo >= top:
            continue
        rows = conn.execute(
            f"SELECT check_name, {sums} FROM check_rollups "  # noqa: S608 - placeholders only
            "WHERE size_s = ? AND start_s >= ? AND start_s < ? GROUP BY check_name",
            (*params, size, int(lo), math.ceil(top)),
        ).fetchall()
        for row in rows:
            got = counts.setdefault(row[0], [RunCounts() for _ in marks])
            values = [int(v or 0) for v in row[1:]]
            for i in range(len(marks)):
                part = values[i * len(_STATUSES) : (i + 1) * len(_STATUSES)]
                got[i] = got[i].plus(RunCounts(*part))
    return counts
