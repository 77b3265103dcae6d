"""The state database: one SQLite file (WAL, synchronous=FULL) in the state directory.

It must never lose a committed row on kill -9 or power loss, never store a secret value (only
what the engine and the renderer hand it), and never touch the network.

Tables (all timestamps are ISO-8601 UTC text with microseconds, so they sort as text):

- `check_results`: one row per `CheckResult` — check_name, status, started_at, latency_ms,
  subject, evidence, values_json, labels_json. Pruned by `prune` (retention).
- `engine_state`: one row (id = 1) holding the `EngineState` model as JSON.
- `incidents`: id (assigned by the engine), fingerprint, check_name, severity, status
  ('open' | 'resolved'), opened_at, resolved_at, data (the whole `Incident` as JSON).
- `incident_events`: autoincrement id, incident_id → incidents, kind, at, data (the
  `IncidentEvent` as JSON).
- `outbox`: notifications to deliver — event_id → incident_events (NULL for reports and
  other messages outside a cycle), target name, title, body, notify_type, created_at,
  next_attempt_at, attempts, last_error, status ('pending' | 'delivered' | 'failed'),
  delivered_at, updated_at, payload (the structured JSON payload webhook targets POST;
  NULL on rows queued before schema version 3).
- `ledger`, `budget_reservations`, `budget_notices`, `routing_overrides`: owned by
  `daemon.ledger`, which reaches them through `transaction()`.
- `sweep_runs`: one row per sweep run — id (text), sweep, kind, started_at, finished_at,
  status ('ok' | 'partial' | 'failed'), notified (its changes were routed to targets), data
  (rule errors, report paths, summary as JSON). `sweep_findings`: the run's findings — run_id,
  finding_id, rule, severity, state ('new' | 'open' | 'resolved' | 'unknown'), muted,
  first_seen, data (the `Finding` as JSON, plus what changed). Outbox rows may carry an
  `attach` path (a report file) since version 5.

The schema version is `PRAGMA user_version` (see `_MIGRATIONS`). One connection serves every
thread, serialised by a lock; every public method is one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from daemon.errors import StateError
from daemon.models import (
    CheckResult,
    EngineState,
    Incident,
    IncidentEvent,
    Investigation,
)
from daemon.store_outbox import (
    OUTBOX_STATUSES,
    NotifyType,
    OutboxItem,
    OutboxMixin,
    OutboxRow,
    OutboxStatus,
    _insert_outbox,
)
from daemon.store_schema import (
    SCHEMA_VERSION,
    _configure,
    _migrate,
    _rowid,
    _ts,
    _utcnow,
)
from daemon.store_sweeps import (
    FindingState,
    SweepMixin,
    SweepRunRecord,
    SweepStatus,
    TrackedFinding,
)

DB_NAME = "watchkeeper.db"

__all__ = [
    "DB_NAME",
    "OUTBOX_STATUSES",
    "SCHEMA_VERSION",
    "FindingState",
    "NotifyType",
    "OutboxItem",
    "OutboxRow",
    "OutboxStatus",
    "Store",
    "SweepRunRecord",
    "SweepStatus",
    "TrackedFinding",
]


class Store(OutboxMixin, SweepMixin):
    """The one place state is read and written. Build it with `Store.open(state_dir)`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> Store:
        """Create the directory (0700) and database if needed, and migrate it to this code's
        schema. Raises StateError when the database cannot be used."""
        path = state_dir / DB_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not path.exists()
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from exc
        try:
            if created:
                os.chmod(path, 0o600)
            _configure(conn)
            _migrate(conn, path)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StateError(
                    f"cannot use the state database {path}: {exc}; move it aside or choose "
                    "another daemon.state_dir"
                ) from exc
            raise
        return cls(path, conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise StateError(f"the state database {self.path} is closed")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path}: {exc}") from exc

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction on the shared connection, under the store's lock, for a module that
        owns its own tables (`daemon.ledger`). `immediate` takes SQLite's write lock at BEGIN,
        so a read-then-write decision holds against other threads and other processes; False
        gives a read snapshot. Commits on success, rolls back on any exception; SQLite errors
        surface as StateError."""
        with self._tx(write=immediate) as conn:
            yield conn

    # -- one cycle ------------------------------------------------------------------------

    def commit_cycle(
        self,
        results: list[CheckResult],
        state: EngineState,
        events: list[IncidentEvent],
        resolved: list[Incident],
        outbox: list[OutboxItem],
        *,
        now: datetime | None = None,
    ) -> None:
        """Write one pipeline cycle atomically: all of it or (after a crash) none of it.
        `now` stamps the outbox rows (default: the wall clock)."""
        stamp = _ts(now or _utcnow())
        with self._tx() as conn:
            _insert_results(conn, results)
            conn.execute(
                "INSERT INTO engine_state (id, data, updated_at) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                (state.model_dump_json(), stamp),
            )
            for incident in [*state.incidents.values(), *resolved]:
                _upsert_incident(conn, incident)
            event_ids = [_insert_event(conn, event) for event in events]
            for item in outbox:
                index = item.event_index
                event_id = None if index is None else event_ids[index]
                _insert_outbox(conn, item, event_id, stamp)

    # -- reads ----------------------------------------------------------------------------

    def load_engine_state(self) -> EngineState:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT data FROM engine_state WHERE id = 1").fetchone()
        if row is None:
            return EngineState()
        try:
            return EngineState.model_validate_json(row[0])
        except ValidationError as exc:
            raise StateError(
                f"{self.path}: the stored engine state does not match this version "
                f"({exc.error_count()} problems); restore a backup or move the database aside"
            ) from exc

    def last_results(self) -> dict[str, list[CheckResult]]:
        """The latest run of each check: every result sharing that check's newest started_at."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT r.* FROM check_results r JOIN (SELECT check_name, MAX(started_at) AS m "
                "FROM check_results GROUP BY check_name) l "
                "ON r.check_name = l.check_name AND r.started_at = l.m ORDER BY r.id"
            ).fetchall()
        latest: dict[str, list[CheckResult]] = {}
        for row in rows:
            latest.setdefault(row["check_name"], []).append(_result(row))
        return latest

    def recent_results(self, check: str, limit: int = 50) -> list[CheckResult]:
        """Newest first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM check_results WHERE check_name = ? "
                "ORDER BY started_at DESC, id DESC LIMIT ?",
                (check, limit),
            ).fetchall()
        return [_result(row) for row in rows]

    def list_incidents(self, include_resolved: bool, limit: int = 100) -> list[Incident]:
        """Newest first."""
        where = "" if include_resolved else "WHERE status = 'open' "
        with self._tx(write=False) as conn:
            rows = conn.execute(
                f"SELECT data FROM incidents {where}ORDER BY opened_at DESC, id DESC LIMIT ?",  # noqa: S608 - constant fragment
                (limit,),
            ).fetchall()
        return [Incident.model_validate_json(row[0]) for row in rows]

    def get_incident(self, incident_id: int) -> tuple[Incident, list[IncidentEvent]] | None:
        with self._tx(write=False) as conn:
            row = conn.execute("SELECT data FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            events = conn.execute(
                "SELECT data FROM incident_events WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            ).fetchall()
        if row is None:
            return None
        return (
            Incident.model_validate_json(row[0]),
            [IncidentEvent.model_validate_json(event[0]) for event in events],
        )

    # -- investigations (root-cause analyses) ---------------------------------------------

    def add_investigation(self, record: Investigation) -> int:
        """Record an investigation, or that one was skipped, with no message."""
        with self._tx() as conn:
            return _insert_investigation(conn, record)

    def commit_investigation(
        self,
        record: Investigation,
        event: IncidentEvent,
        outbox: list[OutboxItem],
        *,
        now: datetime | None = None,
    ) -> int:
        """The investigation, its `investigation` event and its messages: all or nothing, so a
        restart neither loses nor repeats the follow-up. `outbox` items refer to `event`."""
        stamp = _ts(now or _utcnow())
        with self._tx() as conn:
            record_id = _insert_investigation(conn, record)
            event_id = _insert_event(conn, event)
            for item in outbox:
                _insert_outbox(conn, item, event_id, stamp)
        return record_id

    def latest_investigation(self, incident_id: int) -> Investigation | None:
        found = self.investigations(incident_id)
        return found[-1] if found else None

    def investigations(self, incident_id: int) -> list[Investigation]:
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT id, data FROM investigations WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            ).fetchall()
        return [
            Investigation.model_validate_json(r[1]).model_copy(update={"id": r[0]}) for r in rows
        ]

    # -- retention ------------------------------------------------------------------------

    def prune(self, older_than: datetime) -> int:
        """Delete check results started before `older_than`, and delivered or failed outbox
        rows created before it. Open incidents, events and pending rows are never touched.
        Returns the number of rows deleted."""
        cutoff = _ts(older_than)
        with self._tx() as conn:
            results = conn.execute("DELETE FROM check_results WHERE started_at < ?", (cutoff,))
            outbox = conn.execute(
                "DELETE FROM outbox WHERE status IN ('delivered', 'failed') AND created_at < ?",
                (cutoff,),
            )
            return results.rowcount + outbox.rowcount

    # -- window queries (the daily digest) --------------------------------------------------

    def result_counts(self, since: datetime, until: datetime) -> dict[str, dict[str, int]]:
        """Results started in [since, until): check name → status → count."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT check_name, status, COUNT(*) FROM check_results "
                "WHERE started_at >= ? AND started_at < ? GROUP BY check_name, status",
                (_ts(since), _ts(until)),
            ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        for check, status, count in rows:
            counts.setdefault(check, {})[status] = count
        return counts

    def incidents_between(self, since: datetime, until: datetime) -> list[Incident]:
        """Incidents opened or resolved in [since, until), and every one still open; oldest
        first."""
        window = (_ts(since), _ts(until)) * 2
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT data FROM incidents WHERE status = 'open' "
                "OR (opened_at >= ? AND opened_at < ?) OR (resolved_at >= ? AND resolved_at < ?) "
                "ORDER BY opened_at, id",
                window,
            ).fetchall()
        return [Incident.model_validate_json(row[0]) for row in rows]


def _insert_results(conn: sqlite3.Connection, results: list[CheckResult]) -> None:
    conn.executemany(
        "INSERT INTO check_results (check_name, status, started_at, latency_ms, subject, "
        "evidence, values_json, labels_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.check,
                r.status,
                _ts(r.started_at),
                r.latency_ms,
                r.subject,
                r.evidence,
                json.dumps(r.values),
                json.dumps(r.labels),
            )
            for r in results
        ],
    )


_UPSERT_INCIDENT = """
INSERT INTO incidents (id, fingerprint, check_name, severity, status, opened_at, resolved_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint,
    check_name = excluded.check_name, severity = excluded.severity, status = excluded.status,
    opened_at = excluded.opened_at, resolved_at = excluded.resolved_at, data = excluded.data
"""


def _upsert_incident(conn: sqlite3.Connection, incident: Incident) -> None:
    resolved_at = None if incident.resolved_at is None else _ts(incident.resolved_at)
    conn.execute(
        _UPSERT_INCIDENT,
        (
            incident.id,
            incident.fingerprint,
            incident.check,
            incident.severity.value,
            incident.status,
            _ts(incident.opened_at),
            resolved_at,
            incident.model_dump_json(),
        ),
    )


def _insert_investigation(conn: sqlite3.Connection, record: Investigation) -> int:
    cursor = conn.execute(
        "INSERT INTO investigations (incident_id, at, data) VALUES (?, ?, ?)",
        (record.incident_id, _ts(record.at), record.model_dump_json(exclude={"id"})),
    )
    return _rowid(cursor)


def _insert_event(conn: sqlite3.Connection, event: IncidentEvent) -> int:
    cursor = conn.execute(
        "INSERT INTO incident_events (incident_id, kind, at, data) VALUES (?, ?, ?, ?)",
        (event.incident_id, event.kind, _ts(event.at), event.model_dump_json()),
    )
    return _rowid(cursor)


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
