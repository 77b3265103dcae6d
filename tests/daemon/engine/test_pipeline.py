"""Triage hears about an anomaly once, not every cycle while it persists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.config.load import load_settings
from daemon.engine.baselines import Anomaly
from daemon.engine.pipeline import Pipeline
from daemon.models import CheckResult

T = datetime(2026, 11, 27, 12, tzinfo=UTC)


def anomaly(check: str) -> Anomaly:
    return Anomaly(check, None, "latency_ms", 812.0, 133.0, 6.1, 40.0, "latency 812 ms is 6.1x")


def result(check: str) -> CheckResult:
    return CheckResult(check=check, status="degraded", evidence="slow", started_at=T)


async def test_a_persisting_anomaly_is_fresh_only_once(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n')
    store: Any = None  # _fresh touches neither the store nor the checks
    pipeline = Pipeline(load_settings(path), store, None, now=lambda: T)  # type: ignore[arg-type]
    first = pipeline._fresh([result("api")], [anomaly("api")])
    again = pipeline._fresh([result("api")], [anomaly("api")])
    other_check_only = pipeline._fresh([result("db")], [])
    still = pipeline._fresh([result("api")], [anomaly("api")])
    gone = pipeline._fresh([result("api")], [])
    back = pipeline._fresh([result("api")], [anomaly("api")])
    assert [len(x) for x in (first, again, other_check_only, still, gone, back)] == [
        1,
        0,
        0,
        0,
        0,
        1,
    ]
