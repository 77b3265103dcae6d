"""Who is in a sharded cluster (`[cluster] mode = "sharded"`): one row per node, kept alive by
heartbeats on the database's clock.

A member is live while its last heartbeat is younger than the term (`[store] lease`); every
node computes the same assignment of checks from the same live set (`daemon.util.rendezvous`),
so no coordinator hands work out and a node that stops heartbeating loses its checks to the
others as soon as its row is older than the term. `holder` tells a node's current process
from an earlier one of the same name (a restart after kill -9 waits for the old row to lapse
rather than run beside a process it cannot see is dead).

`fence` is the check a member's write transaction runs first: a node whose membership lapsed
(its checks moved to others) has its late results refused instead of doubling another node's.
Owns `cluster_members` and the `location` column of `check_results` (migration below).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.errors import StateError
from daemon.util.time import db_ts, parse_ts

if TYPE_CHECKING:  # `schema` imports this module's MIGRATION; `database` imports `schema`
    from daemon.store.database import Database, Fence

MIGRATION = """
CREATE TABLE cluster_members (node TEXT PRIMARY KEY, holder TEXT NOT NULL, location TEXT,
    started_at TEXT NOT NULL, heartbeat_at TEXT NOT NULL, owned INTEGER NOT NULL DEFAULT 0);
ALTER TABLE check_results ADD COLUMN location TEXT;
"""
"""Membership, and the vantage point each stored result was taken from."""


class Lapsed(StateError):
    """A write of a member whose heartbeat lapsed (its checks belong to others now), refused."""


@dataclass(frozen=True)
class Member:
    node: str
    holder: str
    location: str | None
    started_at: datetime
    heartbeat_at: datetime
    owned: int
    """How many checks (or vantage runs) the node said it ran at its last heartbeat."""

    def live(self, now: datetime, term: timedelta) -> bool:
        return now - self.heartbeat_at < term


class Members:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _clock(self, conn: sqlite3.Connection) -> datetime:
        from daemon.store.lease import LeaderLease

        return LeaderLease(self.db).clock(conn)

    def join(self, node: str, holder: str, location: str | None, term: timedelta) -> bool:
        """Register `holder` as `node`; False while another process's row of that name is
        still live (a restarted node waits for its predecessor's row to lapse)."""
        with self.db.transaction(write=True, serialize=False) as conn:
            now = self._clock(conn)
            row = conn.execute(
                "SELECT * FROM cluster_members WHERE node = ?" + self.db.update_lock,  # noqa: S608
                (node,),
            ).fetchone()
            found = _member(row)
            if found is not None and found.holder != holder and found.live(now, term):
                return False
            conn.execute(
                "INSERT INTO cluster_members (node, holder, location, started_at, heartbeat_at, "
                "owned) VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (node) DO UPDATE SET "
                "holder = excluded.holder, location = excluded.location, "
                "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
                "owned = 0",
                (node, holder, location, db_ts(now), db_ts(now)),
            )
            return True

    def beat(self, node: str, holder: str, owned: int) -> bool:
        """Renew `holder`'s membership; False when its row is gone or another process of that
        name took it over (then it must join again)."""
        with self.db.transaction(write=True, serialize=False) as conn:
            now = self._clock(conn)
            cursor = conn.execute(
                "UPDATE cluster_members SET heartbeat_at = ?, owned = ? "
                "WHERE node = ? AND holder = ?",
                (db_ts(now), owned, node, holder),
            )
            return cursor.rowcount == 1

    def leave(self, node: str, holder: str) -> None:
        """A clean stop: the others take this node's checks at their next look."""
        with self.db.transaction(write=True, serialize=False) as conn:
            conn.execute(
                "DELETE FROM cluster_members WHERE node = ? AND holder = ?", (node, holder)
            )

    def all(self) -> tuple[list[Member], datetime]:
        """Every row, live or not, by name, and the database's time."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT * FROM cluster_members ORDER BY node").fetchall()
            now = self._clock(conn)
        return [m for m in map(_member, rows) if m is not None], now

    def live(self, term: timedelta) -> list[Member]:
        members, now = self.all()
        return [m for m in members if m.live(now, term)]

    def fence(self, node: str, holder: str, term: timedelta) -> Fence:
        """The check a write transaction of a member runs first (`Database.fence`): its row
        is read under a share lock, so it cannot lapse unseen while the transaction runs."""
        share = self.db.share_lock

        def check(conn: sqlite3.Connection) -> None:
            now = self._clock(conn)
            row = conn.execute(
                "SELECT * FROM cluster_members WHERE node = ?" + share,  # noqa: S608
                (node,),
            ).fetchone()
            found = _member(row)
            if found is None or found.holder != holder or not found.live(now, term):
                raise Lapsed(
                    f"node {node}'s membership lapsed (no heartbeat for {term.total_seconds():g}"
                    " s): its checks moved to other nodes; these results were not recorded"
                )

        return check

    def prune(self, older_than: timedelta) -> int:
        """Forget members gone longer than `older_than` (their row only feeds `status`)."""
        with self.db.transaction(write=True, serialize=False) as conn:
            cutoff = db_ts(self._clock(conn) - older_than)
            return conn.execute(
                "DELETE FROM cluster_members WHERE heartbeat_at < ?", (cutoff,)
            ).rowcount


def _member(row: sqlite3.Row | None) -> Member | None:
    if row is None:
        return None
    started, beat = parse_ts(row["started_at"]), parse_ts(row["heartbeat_at"])
    assert started is not None and beat is not None
    return Member(row["node"], row["holder"], row["location"], started, beat, int(row["owned"]))
