"""The leader lease: which one of several watchkeeper processes sharing a database is active.

One row. A process takes it when it is free or expired, and gets the next fencing `epoch`; it
keeps it by renewing before `expires_at`. Times come from the database's clock (on PostgreSQL
`clock_timestamp()`), so the machines' clocks never decide who leads. `fence` turns the epoch
into a check run first in every write transaction of the active process: it reads the row
under a share lock, so no takeover can commit while that transaction is open, and rolls the
transaction back when the row names another holder or a later epoch — a deposed process
cannot commit anything, whatever it still believes.

Why a lease row and not an advisory lock: a session lock is held as long as the connection
lives, so a wedged process (stuck, connection open) would lead forever, and a partitioned one
until TCP keepalives give up; a lease runs out on its own, and its epoch fences the old holder.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from daemon.errors import StateError
from daemon.store.database import Database, Fence
from daemon.util.time import db_ts, parse_ts, utcnow


class Deposed(StateError):
    """A write of a process that no longer holds the lease, refused."""


@dataclass(frozen=True)
class Lease:
    holder: str
    node: str
    epoch: int
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


class LeaderLease:
    def __init__(self, db: Database) -> None:
        self.db = db

    def clock(self, conn: sqlite3.Connection) -> datetime:
        """The database's time (PostgreSQL), or this machine's (SQLite: one machine)."""
        if self.db.server_clock is None:
            return utcnow()
        row = conn.execute(self.db.server_clock).fetchone()
        assert row is not None
        value = row[0]
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    def current(self) -> tuple[Lease | None, datetime]:
        """The lease as stored (None before anyone took it), and the database's time."""
        with self.db.transaction(write=False) as conn:
            return _lease(conn.execute("SELECT * FROM leader_lease WHERE id = 1").fetchone()), (
                self.clock(conn)
            )

    def _locked(self, conn: sqlite3.Connection) -> tuple[Lease | None, datetime]:
        """The row, locked for this write transaction (`FOR UPDATE`), and the database's time."""
        now = self.clock(conn)
        query = "SELECT * FROM leader_lease WHERE id = 1" + self.db.update_lock  # noqa: S608
        return _lease(conn.execute(query).fetchone()), now

    def acquire(self, holder: str, node: str, term: timedelta) -> Lease | None:
        """Take the lease if it is free, expired or already `holder`'s; None when another
        holder's lease still runs."""
        with self.db.transaction(write=True, serialize=False) as conn:
            found, now = self._locked(conn)
            if found is not None and found.holder != holder and not found.expired(now):
                return None
            if found is not None and found.holder == holder:
                epoch, acquired = found.epoch, found.acquired_at
            else:
                epoch, acquired = (found.epoch + 1 if found else 1), now
            return _store(conn, Lease(holder, node, epoch, acquired, now, now + term))

    def epoch(self) -> int:
        """The row's fencing epoch (0 before anyone took it)."""
        lease, _ = self.current()
        return 0 if lease is None else lease.epoch

    def claim(self, holder: str, node: str, epoch: int, term: timedelta) -> Lease | None:
        """Record `holder`, elected outside the database (a Kubernetes Lease), as the fenced
        writer at `epoch`; None when the row already has a later epoch, or this epoch for
        another holder. The epoch only ever increases, so an old winner can never come back;
        the row lock waits for the previous holder's open write transactions (they read the
        row `FOR SHARE`), so its writes all commit before the new epoch or not at all."""
        with self.db.transaction(write=True, serialize=False) as conn:
            found, now = self._locked(conn)
            if found is not None and (
                found.epoch > epoch or (found.epoch == epoch and found.holder != holder)
            ):
                return None
            same = found is not None and found.holder == holder and found.epoch == epoch
            acquired = found.acquired_at if found is not None and same else now
            return _store(conn, Lease(holder, node, epoch, acquired, now, now + term))

    def renew(self, holder: str, epoch: int, term: timedelta) -> Lease | None:
        """Extend `holder`'s lease of `epoch`; None when it was taken over meanwhile (then
        this process is deposed). A lease that ran out but nobody took is still renewed:
        no other process can have committed under it."""
        with self.db.transaction(write=True, serialize=False) as conn:
            now = self.clock(conn)
            cursor = conn.execute(
                "UPDATE leader_lease SET renewed_at = ?, expires_at = ? "
                "WHERE id = 1 AND holder = ? AND epoch = ?",
                (db_ts(now), db_ts(now + term), holder, epoch),
            )
            if cursor.rowcount != 1:
                return None
            return _lease(conn.execute("SELECT * FROM leader_lease WHERE id = 1").fetchone())

    def release(self, holder: str, epoch: int) -> None:
        """Hand the lease back (a clean stop): a standby takes over at its next look."""
        with self.db.transaction(write=True, serialize=False) as conn:
            conn.execute(
                "UPDATE leader_lease SET expires_at = ? WHERE id = 1 AND holder = ? AND epoch = ?",
                (db_ts(self.clock(conn)), holder, epoch),
            )

    def fence(self, holder: str, epoch: int) -> Fence:
        """The check a write transaction of `holder` runs first (`Database.fence`)."""
        share = self.db.share_lock

        def check(conn: sqlite3.Connection) -> None:
            query = "SELECT holder, epoch FROM leader_lease WHERE id = 1" + share  # noqa: S608
            row = conn.execute(query)
            found = row.fetchone()
            if found is None or found[0] != holder or int(found[1]) != epoch:
                raise Deposed(
                    f"this process no longer holds the leader lease (epoch {epoch}): "
                    "another watchkeeper took over; nothing was written"
                )

        return check


def _store(conn: sqlite3.Connection, lease: Lease) -> Lease:
    """Write `lease` as the one row (created the first time)."""
    conn.execute(
        "INSERT INTO leader_lease (id, holder, node, epoch, acquired_at, renewed_at, "
        "expires_at) VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "holder = excluded.holder, node = excluded.node, epoch = excluded.epoch, "
        "acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, "
        "expires_at = excluded.expires_at",
        (
            lease.holder,
            lease.node,
            lease.epoch,
            db_ts(lease.acquired_at),
            db_ts(lease.renewed_at),
            db_ts(lease.expires_at),
        ),
    )
    return lease


def _lease(row: sqlite3.Row | None) -> Lease | None:
    if row is None:
        return None
    stamps = [parse_ts(row[k]) for k in ("acquired_at", "renewed_at", "expires_at")]
    acquired, renewed, expires = (s for s in stamps if s is not None)
    return Lease(row["holder"], row["node"], int(row["epoch"]), acquired, renewed, expires)
