"""Remembered model modes on both backends: kept per provider, server (base URL) and model,
re-probed after a day, and a row from before servers were told apart (`base_url = ''`) read for
any server until that server's own outcome is remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.daemon.store.conftest import OpenStore

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
A, B = "http://10.0.0.5:8000/v1", "http://10.0.0.6:8080/v1"


def test_modes_are_kept_per_server(tmp_path: Path, open_store: OpenStore) -> None:
    with open_store(tmp_path) as store:
        caps = store.capabilities
        caps.remember("box", "qwen3", "structured", "json", base_url=A, now=NOW)
        caps.remember("box", "qwen3", "think", "none", base_url=A, now=NOW, detail="refused")
        caps.remember("box", "qwen3", "structured", "schema", base_url=B, now=NOW)
        assert caps.mode("box", "qwen3", "structured", base_url=A, now=NOW) == "json"
        assert caps.mode("box", "qwen3", "structured", base_url=B, now=NOW) == "schema"
        assert caps.mode("box", "qwen3", "think", base_url=B, now=NOW) is None
        later = NOW + timedelta(days=1, minutes=1)
        assert caps.mode("box", "qwen3", "structured", base_url=A, now=later) is None
        caps.remember("box", "qwen3", "structured", "prompt", base_url=A, now=NOW)
        assert caps.mode("box", "qwen3", "structured", base_url=A, now=NOW) == "prompt"
        rows = [(c.base_url, c.feature, c.mode) for c in caps.all()]
    assert rows == [(A, "structured", "prompt"), (A, "think", "none"), (B, "structured", "schema")]


def test_an_old_row_without_a_server_applies_until_one_is_remembered(
    tmp_path: Path, open_store: OpenStore
) -> None:
    with open_store(tmp_path) as store:
        caps = store.capabilities
        caps.remember("box", "qwen3", "tools", "none", now=NOW)  # base_url '' as migrated
        assert caps.mode("box", "qwen3", "tools", base_url=A, now=NOW) == "none"
        caps.remember("box", "qwen3", "tools", "native", base_url=A, now=NOW)
        assert caps.mode("box", "qwen3", "tools", base_url=A, now=NOW) == "native"
        assert caps.mode("box", "qwen3", "tools", base_url=B, now=NOW) == "none"
