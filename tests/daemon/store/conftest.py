"""Every store test that takes `store` or `open_store` runs on both backends: the SQLite file
and a real PostgreSQL server the tests start themselves (tests/peers/postgres.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.store import Store

OpenStore = Callable[[Path], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(backend: str, request: pytest.FixtureRequest) -> OpenStore:
    """Opens the test's store: the SQLite file in the given directory, or the test's own
    PostgreSQL database (the same one each time, so a test can reopen it)."""
    if backend == "sqlite":
        return Store.open
    url = request.getfixturevalue("postgres_url")
    return lambda state_dir: Store.open(state_dir, url)
