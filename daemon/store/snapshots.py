"""Baseline snapshots: each check's baseline windows as bytes (`daemon.engine.snapshots`), so a
restart restores them and reads only the results stored after them instead of ~2,000 rows a
check.

Owns `baseline_snapshots` (migration `MIGRATION` below, appended in `schema`): one row a check,
rewritten whole when its windows changed. `covers` is the start time of the newest result the
windows were given, as stored in `check_results.started_at`, so the results to feed after a
restore are those started after it. A row is only a cache: a lost or damaged one costs a
rebuild from results, never a wrong window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from daemon.util.time import db_ts

if TYPE_CHECKING:  # `schema` imports this module's MIGRATION; `database` imports `schema`
    from daemon.store.database import Database

MIGRATION = """
CREATE TABLE baseline_snapshots (check_name TEXT PRIMARY KEY, taken_at TEXT NOT NULL,
    covers TEXT NOT NULL, data BLOB NOT NULL);
"""
"""The schema change that adds this repository's table."""

READ_BATCH = 500
"""Checks read a statement (bounded `IN` lists on both backends)."""


class Snapshots:
    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, rows: Sequence[tuple[str, datetime, bytes]], taken_at: datetime) -> None:
        """Store (or replace) the snapshots of some checks: (check, covers, bytes), in one
        short transaction (the daemon writes a few hundred checks at a time)."""
        if not rows:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO baseline_snapshots (check_name, taken_at, covers, data) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (check_name) DO UPDATE SET "
                "taken_at = excluded.taken_at, covers = excluded.covers, data = excluded.data",
                [(check, db_ts(taken_at), db_ts(covers), data) for check, covers, data in rows],
            )

    def read(self, checks: Sequence[str]) -> Mapping[str, tuple[datetime, bytes]]:
        """The stored snapshots of `checks` (those that have one): check → (covers, bytes)."""
        found: dict[str, tuple[datetime, bytes]] = {}
        with self.db.transaction(write=False) as conn:
            for start in range(0, len(checks), READ_BATCH):
                part = checks[start : start + READ_BATCH]
                marks = ", ".join("?" for _ in part)
                rows = conn.execute(
                    "SELECT check_name, covers, data FROM baseline_snapshots "  # noqa: S608
                    f"WHERE check_name IN ({marks})",
                    tuple(part),
                ).fetchall()
                for check, covers, data in rows:
                    found[check] = (datetime.fromisoformat(covers), bytes(data))
        return found

    def prune(self, older_than: datetime) -> int:
        """Drop snapshots covering nothing after `older_than` (every sample in them has aged
        out of its window, or the check is gone); returns how many."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM baseline_snapshots WHERE covers < ?", (db_ts(older_than),)
            )
            return int(cursor.rowcount)

    def size(self) -> tuple[int, int]:
        """(rows, bytes of snapshot data) stored: what the table costs."""
        with self.db.transaction(write=False) as conn:
            rows, size = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM baseline_snapshots"
            ).fetchone()
        return int(rows), int(size)
