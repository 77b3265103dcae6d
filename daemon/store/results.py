"""Check results in the state database: every run of every check, pruned after retention.

Rows hold what the checks reported (evidence, values, labels) and never a secret value.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from daemon.models import CheckResult
from daemon.store.database import Database
from daemon.store.rollups import PRUNE_BATCH, Bucket, rolled_counts, tiers
from daemon.util.time import db_ts
from daemon.util.uptime import RUN_RANK, RunCounts

_RANKED = [status for status, _ in sorted(RUN_RANK.items(), key=lambda item: item[1])]
_WORST = (
    "MAX(CASE status WHEN 'failing' THEN 3 WHEN 'error' THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END)"
)


class Figures(NamedTuple):
    """What baselines need of one stored result (`Results.figures`)."""

    check: str
    status: str
    started_at: datetime
    subject: str | None
    latency_ms: float | None
    values: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One run of a check: its results' shared start, worst status, and that result's evidence."""

    started_at: datetime
    status: str
    evidence: str
    results: int
    runs: int = 1
    """How many runs this stands for: 1, or a rollup bucket's (`Run.of`)."""
    length_s: float = 0.0
    """How long a rollup bucket lasts (0 for one run: it lasts the check's period)."""

    @classmethod
    def of(cls, bucket: Bucket) -> Run:
        """A rollup bucket as one stretch of runs: its worst status, and its counts as the
        evidence (a bucket keeps no result's text)."""
        counts = bucket.runs
        tally = [(getattr(counts, s), s) for s in reversed(_RANKED) if getattr(counts, s)]
        status = tally[0][1] if tally else "ok"
        evidence = "rolled up: " + ", ".join(f"{n:,} {s}" for n, s in tally)
        return cls(bucket.start, status, evidence, bucket.results, counts.total, bucket.size_s)


class Results:
    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self) -> dict[str, list[CheckResult]]:
        """The latest run of each check: every result sharing that check's newest started_at."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT r.* FROM check_results r JOIN (SELECT check_name, MAX(started_at) AS m "
                "FROM check_results GROUP BY check_name) l "
                "ON r.check_name = l.check_name AND r.started_at = l.m ORDER BY r.id"
            ).fetchall()
        latest: dict[str, list[CheckResult]] = {}
        for row in rows:
            latest.setdefault(row["check_name"], []).append(_result(row))
        return latest

    def recent(self, check: str, limit: int = 50) -> list[CheckResult]:
        """Newest first."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM check_results WHERE check_name = ? "
                "ORDER BY started_at DESC, id DESC LIMIT ?",
                (check, limit),
            ).fetchall()
        return [_result(row) for row in rows]

    def figures(self, check: str, limit: int, after: datetime | None = None) -> list[Figures]:
        """The latest `limit` results of `check` (started after `after`, if given: what a
        restored baseline snapshot does not cover), newest first, with only what baselines
        read: seeding 10,000 checks' windows at start-up reads millions of rows, so no model
        is built and neither evidence nor labels are read."""
        since = "" if after is None else "AND started_at > ? "
        params = (check, limit) if after is None else (check, db_ts(after), limit)
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT status, started_at, subject, latency_ms, values_json "  # noqa: S608
                f"FROM check_results WHERE check_name = ? {since}"
                "ORDER BY started_at DESC, id DESC LIMIT ?",
                params,
            ).fetchall()
        parse, loads = datetime.fromisoformat, json.loads
        return [
            Figures(check, status, parse(started), subject, latency, loads(values))
            for status, started, subject, latency, values in rows
        ]

    def counts(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Results started in [since, until): check name → status → count."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT check_name, status, COUNT(*) FROM check_results "
                "WHERE started_at >= ? AND started_at < ? GROUP BY check_name, status",
                (db_ts(since), db_ts(until)),
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for check, status, count in rows:
            counts.setdefault(check, {})[status] = count
        return counts

    def oldest(self) -> datetime | None:
        """Since when results are stored, raw or rolled up (retention prunes before it)."""
        with self.db.transaction(write=False) as conn:
            raw = conn.execute("SELECT MIN(started_at) FROM check_results").fetchone()[0]
            rolled = conn.execute("SELECT MIN(start_s) FROM check_rollups").fetchone()[0]
        found = [] if raw is None else [datetime.fromisoformat(raw)]
        if rolled is not None:
            found.append(datetime.fromtimestamp(int(rolled), UTC))
        return min(found, default=None)

    def run_counts(
        self, since: Sequence[datetime], until: datetime, *, exact: Collection[str] = ()
    ) -> dict[str, list[RunCounts]]:
        """Per check, one RunCounts per `since` bound: runs started in [bound, until), each
        with its worst result's status (daemon.util.uptime says why this way).

        Rows are runs for most checks (one result per run): those are counted from the
        (check_name, started_at) index alone, and only the non-ok rows are read from the table.
        The checks named in `exact` may store several results per run and are counted run by
        run. One read transaction, so every figure comes from the same snapshot."""
        marks = [db_ts(s) for s in since]
        lo, hi = min(marks), db_ts(until)
        sums = ", ".join("SUM(started_at >= ?)" for _ in marks)
        with self.db.transaction(write=False) as conn:
            # INDEXED BY: the covering index streams per check; SQLite would otherwise pick
            # the time index and sort every row (measured 3.6x slower on 10M rows).
            rows = conn.execute(
                f"SELECT check_name, {sums} FROM check_results "  # noqa: S608 - placeholders only
                "INDEXED BY check_results_by_check "
                "WHERE started_at >= ? AND started_at < ? GROUP BY check_name",
                (*marks, lo, hi),
            ).fetchall()
            totals = {row[0]: list(row[1:]) for row in rows}
            bad = _non_ok_runs(conn, lo, hi)
            runs = {name: _runs_of(conn, name, lo, hi) for name in exact if name in totals}
            rolled = rolled_counts(conn, since, until, tiers(conn))
        counts: dict[str, list[RunCounts]] = {}
        for name, per_bound in totals.items():
            if name in runs:
                tallies = [RunCounts() for _ in marks]
                for started, rank in runs[name]:
                    tallies = _tally(tallies, marks, started, rank)
            else:
                tallies = [RunCounts(ok=n) for n in per_bound]
                for started, rank in bad.get(name, []):
                    tallies = _tally(tallies, marks, started, rank, from_ok=True)
            counts[name] = tallies
        for name, extra in rolled.items():
            mine = counts.get(name, [RunCounts() for _ in marks])
            counts[name] = [a.plus(b) for a, b in zip(mine, extra, strict=True)]
        return counts

    def runs(self, check: str, since: datetime, until: datetime) -> list[Run]:
        """Every run of `check` started in [since, until), oldest first."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT started_at, status, evidence FROM check_results WHERE check_name = ? "
                "AND started_at >= ? AND started_at < ? ORDER BY started_at, id",
                (check, db_ts(since), db_ts(until)),
            ).fetchall()
        runs: list[Run] = []
        for started, status, evidence in rows:
            last = runs[-1] if runs else None
            if last is not None and db_ts(last.started_at) == started:
                worse = RUN_RANK.get(status, 3) > RUN_RANK.get(last.status, 3)
                runs[-1] = Run(
                    last.started_at,
                    status if worse else last.status,
                    evidence if worse else last.evidence,
                    last.results + 1,
                )
            else:
                runs.append(Run(datetime.fromisoformat(started), status, evidence, 1))
        return runs

    # -- sharded mode: every node stores its results, the leader evaluates them --------------

    def add(self, results: list[CheckResult]) -> int:
        """Store a node's results on their own (sharded mode; the leader evaluates them later,
        `since`); returns the id of the last one stored (0: none)."""
        with self.db.transaction() as conn:
            insert_results(conn, results)
            row = conn.execute("SELECT MAX(id) FROM check_results").fetchone()
        return int(row[0] or 0)

    def since(self, after: int, limit: int) -> list[tuple[int, CheckResult]]:
        """Results stored after id `after`, oldest first, at most `limit`. Every write
        transaction takes the database's one write lock (SQLite's, PostgreSQL's advisory lock)
        before it inserts, so ids become visible in order: none can appear later below a
        cursor already read past."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM check_results WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [(int(row["id"]), _result(row)) for row in rows]

    def last_id(self) -> int:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT MAX(id) FROM check_results").fetchone()
        return int(row[0] or 0)

    def latest_from(self, check: str, locations: Collection[str]) -> dict[str, list[CheckResult]]:
        """The latest run of `check` from each of `locations`: its results sharing that
        location's newest started_at. Walks the (check, started_at) index from the newest row
        back, which for a vantage check interleaving a few locations is a few rows each."""
        found: dict[str, list[CheckResult]] = {}
        with self.db.transaction(write=False) as conn:
            for location in locations:
                row = conn.execute(
                    "SELECT started_at FROM check_results WHERE check_name = ? AND location = ? "
                    "ORDER BY started_at DESC LIMIT 1",
                    (check, location),
                ).fetchone()
                if row is None:
                    continue
                rows = conn.execute(
                    "SELECT * FROM check_results WHERE check_name = ? AND location = ? "
                    "AND started_at = ? ORDER BY id",
                    (check, location, row[0]),
                ).fetchall()
                found[location] = [_result(r) for r in rows]
        return found

    def prune(self, older_than: datetime) -> int:
        """Delete results started before `older_than`; returns how many."""
        return sum(self.prune_steps(older_than))

    def prune_steps(self, older_than: datetime, batch: int = PRUNE_BATCH) -> Iterator[int]:
        """`prune` a batch a transaction (an hour at 10,000 checks is 600,000 rows: one
        DELETE would hold the write lock for seconds); yields rows deleted."""
        cutoff = db_ts(older_than)
        while True:
            with self.db.transaction() as conn:
                removed = conn.execute(
                    "DELETE FROM check_results WHERE id IN (SELECT id FROM check_results "
                    "WHERE started_at < ? ORDER BY started_at LIMIT ?)",
                    (cutoff, batch),
                ).rowcount
            yield removed
            if removed < batch:
                return


INSERT_RESULT = (
    "INSERT INTO check_results (check_name, status, started_at, latency_ms, subject, "
    "evidence, values_json, labels_json, location) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_results(conn: sqlite3.Connection, results: list[CheckResult]) -> None:
    """Part of a cycle's transaction (`Incidents.commit_cycle`): one prepared statement for
    every row (executemany). Empty values and labels — most results' — are the constant
    `{}`, not a JSON dump each."""
    dumps = json.dumps
    conn.executemany(
        INSERT_RESULT,
        [
            (
                r.check,
                r.status,
                db_ts(r.started_at),
                r.latency_ms,
                r.subject,
                r.evidence,
                dumps(r.values) if r.values else "{}",
                dumps(r.labels) if r.labels else "{}",
                r.location,
            )
            for r in results
        ],
    )


def _result(row: sqlite3.Row) -> CheckResult:
    return CheckResult(
        check=row["check_name"],
        status=row["status"],
        evidence=row["evidence"],
        started_at=datetime.fromisoformat(row["started_at"]),
        latency_ms=row["latency_ms"],
        subject=row["subject"],
        values=json.loads(row["values_json"]),
        labels=json.loads(row["labels_json"]),
        location=row["location"],
    )


def _non_ok_runs(conn: sqlite3.Connection, lo: str, hi: str) -> dict[str, list[tuple[str, int]]]:
    """Runs in [lo, hi) with a result that is not ok, with their worst rank, per check. No
    index holds the status, so this reads the table: all of it, in one sequential pass, when
    the range starts at the oldest row; otherwise from the smallest row id in the range on
    (rows are written in time order, so that skips what lies before)."""
    first = conn.execute("SELECT MIN(started_at) FROM check_results").fetchone()[0]
    where = "started_at >= ? AND started_at < ? AND status != 'ok'"
    params: tuple[str | int, ...] = (lo, hi)
    if first is not None and first < lo:
        start = conn.execute(
            "SELECT MIN(id) FROM check_results WHERE started_at >= ? AND started_at < ?", (lo, hi)
        ).fetchone()[0]
        where, params = "id >= ? AND " + where, (start or 0, lo, hi)
    rows = conn.execute(
        f"SELECT check_name, started_at, {_WORST} FROM check_results NOT INDEXED "  # noqa: S608
        f"WHERE {where} GROUP BY check_name, started_at",
        params,
    ).fetchall()
    found: dict[str, list[tuple[str, int]]] = {}
    for name, started, rank in rows:
        found.setdefault(name, []).append((started, rank))
    return found


def _runs_of(conn: sqlite3.Connection, check: str, lo: str, hi: str) -> list[tuple[str, int]]:
    return [
        (started, rank)
        for started, rank in conn.execute(
            f"SELECT started_at, {_WORST} FROM check_results "  # noqa: S608 - a constant
            "WHERE check_name = ? AND started_at >= ? AND started_at < ? GROUP BY started_at",
            (check, lo, hi),
        )
    ]


def _tally(
    tallies: list[RunCounts], marks: list[str], started: str, rank: int, *, from_ok: bool = False
) -> list[RunCounts]:
    """Count one run of worst `rank` in every window it falls in (moving it out of ok when the
    window's rows were first counted as ok)."""
    status = _RANKED[rank]
    out = []
    for tally, mark in zip(tallies, marks, strict=True):
        if started >= mark:
            tally = tally.add(status)
            if from_ok:
                tally = tally.add("ok", -1)
        out.append(tally)
    return out
