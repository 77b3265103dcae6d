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
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from daemon.errors import StateError
from daemon.models import (
    CheckResult,
    EngineState,
    Finding,
    Incident,
    IncidentEvent,
    Investigation,
    SweepKind,
)

DB_NAME = "watchkeeper.db"
BUSY_TIMEOUT_MS = 5000

NotifyType = Literal["failure", "warning", "success", "info"]
OutboxStatus = Literal["pending", "delivered", "failed"]
OUTBOX_STATUSES: tuple[OutboxStatus, ...] = ("pending", "delivered", "failed")

_V1 = """
CREATE TABLE check_results (id INTEGER PRIMARY KEY AUTOINCREMENT, check_name TEXT NOT NULL,
    status TEXT NOT NULL, started_at TEXT NOT NULL, latency_ms REAL, subject TEXT,
    evidence TEXT NOT NULL, values_json TEXT NOT NULL, labels_json TEXT NOT NULL);
CREATE INDEX check_results_by_check ON check_results (check_name, started_at);
CREATE INDEX check_results_by_time ON check_results (started_at);
CREATE TABLE engine_state (id INTEGER PRIMARY KEY CHECK (id = 1), data TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE incidents (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL,
    check_name TEXT NOT NULL, severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')), opened_at TEXT NOT NULL,
    resolved_at TEXT, data TEXT NOT NULL);
CREATE INDEX incidents_by_status ON incidents (status, opened_at);
CREATE TABLE incident_events (id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id), kind TEXT NOT NULL,
    at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id, id);
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER REFERENCES incident_events (id), target TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, notify_type TEXT NOT NULL,
    created_at TEXT NOT NULL, next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    delivered_at TEXT, updated_at TEXT NOT NULL);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
"""
_V2 = """
CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, task TEXT NOT NULL,
    incident_id INTEGER, sweep_id TEXT, provider TEXT NOT NULL, model TEXT NOT NULL,
    host TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost_usd TEXT,
    latency_ms REAL, outcome TEXT NOT NULL, request_bytes INTEGER NOT NULL,
    key_source TEXT NOT NULL, detail TEXT NOT NULL, local INTEGER NOT NULL);
CREATE INDEX ledger_by_time ON ledger (ts);
CREATE TABLE budget_reservations (id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL, amount_usd TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL);
CREATE TABLE budget_notices (period_key TEXT PRIMARY KEY, claimed_at TEXT NOT NULL);
CREATE TABLE routing_overrides (task TEXT PRIMARY KEY, refs_json TEXT NOT NULL,
    updated_at TEXT NOT NULL);
"""
_V3 = """
ALTER TABLE outbox ADD COLUMN payload TEXT;
"""
_V4 = """
CREATE TABLE investigations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX investigations_incident ON investigations (incident_id, id);
"""
_V5 = """
CREATE TABLE sweep_runs (id TEXT PRIMARY KEY, sweep TEXT NOT NULL, kind TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed')),
    notified INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX sweep_runs_by_sweep ON sweep_runs (sweep, started_at);
CREATE TABLE sweep_findings (run_id TEXT NOT NULL REFERENCES sweep_runs (id),
    finding_id TEXT NOT NULL, rule TEXT NOT NULL, severity TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('new', 'open', 'resolved', 'unknown')),
    muted INTEGER NOT NULL, first_seen TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, finding_id));
ALTER TABLE outbox ADD COLUMN attach TEXT;
"""
_MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
"""`_MIGRATIONS[n]` takes the schema from version n to n + 1: `;`-separated statements, run in
one transaction together with the `user_version` bump. Append; never edit a shipped one."""
SCHEMA_VERSION = len(_MIGRATIONS)


@dataclass(frozen=True)
class OutboxItem:
    """A message to queue for one target. `event_index` points into the `events` passed to
    the same `commit_cycle`, so the row records that event's database id."""

    target: str
    title: str
    body: str
    notify_type: NotifyType
    event_index: int | None = None
    payload: dict[str, Any] | None = field(default=None, compare=False)
    """The structured form (`render.event_payload` and friends) that webhook targets POST.
    Derived from the same message as title and body, so it is left out of == and hash (a
    dict is unhashable)."""
    attach: str | None = None
    """A file (a sweep report) for targets that take attachments (email); others ignore it."""


@dataclass(frozen=True)
class OutboxRow:
    """One stored outbox row; `incident_id` comes from its event (None without one)."""

    id: int
    event_id: int | None
    incident_id: int | None
    target: str
    title: str
    body: str
    notify_type: NotifyType
    created_at: datetime
    next_attempt_at: datetime
    attempts: int
    last_error: str | None
    status: OutboxStatus
    delivered_at: datetime | None
    payload: dict[str, Any] | None = None
    attach: str | None = None


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


def _ts(value: datetime) -> str:
    """Sortable UTC text; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
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

    # -- outbox ---------------------------------------------------------------------------

    def enqueue(self, items: list[OutboxItem], *, now: datetime | None = None) -> list[int]:
        """Queue messages that belong to no cycle (reports). Returns the new row ids."""
        if any(item.event_index is not None for item in items):
            raise ValueError("event_index only has a meaning inside commit_cycle")
        stamp = _ts(now or _utcnow())
        with self._tx() as conn:
            return [_insert_outbox(conn, item, None, stamp) for item in items]

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose next attempt is due, oldest first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT o.*, e.incident_id FROM outbox o "
                "LEFT JOIN incident_events e ON e.id = o.event_id "
                "WHERE o.status = 'pending' AND o.next_attempt_at <= ? ORDER BY o.id LIMIT ?",
                (_ts(now), limit),
            ).fetchall()
        return [_outbox_row(row) for row in rows]

    def next_due_at(self) -> datetime | None:
        """When the earliest pending row becomes due (None when nothing is pending)."""
        with self._tx(write=False) as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        return _dt(row[0])

    def mark_delivered(self, row_id: int, now: datetime) -> None:
        self._update_pending(
            row_id,
            "status = 'delivered', delivered_at = :now, attempts = attempts + 1",
            now=_ts(now),
        )

    def mark_retry(self, row_id: int, now: datetime, error: str, next_attempt_at: datetime) -> None:
        self._update_pending(
            row_id,
            "attempts = attempts + 1, last_error = :error, next_attempt_at = :next",
            now=_ts(now),
            error=error,
            next=_ts(next_attempt_at),
        )

    def mark_failed(self, row_id: int, now: datetime, error: str) -> None:
        """Give up on a row (too old, or undeliverable)."""
        self._update_pending(
            row_id, "status = 'failed', last_error = :error", now=_ts(now), error=error
        )

    def defer(self, row_ids: list[int], until: datetime) -> None:
        """Move pending rows to a later attempt without counting one (their target is down)."""
        with self._tx() as conn:
            conn.executemany(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
                [(_ts(until), row_id) for row_id in row_ids],
            )

    def _update_pending(self, row_id: int, assignments: str, **params: Any) -> None:
        with self._tx() as conn:
            conn.execute(
                f"UPDATE outbox SET {assignments}, updated_at = :now "  # noqa: S608 - constant fragments
                "WHERE id = :id AND status = 'pending'",
                {**params, "id": row_id},
            )

    def outbox_counts(self) -> dict[OutboxStatus, int]:
        with self._tx(write=False) as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts: dict[OutboxStatus, int] = dict.fromkeys(OUTBOX_STATUSES, 0)
        for status, count in rows:
            counts[status] = count
        return counts

    # -- sweeps ---------------------------------------------------------------------------

    def commit_sweep(
        self, run: SweepRunRecord, outbox: list[OutboxItem], *, now: datetime | None = None
    ) -> list[int]:
        """A sweep run, its findings and its messages, all or nothing. Returns outbox ids."""
        stamp = _ts(now or _utcnow())
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO sweep_runs (id, sweep, kind, started_at, finished_at, status, "
                "notified, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.sweep,
                    run.kind,
                    _ts(run.started_at),
                    _ts(run.finished_at),
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
                        _ts(t.first_seen),
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
            return [_insert_outbox(conn, item, None, stamp) for item in outbox]

    def last_sweep_run(self, sweep: str, *, notified: bool = False) -> SweepRunRecord | None:
        """The newest run of `sweep` (only runs whose changes were notified, if asked)."""
        only = " AND notified = 1" if notified else ""
        with self._tx(write=False) as conn:
            row = conn.execute(
                f"SELECT * FROM sweep_runs WHERE sweep = ?{only} "  # noqa: S608 - constant fragment
                "ORDER BY started_at DESC, rowid DESC LIMIT 1",
                (sweep,),
            ).fetchone()
            return None if row is None else _sweep_run(conn, row)

    def latest_sweep_runs(self) -> list[SweepRunRecord]:
        """The newest run of every sweep ever run, by sweep name."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                "SELECT r.* FROM sweep_runs r WHERE r.rowid = (SELECT s.rowid FROM sweep_runs s "
                "WHERE s.sweep = r.sweep ORDER BY s.started_at DESC, s.rowid DESC LIMIT 1) "
                "ORDER BY r.sweep"
            ).fetchall()
            return [_sweep_run(conn, row) for row in rows]

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


def _configure(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")  # re-read the version under the write lock
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{path} has schema version {version}, but this watchkeeper knows only up to "
                f"{SCHEMA_VERSION}: it was written by a newer release; upgrade watchkeeper or "
                "point daemon.state_dir elsewhere"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


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


def _insert_outbox(
    conn: sqlite3.Connection, item: OutboxItem, event_id: int | None, stamp: str
) -> int:
    payload = None if item.payload is None else json.dumps(item.payload, ensure_ascii=False)
    cursor = conn.execute(
        "INSERT INTO outbox (event_id, target, title, body, notify_type, created_at, "
        "next_attempt_at, updated_at, payload, attach) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event_id,
            item.target,
            item.title,
            item.body,
            item.notify_type,
            stamp,
            stamp,
            stamp,
            payload,
            item.attach,
        ),
    )
    return _rowid(cursor)


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


def _rowid(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - INSERT always sets it
        raise StateError("INSERT did not return a row id")
    return cursor.lastrowid


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


def _outbox_row(row: sqlite3.Row) -> OutboxRow:
    data = {f.name: row[f.name] for f in fields(OutboxRow)}
    for key in ("created_at", "next_attempt_at", "delivered_at"):
        data[key] = _dt(data[key])
    payload = None if data["payload"] is None else json.loads(data["payload"])
    data["payload"] = payload if isinstance(payload, dict) else None
    return OutboxRow(**data)
