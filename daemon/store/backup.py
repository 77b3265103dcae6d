"""A consistent copy of the state database, safe while the daemon writes to it.

SQLite's online backup API copies every page within one read transaction: in WAL mode that is
a snapshot of the last commit that never blocks the daemon's writer (copying the file with
`cp` could catch half a checkpoint). The copy is created 0600 before a byte is written and an
existing file is never overwritten. The source is opened read-only: a backup never migrates,
repairs or otherwise changes the database it copies.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import StateError
from daemon.store.schema import BUSY_TIMEOUT_MS


@dataclass(frozen=True)
class BackupReport:
    source: Path
    destination: Path
    size_bytes: int
    schema_version: int
    integrity: str
    """SQLite's `PRAGMA integrity_check` of the copy: "ok", or its first complaint."""


def backup_database(source: Path, destination: Path) -> BackupReport:
    """Copy `source` to `destination` (which must not exist: FileExistsError). StateError when
    the source cannot be read; the partial copy is removed then."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(destination, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask: the copy holds evidence and incidents
    finally:
        os.close(fd)
    try:
        return _copy(source, destination)
    except BaseException:
        for leftover in (destination, *_sidecars(destination)):
            leftover.unlink(missing_ok=True)
        raise


def _copy(source: Path, destination: Path) -> BackupReport:
    try:
        src = sqlite3.connect(
            f"{source.absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise StateError(f"cannot open the state database {source}: {exc}") from exc
    try:
        dst = sqlite3.connect(destination)
        try:
            # pages=-1 (all at once): one read transaction, so one consistent snapshot. Copying
            # in steps would restart whenever another process commits, forever on a busy daemon.
            src.backup(dst, pages=-1)
            version = int(dst.execute("PRAGMA user_version").fetchone()[0])
            integrity = str(dst.execute("PRAGMA integrity_check(1)").fetchone()[0])
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise StateError(f"cannot back up the state database {source}: {exc}") from exc
    finally:
        src.close()
    return BackupReport(
        source=source,
        destination=destination,
        size_bytes=destination.stat().st_size,
        schema_version=version,
        integrity=integrity,
    )


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm"))
