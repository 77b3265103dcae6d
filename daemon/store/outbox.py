"""The notification outbox in the state database: what is queued, claimed, delivered or failed.

A row is marked delivered only after its target accepted it (at-least-once delivery), and a
row is sent only by the process that holds its claim: `claim_due` leases due rows to one owner
in one write transaction, so a daemon and a CLI command (or two daemons sharing a database)
never send the same row at the same time. Rows never hold secret values.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from daemon.models import NotifyType
from daemon.store.database import Database, rowid
from daemon.util.time import db_ts, parse_ts, utcnow

OutboxStatus = Literal["pending", "delivered", "failed"]
OUTBOX_STATUSES: tuple[OutboxStatus, ...] = ("pending", "delivered", "failed")


def new_owner() -> str:
    """A claim owner unique to this process and object: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str | None) -> bool:
    """Whether the claim's owner was a process on this host that no longer exists (killed,
    crashed): its rows need not wait for the lease to run out. Any doubt means alive."""
    parts = (owner or "").rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = parts[1]
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, but is not ours to signal
        return False
    return False


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
    """The structured form that webhook targets POST. Derived from the same message as title
    and body, so it is left out of == and hash (a dict is unhashable)."""
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
    claimed_by: str | None = None
    claimed_until: datetime | None = None


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, items: list[OutboxItem], *, now: datetime | None = None) -> list[int]:
        """Queue messages that belong to no cycle (reports). Returns the new row ids."""
        if any(item.event_index is not None for item in items):
            raise ValueError("event_index only has a meaning inside commit_cycle")
        stamp = db_ts(now or utcnow())
        with self.db.transaction() as conn:
            return [insert_outbox(conn, item, None, stamp) for item in items]

    def due(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """Pending rows whose next attempt is due, oldest first — claimed or not (a view, for
        status and tests; delivery uses `claim_due`)."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                _SELECT + "WHERE o.status = 'pending' AND o.next_attempt_at <= ? "
                "ORDER BY o.id LIMIT ?",
                (db_ts(now), limit),
            ).fetchall()
        return [_outbox_row(row) for row in rows]

    def claim_due(
        self, owner: str, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[OutboxRow]:
        """Due pending rows nobody else holds, oldest first, now leased to `owner` until
        `now + lease`. A claim ends with `mark_*`, `defer` or `release`, when it expires, or
        at once when its owner was a process of this host that is gone (`owner_gone`)."""
        stamp, until = db_ts(now), db_ts(now + lease)
        with self.db.transaction() as conn:
            # Owners are judged here, not in SQL: PostgreSQL cannot call into this process.
            holders = conn.execute(
                "SELECT DISTINCT claimed_by FROM outbox WHERE status = 'pending' "
                "AND claimed_until > ? AND claimed_by IS NOT NULL",
                (stamp,),
            ).fetchall()
            gone = [row[0] for row in holders if owner_gone(row[0])]
            dead = f" OR o.claimed_by IN ({', '.join('?' for _ in gone)})" if gone else ""
            rows = conn.execute(
                _SELECT + "WHERE o.status = 'pending' AND o.next_attempt_at <= ? "
                "AND (o.claimed_until IS NULL OR o.claimed_until <= ? OR o.claimed_by = ?"
                f"{dead}) ORDER BY o.id LIMIT ?{self.db.row_lock.format(alias='o')}",
                (stamp, stamp, owner, *gone, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(owner, until, row["id"]) for row in rows],
            )
        return [_outbox_row(row, claimed_by=owner, claimed_until=now + lease) for row in rows]

    def renew(self, row_id: int, owner: str, until: datetime) -> bool:
        """Extend `owner`'s claim on a pending row before sending it; False when the claim
        was lost (it expired and another process took the row): then do not send."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE outbox SET claimed_until = ? "
                "WHERE id = ? AND status = 'pending' AND claimed_by = ?",
                (db_ts(until), row_id, owner),
            )
            return cursor.rowcount == 1

    def release(self, row_ids: list[int], owner: str) -> None:
        """Give claims back without an attempt (shutting down with rows unsent)."""
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND claimed_by = ?",
                [(row_id, owner) for row_id in row_ids],
            )

    def next_due_at(self) -> datetime | None:
        """When the earliest pending row becomes due (None when nothing is pending)."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        return parse_ts(row[0])

    def mark_delivered(self, row_id: int, now: datetime, owner: str | None = None) -> None:
        self._update(
            row_id,
            owner,
            "status = 'delivered', delivered_at = :now, attempts = attempts + 1",
            now=db_ts(now),
        )

    def mark_retry(
        self,
        row_id: int,
        now: datetime,
        error: str,
        next_attempt_at: datetime,
        owner: str | None = None,
    ) -> None:
        self._update(
            row_id,
            owner,
            "attempts = attempts + 1, last_error = :error, next_attempt_at = :next",
            now=db_ts(now),
            error=error,
            next=db_ts(next_attempt_at),
        )

    def mark_failed(self, row_id: int, now: datetime, error: str, owner: str | None = None) -> None:
        """Give up on a row (too old, or undeliverable)."""
        self._update(
            row_id, owner, "status = 'failed', last_error = :error", now=db_ts(now), error=error
        )

    def defer(self, row_ids: list[int], until: datetime, owner: str | None = None) -> None:
        """Move pending rows to a later attempt without counting one (their target is down),
        releasing `owner`'s claims on them."""
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE outbox SET next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL "
                "WHERE id = ? AND status = 'pending' AND (? IS NULL OR claimed_by = ?)",
                [(db_ts(until), row_id, owner, owner) for row_id in row_ids],
            )

    def _update(self, row_id: int, owner: str | None, assignments: str, **params: Any) -> None:
        """Change a pending row (held by `owner`, when given) and end its claim."""
        with self.db.transaction() as conn:
            conn.execute(
                f"UPDATE outbox SET {assignments}, updated_at = :now, "  # noqa: S608 - constant fragments
                "claimed_by = NULL, claimed_until = NULL "
                "WHERE id = :id AND status = 'pending' "
                "AND (:owner IS NULL OR claimed_by = :owner)",
                {**params, "id": row_id, "owner": owner},
            )

    def prune(self, older_than: datetime) -> int:
        """Delete delivered and failed rows created before `older_than` (pending rows are
        never touched); returns how many."""
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM outbox WHERE status IN ('delivered', 'failed') AND created_at < ?",
                (db_ts(older_than),),
            )
            return cursor.rowcount

    def for_incident(self, incident_id: int) -> list[OutboxRow]:
        """Every message queued for the incident's events, oldest first (the console's
        timeline: where each notice went, and whether it arrived)."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                _SELECT + "WHERE e.incident_id = ? ORDER BY o.id", (incident_id,)
            ).fetchall()
        return [_outbox_row(row) for row in rows]

    def counts(self) -> dict[OutboxStatus, int]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        counts: dict[OutboxStatus, int] = dict.fromkeys(OUTBOX_STATUSES, 0)
        for status, count in rows:
            counts[status] = count
        return counts


_SELECT = (
    "SELECT o.*, e.incident_id FROM outbox o LEFT JOIN incident_events e ON e.id = o.event_id "
)


def insert_outbox(
    conn: sqlite3.Connection, item: OutboxItem, event_id: int | None, stamp: str
) -> int:
    """Part of a larger transaction (a cycle, an investigation, a sweep)."""
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
    return rowid(cursor)


def _outbox_row(row: sqlite3.Row, **override: Any) -> OutboxRow:
    data = {f.name: row[f.name] for f in fields(OutboxRow)}
    for key in ("created_at", "next_attempt_at", "delivered_at", "claimed_until"):
        data[key] = parse_ts(data[key])
    payload = None if data["payload"] is None else json.loads(data["payload"])
    data["payload"] = payload if isinstance(payload, dict) else None
    data.update(override)
    return OutboxRow(**data)
