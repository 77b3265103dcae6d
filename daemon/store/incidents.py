"""Incidents in the state database: the engine's state, every incident and its events, the
root-cause analyses — and the one transaction that commits a whole cycle.

A cycle is written all or nothing, so a crash never leaves an event without its messages or a
message without its event; nothing here decides anything (that is `daemon.engine`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from datetime import datetime

from pydantic import ValidationError

from daemon.errors import StateError
from daemon.models import (
    CheckResult,
    CheckState,
    EngineState,
    Incident,
    IncidentEvent,
    Investigation,
)
from daemon.store.database import Database, rowid
from daemon.store.outbox import OutboxItem, insert_outbox
from daemon.store.results import insert_results
from daemon.util.time import db_ts, utcnow


class Incidents:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- one cycle --------------------------------------------------------------------------

    def commit_cycle(
        self,
        results: list[CheckResult],
        state: EngineState,
        events: list[IncidentEvent],
        resolved: list[Incident],
        outbox: list[OutboxItem],
        *,
        now: datetime | None = None,
        changed: Collection[str] | None = None,
    ) -> None:
        """Write one pipeline cycle atomically: results, the engine state, incidents, events
        and their messages. `now` stamps the outbox rows (default: the wall clock).

        `changed` = the checks whose state may differ from what this store last committed
        (the engine's `Evaluation.touched`): only those rows are rewritten (or deleted, for a
        check no longer in `state`), so a cycle writes in proportion to what changed. None
        rewrites every check's."""
        stamp = db_ts(now or utcnow())
        with self.db.transaction() as conn:
            insert_results(conn, results)
            _write_state(conn, state, changed, stamp)
            for incident in [*state.incidents.values(), *resolved]:
                _upsert_incident(conn, incident)
            event_ids = [insert_event(conn, event) for event in events]
            for item in outbox:
                index = item.event_index
                event_id = None if index is None else event_ids[index]
                insert_outbox(conn, item, event_id, stamp)

    def engine_state(self) -> EngineState:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT data FROM engine_state WHERE id = 1").fetchone()
            checks = conn.execute("SELECT check_name, data FROM check_states").fetchall()
        if row is None:
            return EngineState()
        try:
            state = EngineState.model_validate_json(row[0])
            # Rows written before check_states existed carry the checks in the JSON itself.
            state.checks.update((n, CheckState.model_validate_json(d)) for n, d in checks)
            return state
        except ValidationError as exc:
            raise StateError(
                f"{self.db.where}: the stored engine state does not match this version "
                f"({exc.error_count()} problems); restore a backup or move the database aside"
            ) from exc

    # -- reads ------------------------------------------------------------------------------

    def recent(self, include_resolved: bool, limit: int = 100) -> list[Incident]:
        """Newest first."""
        where = "" if include_resolved else "WHERE status = 'open' "
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT data FROM incidents {where}ORDER BY opened_at DESC, id DESC LIMIT ?",  # noqa: S608 - constant fragment
                (limit,),
            ).fetchall()
        return [Incident.model_validate_json(row[0]) for row in rows]

    def get(self, incident_id: int) -> tuple[Incident, list[IncidentEvent]] | None:
        """One incident and its events, oldest first; None when there is no such incident."""
        with self.db.transaction(write=False) as conn:
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

    def between(self, since: datetime, until: datetime) -> list[Incident]:
        """Incidents opened or resolved in [since, until), and every one still open; oldest
        first."""
        window = (db_ts(since), db_ts(until)) * 2
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT data FROM incidents WHERE status = 'open' "
                "OR (opened_at >= ? AND opened_at < ?) OR (resolved_at >= ? AND resolved_at < ?) "
                "ORDER BY opened_at, id",
                window,
            ).fetchall()
        return [Incident.model_validate_json(row[0]) for row in rows]

    def held_events(self, since: datetime, until: datetime) -> list[IncidentEvent]:
        """Events in [since, until) that a silence or maintenance window held back: recorded,
        never sent. Oldest first."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT data FROM incident_events WHERE at >= ? AND at < ? "
                "AND json_extract(data, '$.held') IS NOT NULL ORDER BY id",
                (db_ts(since), db_ts(until)),
            ).fetchall()
        return [IncidentEvent.model_validate_json(row[0]) for row in rows]

    # -- investigations (root-cause analyses) -----------------------------------------------

    def add_investigation(self, record: Investigation) -> int:
        """Record an investigation, or that one was skipped, with no message."""
        with self.db.transaction() as conn:
            return _insert_investigation(conn, record)

    def commit_investigation(
        self,
        record: Investigation,
        event: IncidentEvent,
        outbox: list[OutboxItem],
        *,
        looked_up: Sequence[IncidentEvent] = (),
        now: datetime | None = None,
    ) -> int:
        """The investigation, its `tool_call` events (`looked_up`, in order, before it), its
        `investigation` event and its messages: all or nothing, so a restart neither loses
        nor repeats the follow-up. `outbox` items refer to `event`."""
        stamp = db_ts(now or utcnow())
        with self.db.transaction() as conn:
            record_id = _insert_investigation(conn, record)
            for looked in looked_up:
                insert_event(conn, looked)
            event_id = insert_event(conn, event)
            for item in outbox:
                insert_outbox(conn, item, event_id, stamp)
        return record_id

    def latest_investigation(self, incident_id: int) -> Investigation | None:
        found = self.investigations(incident_id)
        return found[-1] if found else None

    def investigations(self, incident_id: int) -> list[Investigation]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT id, data FROM investigations WHERE incident_id = ? ORDER BY id",
                (incident_id,),
            ).fetchall()
        return [
            Investigation.model_validate_json(r[1]).model_copy(update={"id": r[0]}) for r in rows
        ]


def _write_state(
    conn: sqlite3.Connection, state: EngineState, changed: Collection[str] | None, stamp: str
) -> None:
    """The engine state: its small part as one JSON row, each changed check as its own row
    (plain upserts and deletes, which any SQL store can do)."""
    if changed is None:
        conn.execute("DELETE FROM check_states")
        changed = state.checks.keys()
    else:
        gone = [(name,) for name in changed if name not in state.checks]
        conn.executemany("DELETE FROM check_states WHERE check_name = ?", gone)
    conn.executemany(
        "INSERT INTO check_states (check_name, data) VALUES (?, ?) "
        "ON CONFLICT (check_name) DO UPDATE SET data = excluded.data",
        [(n, state.checks[n].model_dump_json()) for n in changed if n in state.checks],
    )
    conn.execute(
        "INSERT INTO engine_state (id, data, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        (state.model_dump_json(exclude={"checks"}), stamp),
    )


_UPSERT_INCIDENT = """
INSERT INTO incidents (id, fingerprint, check_name, severity, status, opened_at, resolved_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint,
    check_name = excluded.check_name, severity = excluded.severity, status = excluded.status,
    opened_at = excluded.opened_at, resolved_at = excluded.resolved_at, data = excluded.data
"""


def _upsert_incident(conn: sqlite3.Connection, incident: Incident) -> None:
    resolved_at = None if incident.resolved_at is None else db_ts(incident.resolved_at)
    conn.execute(
        _UPSERT_INCIDENT,
        (
            incident.id,
            incident.fingerprint,
            incident.check,
            incident.severity.value,
            incident.status,
            db_ts(incident.opened_at),
            resolved_at,
            incident.model_dump_json(),
        ),
    )


def _insert_investigation(conn: sqlite3.Connection, record: Investigation) -> int:
    cursor = conn.execute(
        "INSERT INTO investigations (incident_id, at, data) VALUES (?, ?, ?)",
        (record.incident_id, db_ts(record.at), record.model_dump_json(exclude={"id"})),
    )
    return rowid(cursor)


def insert_event(conn: sqlite3.Connection, event: IncidentEvent) -> int:
    cursor = conn.execute(
        "INSERT INTO incident_events (incident_id, kind, at, data) VALUES (?, ?, ?, ?)",
        (event.incident_id, event.kind, db_ts(event.at), event.model_dump_json()),
    )
    return rowid(cursor)
