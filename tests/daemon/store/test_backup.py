"""`backup_database`: a consistent snapshot while another connection keeps committing, 0600
whatever the umask, never over an existing file, the source never changed."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import StateError
from daemon.store import Store
from daemon.store.backup import backup_database
from daemon.store.database import DB_NAME, Database
from daemon.store.schema import SCHEMA_VERSION

BATCH = 40
PADDING = "x" * 400


def _fill(db: Database, batches: range) -> None:
    for batch in batches:
        with db.transaction() as conn:
            conn.executemany(
                "INSERT INTO pairs (batch, i, padding) VALUES (?, ?, ?)",
                [(batch, i, PADDING) for i in range(BATCH)],
            )


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[tuple[Path, threading.Event, list[int]]]:
    """The real state database (WAL, synchronous=FULL), a few MB of it, and a thread that
    keeps committing batches of BATCH rows on its own connection until told to stop."""
    state = tmp_path / "state"
    db = Database.open(state)
    with db.transaction() as conn:
        conn.execute("CREATE TABLE pairs (batch INTEGER, i INTEGER, padding TEXT)")
    _fill(db, range(200))
    stop = threading.Event()
    committed: list[int] = []

    def write() -> None:
        batch = 200
        while not stop.is_set():
            _fill(db, range(batch, batch + 1))
            committed.append(batch)
            batch += 1

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    yield state / DB_NAME, stop, committed
    stop.set()
    thread.join(10)
    db.close()


def test_a_backup_taken_during_writes_is_one_consistent_snapshot(
    busy: tuple[Path, threading.Event, list[int]], tmp_path: Path
) -> None:
    source, stop, committed = busy
    while len(committed) < 5:  # the writer is really writing
        threading.Event().wait(0.01)
    copies = [backup_database(source, tmp_path / f"copy-{n}.db") for n in range(3)]
    stop.set()
    for report in copies:
        assert report.integrity == "ok"
        assert report.schema_version == SCHEMA_VERSION
        conn = sqlite3.connect(report.destination)
        sizes = conn.execute("SELECT batch, COUNT(*) FROM pairs GROUP BY batch").fetchall()
        conn.close()
        batches = [batch for batch, _ in sizes]
        # every transaction whole or absent, and none missing before the last one copied
        assert {count for _, count in sizes} == {BATCH}
        assert batches == list(range(len(batches)))
        assert len(batches) >= 205
    # the writer went on committing after (and between) the backups
    assert committed[-1] > 205


def test_the_copy_opens_as_a_state_database(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state"):
        pass
    (tmp_path / "restore").mkdir()
    report = backup_database(tmp_path / "state" / DB_NAME, tmp_path / "restore" / DB_NAME)
    with Store.open(tmp_path / "restore") as store:  # migrates nothing, refuses nothing
        assert store.path == report.destination


@pytest.fixture
def lax_umask() -> Iterator[None]:
    old = os.umask(0o000)
    yield
    os.umask(old)


def test_the_copy_is_0600_whatever_the_umask(tmp_path: Path, lax_umask: None) -> None:
    with Store.open(tmp_path / "state"):
        pass
    report = backup_database(tmp_path / "state" / DB_NAME, tmp_path / "b.db")
    assert stat.S_IMODE(report.destination.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("b.db-*"))  # no journal left beside it


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state"):
        pass
    existing = tmp_path / "b.db"
    existing.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        backup_database(tmp_path / "state" / DB_NAME, existing)
    assert existing.read_bytes() == b"precious"


def test_the_source_is_not_changed(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state"):
        pass
    source = tmp_path / "state" / DB_NAME
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    backup_database(source, tmp_path / "b.db")
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_an_unreadable_source_leaves_no_partial_copy(tmp_path: Path) -> None:
    source = tmp_path / DB_NAME
    source.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(StateError, match="cannot back up the state database"):
        backup_database(source, tmp_path / "b.db")
    assert not (tmp_path / "b.db").exists()
