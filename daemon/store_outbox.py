"""The notification outbox in the state database: what is queued, due, delivered or failed.

A row is marked delivered only after its target accepted it (at-least-once delivery); rows
never hold secret values — only what the renderer produced.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from daemon.store_schema import _dt, _rowid, _ts, _utcnow

NotifyType = Literal["failure", "warning", "success", "info"]
OutboxStatus = Literal["pending", "delivered", "failed"]
OUTBOX_STATUSES: tuple[OutboxStatus, ...] = ("pending", "delivered", "failed")


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


class OutboxMixin:
    """The outbox half of `daemon.store.Store`."""

    if TYPE_CHECKING:
        _tx: Callable[..., AbstractContextManager[sqlite3.Connection]]

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


def _outbox_row(row: sqlite3.Row) -> OutboxRow:
    data = {f.name: row[f.name] for f in fields(OutboxRow)}
    for key in ("created_at", "next_attempt_at", "delivered_at"):
        data[key] = _dt(data[key])
    payload = None if data["payload"] is None else json.loads(data["payload"])
    data["payload"] = payload if isinstance(payload, dict) else None
    return OutboxRow(**data)
