"""Sweep runs and their findings in the state database, diffed run to run by daemon.sweeps.

A run, its findings and its messages are committed together; nothing here judges a finding.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from daemon.models import Finding, SweepKind
from daemon.store.database import Database
from daemon.store.outbox import OutboxItem, insert_outbox
from daemon.util.time import db_ts, utcnow

FindingState = Literal["new", "open", "resolved", "unknown"]
"""`new`; `open` (seen by the previous run too); `resolved` (seen last time, gone now);
`unknown` (seen last time, but its rule failed now: carried, never falsely resolved)."""
SweepStatus = Literal["ok", "partial", "failed"]


@dataclass(frozen=True)
class TrackedFinding:
    """A finding as one sweep run saw it, compared with the run before."""

    finding: Finding
    state: FindingState
    first_seen: datetime
    mute: str | None = None
    """Set when a mutelist entry covers it: the entry's reason (and its `until`)."""
    change: str | None = None
    """Why an `open` finding is worth telling again ("severity raised from medium")."""

    @property
    def muted(self) -> bool:
        return self.mute is not None


@dataclass(frozen=True)
class SweepRunRecord:
    """One stored sweep run. `detail` holds rule errors, report paths and the summary line."""

    id: str
    sweep: str
    kind: SweepKind
    started_at: datetime
    finished_at: datetime
    status: SweepStatus
    notified: bool
    findings: tuple[TrackedFinding, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict, compare=False)


class Sweeps:
    def __init__(self, db: Database) -> None:
        self.db = db

    def commit(
        self, run: SweepRunRecord, outbox: list[OutboxItem], *, now: datetime | None = None
    ) -> list[int]:
        """A sweep run, its findings and its messages, all or nothing. Returns outbox ids."""
        stamp = db_ts(now or utcnow())
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO sweep_runs (id, sweep, kind, started_at, finished_at, status, "
                "notified, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.sweep,
                    run.kind,
                    db_ts(run.started_at),
                    db_ts(run.finished_at),
                    run.status,
                    int(run.notified),
                    json.dumps(run.detail, ensure_ascii=False),
                ),
            )
            conn.executemany(
                "INSERT INTO sweep_findings (run_id, finding_id, rule, severity, state, muted, "
                "first_seen, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.id,
                        t.finding.id,
                        t.finding.rule,
                        t.finding.severity.value,
                        t.state,
                        int(t.muted),
                        db_ts(t.first_seen),
                        json.dumps(
                            {
                                "finding": t.finding.model_dump(mode="json"),
                                "mute": t.mute,
                                "change": t.change,
                            },
                            ensure_ascii=False,
                        ),
                    )
                    for t in run.findings
                ],
            )
            return [insert_outbox(conn, item, None, stamp) for item in outbox]

    def last_run(self, sweep: str, *, notified: bool = False) -> SweepRunRecord | None:
        """The newest run of `sweep` (only runs whose changes were notified, if asked)."""
        only = " AND notified = 1" if notified else ""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                f"SELECT * FROM sweep_runs WHERE sweep = ?{only} "  # noqa: S608 - constant fragment
                "ORDER BY started_at DESC, rowid DESC LIMIT 1",
                (sweep,),
            ).fetchone()
            return None if row is None else _sweep_run(conn, row)

    def latest_runs(self) -> list[SweepRunRecord]:
        """The newest run of every sweep ever run, by sweep name."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT r.* FROM sweep_runs r WHERE r.rowid = (SELECT s.rowid FROM sweep_runs s "
                "WHERE s.sweep = r.sweep ORDER BY s.started_at DESC, s.rowid DESC LIMIT 1) "
                "ORDER BY r.sweep"
            ).fetchall()
            return [_sweep_run(conn, row) for row in rows]


def _sweep_run(conn: sqlite3.Connection, row: sqlite3.Row) -> SweepRunRecord:
    found = conn.execute(
        "SELECT state, first_seen, data FROM sweep_findings WHERE run_id = ? ORDER BY rowid",
        (row["id"],),
    ).fetchall()
    findings = []
    for state, first_seen, data in found:
        stored = json.loads(data)
        findings.append(
            TrackedFinding(
                finding=Finding.model_validate(stored["finding"]),
                state=state,
                first_seen=datetime.fromisoformat(first_seen),
                mute=stored["mute"],
                change=stored["change"],
            )
        )
    return SweepRunRecord(
        id=row["id"],
        sweep=row["sweep"],
        kind=row["kind"],
        started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]),
        status=row["status"],
        notified=bool(row["notified"]),
        findings=tuple(findings),
        detail=json.loads(row["data"]),
    )
