"""The ledger of model calls, AI budgets and runtime routing overrides, in the state database.

It must never let concurrent callers (threads or processes) reserve past a budget, never turn
an unknown cost into 0, and never store a secret: rows carry counts, hosts and scrubbed reasons.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

from daemon.models import ModelRef
from daemon.store.database import Database
from daemon.util.money import format_usd
from daemon.util.time import as_utc, db_ts

OUTCOMES = frozenset(
    {
        "ok",
        "error",
        "timeout",
        "auth",
        "rate_limited",
        "http_error",
        "unreachable",
        "bad_response",
        "invalid_output",
        "budget",
        "missing_key",
        "skipped",
        "no_time",
    }
)
KEY_SOURCES = frozenset({"systemd-credential", "keyring", "env", "none", "config"})
RESERVATION_TTL = timedelta(minutes=15)

BudgetScope = Literal["daily", "monthly", "provider daily", "provider monthly"]


@dataclass(kw_only=True)
class LedgerRow:
    """One model call (or a skipped one: outcome says which). `cost_usd` None = price unknown.

    `outcome` is one of OUTCOMES, `key_source` one of KEY_SOURCES; `detail` is a short reason
    the caller has already scrubbed of secrets.
    """

    ts: datetime
    task: str
    incident_id: int | None = None
    sweep_id: str | None = None
    provider: str
    model: str
    host: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None
    latency_ms: float | None = None
    outcome: str
    request_bytes: int = 0
    key_source: str = "none"
    detail: str = ""
    local: bool = False
    reserved_usd: Decimal | None = None
    """What the budget held for this call when its real cost is unknown (a timeout, a reply
    without usage): budgets count the call at that amount; reports still say "unknown"."""


_COLUMNS = tuple(f.name for f in fields(LedgerRow))
_COUNTED = "COALESCE(cost_usd, reserved_usd)"
"""What a call counts for against a budget."""
_INSERT_ROW = (
    f"INSERT INTO ledger ({', '.join(_COLUMNS)}) "  # noqa: S608 - constant column names
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


@dataclass(frozen=True)
class BudgetLimits:
    """USD caps on cloud spend per UTC calendar day and month; None = no cap.
    `providers` maps a provider name to its own (daily, monthly) caps."""

    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None
    providers: Mapping[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Reservation:
    """Budget held for one call in flight until `settle` or `release` (or expiry, after a
    crash)."""

    id: int
    provider: str
    amount_usd: Decimal
    expires_at: datetime


@dataclass(frozen=True)
class BudgetDenied:
    """A call that would take spending past a cap. `spent` is known ledger cost in the period,
    `reserved` what calls in flight hold."""

    scope: BudgetScope
    limit: Decimal
    spent: Decimal
    estimate: Decimal
    reserved: Decimal = Decimal(0)
    provider: str | None = None

    @property
    def reason(self) -> str:
        period = self.scope.split()[-1]
        whose = f" for {self.provider}" if self.provider else ""
        held = f" and {format_usd(self.reserved)} held by calls in flight" if self.reserved else ""
        return (
            f"{period} AI budget{whose} {format_usd(self.limit)} reached: "
            f"{format_usd(self.spent)} spent{held}, this call could cost up to "
            f"{format_usd(self.estimate)}"
        )


@dataclass
class Spending:
    """Known ledger cost today and this month, and what reservations in flight hold."""

    day: Decimal = Decimal(0)
    month: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)


def check_budget(
    limits: BudgetLimits, provider: str, estimate: Decimal, total: Spending, own: Spending
) -> BudgetDenied | None:
    """The first cap that `estimate` on top of spending and reservations would exceed.
    Reaching a cap exactly is allowed."""
    provider_daily, provider_monthly = limits.providers.get(provider, (None, None))
    scopes: list[tuple[BudgetScope, Decimal | None, Decimal, Decimal, str | None]] = [
        ("daily", limits.daily_usd, total.day, total.reserved, None),
        ("monthly", limits.monthly_usd, total.month, total.reserved, None),
        ("provider daily", provider_daily, own.day, own.reserved, provider),
        ("provider monthly", provider_monthly, own.month, own.reserved, provider),
    ]
    for scope, limit, spent, reserved, whose in scopes:
        if limit is not None and spent + reserved + estimate > limit:
            return BudgetDenied(scope, limit, spent, estimate, reserved, whose)
    return None


def _usd(value: Decimal | None) -> str | None:
    """Exact decimal text (no exponent), so the column reads as money and loses nothing."""
    return None if value is None else f"{value:f}"


class Ledger:
    """Model calls, budget reservations and notices. Every method is one transaction; the
    budget check and its reservation are one write transaction (`BEGIN IMMEDIATE`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- calls ------------------------------------------------------------------------------

    def record(self, row: LedgerRow) -> int:
        """Append one row; returns its id."""
        with self.db.transaction() as conn:
            return _insert(conn, row)

    def calls(self, since: datetime, until: datetime | None = None) -> list[LedgerRow]:
        """Rows with since <= ts < until, oldest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM ledger WHERE ts >= ?"  # noqa: S608
        params = [db_ts(since)]
        if until is not None:
            query += " AND ts < ?"
            params.append(db_ts(until))
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(query + " ORDER BY ts, id", params).fetchall()
        return [_row(row) for row in rows]

    def spent(self, since: datetime, provider: str | None = None) -> Decimal:
        """What budgets count since `since`: known costs, and calls of unknown cost at what
        was held for them."""
        query = f"SELECT {_COUNTED} FROM ledger WHERE ts >= ? AND {_COUNTED} IS NOT NULL"  # noqa: S608
        params = [db_ts(since)]
        if provider is not None:
            query += " AND provider = ?"
            params.append(provider)
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(query, params).fetchall()
        return sum((Decimal(row[0]) for row in rows), Decimal(0))

    # -- budgets ----------------------------------------------------------------------------

    def reserve(
        self,
        provider: str,
        estimate: Decimal,
        limits: BudgetLimits,
        now: datetime,
        ttl: timedelta = RESERVATION_TTL,
    ) -> Reservation | BudgetDenied:
        """Hold `estimate` for a call to `provider` if, with today's and this month's spending
        (UTC calendar; calls of unknown cost at what was held for them) and every unexpired
        reservation, no cap would be exceeded. Expired reservations (left by a crash) are
        dropped on the way."""
        if estimate < 0:
            raise ValueError(f"a cost estimate cannot be negative: {estimate}")
        now = as_utc(now)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        month = day.replace(day=1)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM budget_reservations WHERE expires_at <= ?", (db_ts(now),))
            total, own = Spending(), Spending()
            day_start = db_ts(day)
            spending = conn.execute(
                f"SELECT provider, ts, {_COUNTED} FROM ledger "  # noqa: S608 - a constant
                f"WHERE ts >= ? AND {_COUNTED} IS NOT NULL",
                (db_ts(month),),
            ).fetchall()
            for name, ts, cost in spending:
                amount = Decimal(cost)
                today = ts >= day_start
                for tally in (total, own) if name == provider else (total,):
                    tally.month += amount
                    if today:
                        tally.day += amount
            for name, amount in conn.execute(
                "SELECT provider, amount_usd FROM budget_reservations"
            ).fetchall():
                total.reserved += Decimal(amount)
                if name == provider:
                    own.reserved += Decimal(amount)
            denied = check_budget(limits, provider, estimate, total, own)
            if denied is not None:
                return denied
            expires = now + ttl
            cursor = conn.execute(
                "INSERT INTO budget_reservations (provider, amount_usd, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (provider, _usd(estimate), db_ts(now), db_ts(expires)),
            )
            return Reservation(_lastrowid(cursor), provider, estimate, expires)

    def settle(self, reservation: Reservation, row: LedgerRow) -> int:
        """Replace the reservation by the call's real cost, atomically; returns the row id. A
        call of unknown cost keeps counting at the reserved amount."""
        if row.cost_usd is None:
            row = replace(row, reserved_usd=reservation.amount_usd)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation.id,))
            return _insert(conn, row)

    def release(self, reservation: Reservation) -> None:
        """Give the reservation back (the call was not made)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM budget_reservations WHERE id = ?", (reservation.id,))

    def claim_budget_notice(self, period_key: str, *, now: datetime | None = None) -> bool:
        """True only for the first claim of `period_key` (e.g. `daily:2026-11-27`), ever: the
        "budget reached" message goes out once per period, restarts included."""
        stamp = db_ts(now or datetime.now(UTC))
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO budget_notices (period_key, claimed_at) VALUES (?, ?)",
                (period_key, stamp),
            )
            return cursor.rowcount == 1


class Routes:
    """Runtime routing overrides (`watchkeeper route set`): a task's model chain instead of
    `[routing]`, read by a running daemon at its next job."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, task: str, refs: list[str], *, now: datetime | None = None) -> None:
        """Route `task` to `refs` (in order) instead of `[routing]`, until `reset`."""
        if not refs:
            raise ValueError(f"a route for {task!r} needs at least one model; use reset")
        for ref in refs:
            ModelRef.parse(ref)  # raises ValueError with a usable message
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO routing_overrides (task, refs_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (task) DO UPDATE SET refs_json = excluded.refs_json, "
                "updated_at = excluded.updated_at",
                (task, json.dumps(refs), db_ts(now or datetime.now(UTC))),
            )

    def reset(self, task: str) -> bool:
        """Back to `[routing]` for `task`; False when there was no override."""
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM routing_overrides WHERE task = ?", (task,))
            return cursor.rowcount > 0

    def all(self) -> dict[str, list[str]]:
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT task, refs_json FROM routing_overrides ORDER BY task"
            ).fetchall()
        return {task: list(json.loads(refs)) for task, refs in rows}


def _insert(conn: sqlite3.Connection, row: LedgerRow) -> int:
    values = {name: getattr(row, name) for name in _COLUMNS}
    values["ts"] = db_ts(row.ts)
    values["cost_usd"] = _usd(row.cost_usd)
    values["reserved_usd"] = _usd(row.reserved_usd)
    values["local"] = int(row.local)
    return _lastrowid(conn.execute(_INSERT_ROW, [values[name] for name in _COLUMNS]))


def _lastrowid(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - INSERT always sets it
        raise RuntimeError("INSERT did not return a row id")
    return cursor.lastrowid


def _row(row: sqlite3.Row) -> LedgerRow:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["ts"] = datetime.fromisoformat(values["ts"])
    for money in ("cost_usd", "reserved_usd"):
        values[money] = None if values[money] is None else Decimal(values[money])
    values["local"] = bool(values["local"])
    return LedgerRow(**values)
