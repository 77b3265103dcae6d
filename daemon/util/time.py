"""UTC time as the store, the ledger and the messages write it."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def db_ts(value: datetime) -> str:
    """Sortable ISO-8601 UTC text with microseconds: how every timestamp is stored."""
    return as_utc(value).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def iso_utc(value: datetime) -> str:
    """`2026-11-27T14:02:00Z`: RFC 3339, UTC, whole seconds."""
    return as_utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def clock(value: datetime) -> str:
    """`2026-11-27 14:02 UTC`."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")
