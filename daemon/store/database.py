"""The state database: one SQLite file (WAL, synchronous=FULL) in the state directory, one
connection shared by every thread under a lock, one transaction per repository call.

It must never lose a committed row on kill -9 or power loss, and never touch the network.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from daemon.errors import StateError
from daemon.store.schema import configure, migrate
from daemon.util.threads import DaemonPool

DB_NAME = "watchkeeper.db"
INCREMENTAL = 2
"""`PRAGMA auto_vacuum` = INCREMENTAL (set in `schema.configure` before a new file's first
table): pruning frees pages, `vacuum_steps` returns them to the file system a few at a time."""
FREE_SLACK = 0.10
"""Free pages kept for reuse, as a share of the file: an hour's pruning at a retention of a
day or more frees less than this, and the next hour's rows would take them straight back."""
VACUUM_STEP_PAGES = 1024
"""Pages released a transaction (4 MB at SQLite's default page size)."""
CONVERT_AT_OPEN_BYTES = 64 * 1024 * 1024
P = ParamSpec("P")
T = TypeVar("T")

_io = DaemonPool(1, "wk-store")
"""The state directory's own thread: the event loop's default threads may all be stuck in
name lookups a black-holed resolver never answers; a cycle's commit must not wait for them."""


async def store_io(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call on the state database (or the state directory) off the loop."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_io, call)


Fence = Callable[[sqlite3.Connection], None]
"""Run first in every write transaction of a process that may only write while it leads
(`daemon.service.leader`): raises to roll the transaction back."""


class Database:
    """Build it with `Database.open(state_dir)`; repositories reach it through `transaction`.
    `daemon.store.postgres.PostgresDatabase` is the same contract over PostgreSQL."""

    row_lock = ""
    """Appended to a SELECT that claims rows (`{alias}` = the claimed table's alias): nothing
    here, where the write transaction locks the whole file; `FOR UPDATE … SKIP LOCKED` there."""
    update_lock = ""
    share_lock = ""
    """Appended to a SELECT whose row a write transaction decides on (`FOR UPDATE`) or must
    not see change until it commits (`FOR SHARE`): nothing here, where the file is locked."""
    server_clock: str | None = None
    """A query for the database server's time (None: this machine's clock is the one)."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.where = str(path)
        """The database as messages name it (never with a password)."""
        self.fence: Fence | None = None
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> Database:
        """Create the directory (0700) and database if needed, and migrate it to this code's
        schema. Raises StateError when the database cannot be used."""
        path = state_dir / DB_NAME
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not path.exists()
            if not created and path.stat().st_size == 0:
                raise StateError(
                    f"the state database {path} is empty (0 bytes): it existed and lost its "
                    "content (a full disk, a failed restore?). Starting afresh would page every "
                    "open incident again under a new id, so watchkeeper will not: restore it "
                    "from a backup, or delete the empty file to start over"
                )
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database {path}: {exc}") from exc
        try:
            if created:
                os.chmod(path, 0o600)
            configure(conn)
            migrate(conn, path)
            _incremental_vacuum_on(conn, path)
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

    def vacuum_steps(self, pages: int = VACUUM_STEP_PAGES) -> Iterator[int]:
        """Give the free pages beyond `FREE_SLACK` of the file back to the file system,
        `pages` a transaction (`PRAGMA incremental_vacuum`; never a full VACUUM, which would
        hold the write lock while it rewrites the whole file); yields pages released."""
        while True:
            with self._lock:
                if self._conn is None:
                    return
                total, free, mode = (
                    int(self._conn.execute(f"PRAGMA {name}").fetchone()[0])
                    for name in ("page_count", "freelist_count", "auto_vacuum")
                )
                spare = free - int(total * FREE_SLACK)
                if mode != INCREMENTAL or spare <= 0:
                    return
                step = min(pages, spare)
                try:  # its own transaction: Python steps a PRAGMA once unless in a script
                    self._conn.executescript(f"PRAGMA incremental_vacuum({step})")
                except sqlite3.Error as exc:
                    raise StateError(f"state database {self.path}: {exc}") from exc
            yield step

    @contextmanager
    def transaction(
        self, *, write: bool = True, serialize: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock. `write` takes SQLite's write lock at BEGIN
        (`BEGIN IMMEDIATE`), so a read-then-write decision holds against other threads and
        other processes; False gives a read snapshot. Commits on success, rolls back on any
        exception; SQLite errors surface as StateError. `serialize=False` (PostgreSQL: no
        database-wide write lock, row locks only, no fence) is for the leader lease, which
        must not wait behind a long write, and for heartbeat pings, which are not engine state;
        here it only leaves out the fence."""
        with self._lock:
            if self._conn is None:
                raise StateError(f"the state database {self.path} is closed")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    if write and serialize and self.fence is not None:
                        self.fence(conn)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"state database {self.path}: {exc}") from exc


def _incremental_vacuum_on(conn: sqlite3.Connection, path: Path) -> None:
    """Databases created before auto_vacuum was set get it with a one-time VACUUM when they
    are small enough for it to take about a second (it holds the write lock throughout);
    a bigger one keeps reusing its free pages, and the README says how to convert it."""
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == INCREMENTAL:
        return
    if path.stat().st_size <= CONVERT_AT_OPEN_BYTES:
        conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL}")
        conn.execute("VACUUM")


def rowid(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:  # pragma: no cover - INSERT always sets it
        raise StateError("INSERT did not return a row id")
    return cursor.lastrowid
