"""Check results in the state database: every run of every check, pruned after retention.

Rows hold what the checks reported (evidence, values, labels) and never a secret value.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from daemon.models import CheckResult
from daemon.store.database import Database
from daemon.util.time import db_ts


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

    def prune(self, older_than: datetime) -> int:
        """Delete results started before `older_than`; returns how many."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM check_results WHERE started_at < ?", (db_ts(older_than),)
            )
            return cursor.rowcount


def insert_results(conn: sqlite3.Connection, results: list[CheckResult]) -> None:
    """Part of a cycle's transaction (`Incidents.commit_cycle`)."""
    conn.executemany(
        "INSERT INTO check_results (check_name, status, started_at, latency_ms, subject, "
        "evidence, values_json, labels_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.check,
                r.status,
                db_ts(r.started_at),
                r.latency_ms,
                r.subject,
                r.evidence,
                json.dumps(r.values),
                json.dumps(r.labels),
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
    )
