"""What operators tell watchkeeper: acknowledgements and silences.

The CLI writes these rows while a daemon may be running; the daemon only reads them (every
cycle and every reminder tick), so neither ever overwrites the other's work. An
acknowledgement is written together with its `acknowledged` event and that event's messages,
in one transaction.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from daemon.models import Acknowledgement, IncidentEvent, Silence, SilenceMatcher
from daemon.store.database import Database, rowid
from daemon.store.incidents import insert_event
from daemon.store.outbox import OutboxItem, insert_outbox
from daemon.util.time import db_ts, parse_ts


class Controls:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- acknowledgements ---------------------------------------------------------------------

    def acknowledge(
        self,
        ack: Acknowledgement,
        event: IncidentEvent,
        outbox: list[OutboxItem],
    ) -> Acknowledgement | None:
        """Record `ack`, its event and messages; or, when the incident is acknowledged
        already, write nothing and return that earlier acknowledgement."""
        with self.db.transaction() as conn:
            earlier = conn.execute(
                "SELECT * FROM acknowledgements WHERE incident_id = ?", (ack.incident_id,)
            ).fetchone()
            if earlier is not None:
                return _ack(earlier)
            conn.execute(
                "INSERT INTO acknowledgements (incident_id, by_whom, at, note) VALUES (?, ?, ?, ?)",
                (ack.incident_id, ack.by, db_ts(ack.at), ack.note),
            )
            event_id = insert_event(conn, event)
            for item in outbox:
                insert_outbox(conn, item, event_id, db_ts(ack.at))
        return None

    def acknowledgement(self, incident_id: int) -> Acknowledgement | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT * FROM acknowledgements WHERE incident_id = ?", (incident_id,)
            ).fetchone()
        return None if row is None else _ack(row)

    def open_acknowledgements(self) -> dict[int, Acknowledgement]:
        """Acknowledgements of incidents still open, by incident id."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT a.* FROM acknowledgements a JOIN incidents i ON i.id = a.incident_id "
                "WHERE i.status = 'open'"
            ).fetchall()
        return {row["incident_id"]: _ack(row) for row in rows}

    # -- silences -------------------------------------------------------------------------------

    def add_silence(
        self,
        matcher: SilenceMatcher,
        pattern: str,
        *,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
        by: str,
        now: datetime,
    ) -> Silence:
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO silences (matcher, pattern, starts_at, ends_at, reason, created_by, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (matcher, pattern, db_ts(starts_at), db_ts(ends_at), reason, by, db_ts(now)),
            )
            row = conn.execute("SELECT * FROM silences WHERE id = ?", (rowid(cursor),)).fetchone()
        return _silence(row)

    def silences(
        self, *, active_at: datetime | None = None, since: datetime | None = None
    ) -> list[Silence]:
        """Silences in force at `active_at`; or every one that ended after `since` (and those
        to come); or all of them. Oldest first."""
        query = "SELECT * FROM silences"
        args: tuple[str, ...] = ()
        if active_at is not None:
            at = db_ts(active_at)
            query += (
                " WHERE starts_at <= ? AND ends_at > ? AND (expired_at IS NULL OR expired_at > ?)"
            )
            args = (at, at, at)
        elif since is not None:
            query += " WHERE ends_at > ? AND (expired_at IS NULL OR expired_at > ?)"
            args = (db_ts(since), db_ts(since))
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [_silence(row) for row in rows]

    def silence(self, silence_id: int) -> Silence | None:
        with self.db.transaction(write=False) as conn:
            row = conn.execute("SELECT * FROM silences WHERE id = ?", (silence_id,)).fetchone()
        return None if row is None else _silence(row)

    def expire(self, silence_id: int, now: datetime) -> Silence | None:
        """End a silence now (it stays listed, as expired); None when there is no such one.
        A silence that already ended is returned unchanged."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL "
                "AND ends_at > ?",
                (db_ts(now), silence_id, db_ts(now)),
            )
            row = conn.execute("SELECT * FROM silences WHERE id = ?", (silence_id,)).fetchone()
        return None if row is None else _silence(row)


def _ts(value: str) -> datetime:
    parsed = parse_ts(value)
    assert parsed is not None  # NOT NULL columns
    return parsed


def _ack(row: sqlite3.Row) -> Acknowledgement:
    return Acknowledgement(
        incident_id=row["incident_id"], by=row["by_whom"], at=_ts(row["at"]), note=row["note"]
    )


def _silence(row: sqlite3.Row) -> Silence:
    expired = row["expired_at"]
    return Silence(
        id=row["id"],
        matcher=row["matcher"],
        pattern=row["pattern"],
        starts_at=_ts(row["starts_at"]),
        ends_at=_ts(row["ends_at"]),
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=_ts(row["created_at"]),
        expired_at=None if expired is None else parse_ts(expired),
    )
