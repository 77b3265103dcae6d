"""Opening the state database: created private, migrated, and never silently recreated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from daemon.errors import StateError
from daemon.store import Store
from daemon.store.database import DB_NAME


def test_a_new_database_is_private(tmp_path: Path) -> None:
    Store.open(tmp_path / "state").close()
    mode = (tmp_path / "state" / DB_NAME).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_database_emptied_to_zero_bytes_is_refused_not_recreated(tmp_path: Path) -> None:
    """A truncated file would otherwise be taken for a new one and every open incident paged
    again under a new id."""
    state = tmp_path / "state"
    state.mkdir()
    (state / DB_NAME).write_bytes(b"")
    with pytest.raises(StateError, match=r"is empty \(0 bytes\).*restore it from a backup"):
        Store.open(state)
    assert (state / DB_NAME).stat().st_size == 0  # left exactly as found
    (state / DB_NAME).unlink()  # the explicit way to start over
    Store.open(state).close()
