"""Heartbeats: the pings jobs send, and the digests of generated ping tokens.

A ping may arrive from the listener or from `watchkeeper ping` in another process; the
`heartbeat` check reads the latest ones at each run. Only the newest KEEP pings of a check are
kept. A generated token is stored as its SHA-256: the token itself is shown once and never
stored.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from daemon.models import Ping
from daemon.store.database import Database
from daemon.util.time import db_ts, parse_ts

KEEP = 50


class Heartbeats:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, ping: Ping) -> None:
        """Unfenced, like an operator's acknowledgement: a job's ping is a fact from outside,
        not engine state, so a standby (two replicas behind one Service) or a process being
        deposed records it rather than refusing it. Nothing here reads before it writes, so it
        needs no database-wide write lock either (`serialize=False`)."""
        with self.db.transaction(serialize=False) as conn:
            conn.execute(
                "INSERT INTO heartbeat_pings (check_name, at, kind, exit_code, message, source) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ping.check, db_ts(ping.at), ping.kind, ping.exit_code, ping.message, ping.source),
            )
            conn.execute(
                "DELETE FROM heartbeat_pings WHERE check_name = ? AND id <= ("
                "SELECT id FROM heartbeat_pings WHERE check_name = ? ORDER BY id DESC "
                "LIMIT 1 OFFSET ?)",
                (ping.check, ping.check, KEEP),
            )

    def recent(self, check: str, limit: int = 10) -> list[Ping]:
        """The newest pings of `check`, newest first."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM heartbeat_pings WHERE check_name = ? ORDER BY id DESC LIMIT ?",
                (check, limit),
            ).fetchall()
        return [_ping(row) for row in rows]

    def set_token(self, check: str, sha256: str, now: datetime) -> None:
        """Replace `check`'s generated token (the old one stops working at once)."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO heartbeat_tokens (check_name, token_sha256, created_at) "
                "VALUES (?, ?, ?) ON CONFLICT (check_name) DO UPDATE SET "
                "token_sha256 = excluded.token_sha256, created_at = excluded.created_at",
                (check, sha256, db_ts(now)),
            )

    def tokens(self) -> dict[str, str]:
        """Generated tokens: SHA-256 hex → check name."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute("SELECT check_name, token_sha256 FROM heartbeat_tokens").fetchall()
        return {row["token_sha256"]: row["check_name"] for row in rows}


def _ping(row: sqlite3.Row) -> Ping:
    at = parse_ts(row["at"])
    assert at is not None
    return Ping(
        check=row["check_name"],
        at=at,
        kind=row["kind"],
        exit_code=row["exit_code"],
        message=row["message"],
        source=row["source"],
    )
