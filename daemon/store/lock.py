"""One daemon per state directory: an advisory `flock` on `state_dir/watchkeeper.lock`.

The kernel drops the lock when the process dies (even on kill -9), so a stale file never
blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from daemon.errors import StateError


class StateLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "watchkeeper.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StateError(
                f"another watchkeeper (pid {holder}) is already using {self.path.parent}; "
                "stop it first, or give this one its own daemon.state_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the process holding `state_dir`'s lock (a daemon, `run --once`,
    `check --record`), or None when nobody holds it. Read-only for a holder: on Linux the
    kernel's lock table answers without touching the lock; elsewhere (or when the table does
    not show this file, as on some overlay file systems) a shared lock is tried and dropped at
    once — a starting daemon could only collide with that within microseconds."""
    path = state_dir / "watchkeeper.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        found = _kernel_lock_pid(os.fstat(fd))
        if found is not None:
            return found
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _kernel_lock_pid(stat: os.stat_result) -> int | None:
    """The pid holding a FLOCK write lock on this file according to /proc/locks."""
    device = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            for entry in table:
                fields = entry.split()
                # `1: FLOCK  ADVISORY  WRITE 1699 fe:00:2311013 0 EOF` (`->` marks a waiter)
                if fields[1:2] == ["FLOCK"] and fields[5:6] == [device] and fields[4].isdigit():
                    return int(fields[4])
    except OSError:
        return None
    return None
