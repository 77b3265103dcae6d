"""The leader's side of sharded mode, in process on a real PostgreSQL: results stored by
several nodes are evaluated once each, by id, with the cursor committed in the engine state;
a new leader resumes at that cursor (nothing evaluated twice, nothing skipped); a deposed
leader's evaluation commits nothing; a vantage check is judged by its locations' quorum."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.engine.pipeline import Pipeline
from daemon.models import CheckResult, Status
from daemon.service.evaluator import Evaluator
from daemon.store import Store
from daemon.store.lease import Deposed
from daemon.store.members import Member

T0 = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
TERM = timedelta(seconds=30)
MEMBERS = [
    Member(f"n-{where}", f"n-{where}:1:x", where, T0, T0, 0) for where in ("eu-1", "us-1", "ap-1")
]


def settings(tmp_path: Path, url: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
[store]
url = "{url}"
[cluster]
mode = "sharded"
[baselines]
enabled = false
[triage]
enabled = false
[escalation]
enabled = false
[[checks]]
name = "api"
type = "tcp"
host = "127.0.0.1"
port = 1
failure_threshold = 3
[[checks]]
name = "shop"
type = "tcp"
host = "127.0.0.1"
port = 1
failure_threshold = 1
locations = ["eu-1", "us-1", "ap-1"]
quorum = 2
""",
        encoding="utf-8",
    )
    return load_settings(path)


def result(check: str, status: Status, s: float, where: str | None = None) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        evidence=f"{check} {status} from {where}",
        started_at=T0 + timedelta(seconds=s),
        latency_ms=5.0,
        location=where,
    )


def leader(store: Store, name: str) -> None:
    lease = store.lease.acquire(f"{name}:1:x", name, timedelta(seconds=1))
    assert lease is not None
    store.db.fence = store.lease.fence(f"{name}:1:x", lease.epoch)


def evaluator(store: Store, config: Settings, now: Callable[[], datetime]) -> Evaluator:
    pipeline = Pipeline(config, store, None, now=now)  # type: ignore[arg-type]
    return Evaluator(store, pipeline, lambda: config, lambda: MEMBERS, TERM, now)


async def test_results_are_evaluated_once_across_a_failover_and_a_deposed_leader_is_fenced(
    tmp_path: Path, postgres_url: str
) -> None:
    config = settings(tmp_path, postgres_url)
    clock = [T0 + timedelta(seconds=10)]
    nodes, old, new = (Store.open(tmp_path, postgres_url) for _ in range(3))
    try:
        leader(old, "old")
        first = evaluator(old, config, lambda: clock[0])
        nodes.results.add([result("api", "failing", 0, "eu-1")])
        cursor, more = await first.once(0)
        assert not more and cursor > 0
        assert old.incidents.engine_state().results_cursor == cursor
        assert old.incidents.engine_state().checks["api"].consecutive_failures == 1

        # the old leader's lease runs out; a new leader takes over and resumes at the cursor
        time.sleep(1.2)
        leader(new, "new")
        second = evaluator(new, config, lambda: clock[0])
        nodes.results.add([result("api", "failing", 1, "us-1")])
        with pytest.raises(Deposed):  # the deposed leader evaluates, and commits nothing
            await first.once(cursor)
        resumed = (await second.pipeline.state()).results_cursor
        assert resumed == cursor
        cursor, _ = await second.once(resumed)
        state = new.incidents.engine_state()
        assert state.checks["api"].consecutive_failures == 2  # not 3: nothing twice
        assert state.results_cursor == cursor

        # a vantage check: one location failing is no incident; two are, with all three shown
        nodes.results.add(
            [
                result("shop", "failing", 2, "eu-1"),
                result("shop", "ok", 2, "us-1"),
                result("shop", "ok", 2, "ap-1"),
            ]
        )
        cursor, _ = await second.once(cursor)
        assert new.incidents.recent(include_resolved=True) == []
        nodes.results.add([result("shop", "failing", 3, "us-1")])
        cursor, _ = await second.once(cursor)
        (incident,) = new.incidents.recent(include_resolved=False)
        assert incident.check == "shop"
        lines = incident.evidence.splitlines()
        assert lines[0] == "2 of 3 locations not ok (quorum 2, agree)"
        assert [line.split(":")[0] for line in lines[1:]] == ["eu-1", "us-1", "ap-1"]
        assert "ap-1: OK, 5 ms" in incident.evidence
        nodes.results.add([result("shop", "ok", 4, "eu-1")])
        await second.once(cursor)
        assert new.incidents.recent(include_resolved=False) == []  # resolved
    finally:
        for store in (nodes, old, new):
            store.close()
