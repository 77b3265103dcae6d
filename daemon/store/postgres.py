"""The state in PostgreSQL (`[store] url = "postgresql://…"`): the same repositories, the same
versioned migrations and the same one-transaction-per-call contract as the SQLite file, for
several watchkeeper processes (an active/standby pair, CLI commands on other machines) sharing
one database.

Contract kept from SQLite, and how:
- A write transaction first takes one transaction-scoped advisory lock (`WRITE_LOCK`), as
  SQLite's `BEGIN IMMEDIATE` takes its write lock: every read-then-write decision the
  repositories make (a budget reservation against the spending so far, an acknowledgement
  recorded once, an outbox claim) holds across processes and machines exactly as it does on
  one file. The outbox claim also locks its rows (`FOR UPDATE … SKIP LOCKED`).
- A read transaction is one `REPEATABLE READ` snapshot, as SQLite's deferred `BEGIN`.
- The server kills a session that sits in a transaction (a wedged process holding the write
  lock) after `IDLE_IN_TRANSACTION`, and a write waits for the lock at most `LOCK_TIMEOUT`.
- A lost connection surfaces as StateError and the next transaction connects again; the
  password is passed apart from the URL and never appears in a message (`where` is the URL
  without it).

psycopg 3's synchronous connection, on the store's own thread like SQLite's (`store_io`): the
repositories are synchronous, and one connection per process under a lock is what they assume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from daemon.errors import StateError
from daemon.store.database import Database
from daemon.store.dialect import inserts_identity, migration_to_postgres, to_postgres
from daemon.store.schema import _MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite3

    import psycopg

WRITE_LOCK = 0x77617463
"""The advisory lock key every write transaction takes ("watc")."""
MIGRATE_LOCK = 0x77617464
LOCK_TIMEOUT_MS = 20_000
IDLE_IN_TRANSACTION_MS = 30_000
CONNECT_TIMEOUT_S = 5


def redacted(url: str) -> str:
    """`postgresql://user@host:port/db`: the URL as messages show it, without a password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:  # a malformed URL: say so without echoing it
        return "postgresql://(unparsable URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


class Row(tuple[Any, ...]):
    """A result row read by position or by column name, as `sqlite3.Row`."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


class Cursor:
    """What a repository reads back from `execute`: rows, `rowcount`, `lastrowid`."""

    def __init__(self, cursor: psycopg.Cursor[Row], lastrowid: int | None) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> Row | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Row]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Row]:
        return iter(self._cursor)


class Connection:
    """The part of `sqlite3.Connection` the repositories use, over a psycopg connection: each
    statement is translated once (`daemon.store.dialect`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = ()) -> Cursor:
        cursor = self._conn.cursor(row_factory=_row_factory)
        cursor.execute(to_postgres(sql, returning_id=True), params or None)
        lastrowid = None
        if inserts_identity(sql) and cursor.description is not None:
            row = cursor.fetchone()
            lastrowid = None if row is None else int(row[0])
        return Cursor(cursor, lastrowid)

    def executemany(self, sql: str, params: Any) -> Cursor:
        cursor = self._conn.cursor(row_factory=_row_factory)
        rows = list(params)
        if rows:
            cursor.executemany(to_postgres(sql), rows)
        return Cursor(cursor, None)


class PostgresDatabase(Database):
    """Build it with `PostgresDatabase.open(url, password)`; same `transaction` contract as
    the SQLite `Database`."""

    row_lock = " FOR UPDATE OF {alias} SKIP LOCKED"
    update_lock = " FOR UPDATE"
    share_lock = " FOR SHARE"
    server_clock = "SELECT clock_timestamp()"

    def __init__(self, url: str, password: str | None, conn: psycopg.Connection[Any]) -> None:
        self.where = redacted(url)
        self.path = Path(self.where)
        self.url = url
        self._password = password
        self._pg: psycopg.Connection[Any] | None = conn
        self._lock = threading.Lock()
        self._closed = False
        self.fence = None

    @classmethod
    def open(cls, url: str, password: str | None = None) -> PostgresDatabase:  # type: ignore[override]
        """Connect and migrate to this code's schema; StateError when unusable."""
        conn = _connect(url, password)  # first: it says how to install a missing driver
        try:
            _migrate(conn, redacted(url))
        except BaseException:
            conn.close()
            raise
        return cls(url, password, conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pg is not None:
                self._pg.close()
                self._pg = None

    def vacuum_steps(self, pages: int = 0) -> Iterator[int]:
        """Nothing to do: the server's autovacuum marks pruned rows' space for reuse in the
        background (tables do not shrink on disk, nor grow at a steady retention)."""
        return iter(())

    def interrupt(self) -> None:
        """Cut the connection from another thread (tests of a partitioned node)."""
        pg = self._pg
        if pg is not None:
            pg.pgconn.finish()

    @contextmanager
    def transaction(
        self, *, write: bool = True, serialize: bool = True
    ) -> Iterator[sqlite3.Connection]:
        import psycopg

        with self._lock:
            if self._closed:
                raise StateError(f"the state database {self.where} is closed")
            try:
                if self._pg is None or self._pg.closed or self._pg.broken:
                    self._pg = None
                    self._pg = _connect(self.url, self._password)
                pg = self._pg
                conn = Connection(pg)
                if write:
                    pg.execute("BEGIN")
                    if serialize:
                        pg.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                else:
                    pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    if write and serialize and self.fence is not None:
                        self.fence(cast("sqlite3.Connection", conn))
                    yield cast("sqlite3.Connection", conn)
                except BaseException:
                    if not pg.broken and not pg.closed:
                        pg.execute("ROLLBACK")
                    raise
                pg.execute("COMMIT")
            except psycopg.Error as exc:
                if self._pg is not None and (self._pg.broken or self._pg.closed):
                    self._pg = None
                raise StateError(f"state database {self.where}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The server's first line, without the connection string psycopg may quote."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


def _connect(url: str, password: str | None) -> psycopg.Connection[Any]:
    try:
        import psycopg
    except ImportError:
        raise StateError(
            "[store] url names a PostgreSQL database, but its driver is not installed: "
            "pip install 'watchkeeper[postgresql]'"
        ) from None

    options = (
        f"-c lock_timeout={LOCK_TIMEOUT_MS} "
        f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
    )
    extra: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": "watchkeeper",
        "options": options,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
    }
    if password is not None:
        extra["password"] = password
    try:
        return psycopg.connect(url, **extra)
    except psycopg.Error as exc:
        raise StateError(
            f"cannot connect to the state database {redacted(url)}: {_reason(exc)}"
        ) from exc


def _migrate(conn: psycopg.Connection[Any], where: str) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction, under an advisory lock, so two
    processes starting at once migrate once; a database newer than this code is refused."""
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS watchkeeper_schema "
                "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
            )
            row = conn.execute("SELECT version FROM watchkeeper_schema WHERE id = 1").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"{where} has schema version {version}, but this watchkeeper knows only up "
                    f"to {SCHEMA_VERSION}: it was written by a newer release; upgrade "
                    "watchkeeper or point [store] url elsewhere"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in migration_to_postgres(_MIGRATIONS[number]):
                    conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO watchkeeper_schema (id, version) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
    except psycopg.Error as exc:
        raise StateError(f"cannot use the state database {where}: {_reason(exc)}") from exc
