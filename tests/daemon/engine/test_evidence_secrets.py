"""A monitored system may echo a secret: a command printing `password=…`, one echoing the value
of its own `secret:` environment variable, a log line with a connection string. Evidence is
masked before it is stored, shown, notified or put in a prompt — also for `run --once`."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.service.once import run_once
from tests.peers.receivers import WebhookReceiver

SECRET = "s3cr3t-token-0a9b8c7d6e"
PASSWORD = "hunter2-not-for-you"


async def test_evidence_that_echoes_secrets_is_masked_everywhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_webhook_receiver: Callable[[], WebhookReceiver],
) -> None:
    monkeypatch.setenv("DB_TOKEN", SECRET)
    receiver = make_webhook_receiver()
    script = (
        "import os, sys; "
        f"print('connect postgres://app:{PASSWORD}@db:5432/app failed; password={PASSWORD}; "
        "token', os.environ['TOKEN']); sys.exit(3)"
    )
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"
[triage]
enabled = false
[escalation]
enabled = false
[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hook"
[[checks]]
name = "leaky"
type = "command"
command = ["{sys.executable}", "-c", "{script}"]
env = {{TOKEN = "secret:DB_TOKEN"}}
failure_threshold = 1
""")
    report = await run_once(load_settings(path))
    (result,) = report.results
    assert result.status == "failing"
    assert "postgres://app:***@db:5432" in result.evidence
    for leaked in (SECRET, PASSWORD):
        assert leaked not in result.evidence
        assert leaked not in str(receiver.messages)
    db = sqlite3.connect(tmp_path / "state" / "watchkeeper.db")
    try:
        dump = "\n".join(db.iterdump())
    finally:
        db.close()
    assert "postgres://app:***@db:5432" in dump  # the evidence is there, masked
    assert SECRET not in dump and PASSWORD not in dump
