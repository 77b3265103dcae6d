"""The engine state is committed in proportion to what changed: each check's state is its own
row, rewritten only for the checks an evaluation touched; removed checks lose their row; a
database written before this layout (checks inside the JSON row) still loads, and the first
commit without `changed` rewrites it whole."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.engine.incidents import CheckPolicy, IncidentPolicy, evaluate
from daemon.models import CheckResult, CheckState, EngineState, Severity
from daemon.store import Store
from daemon.store.database import DB_NAME

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def ok(name: str, minute: int) -> CheckResult:
    return CheckResult(
        check=name,
        status="ok",
        evidence=f"{name} fine",
        started_at=T0 + timedelta(minutes=minute),
        latency_ms=1.5,
        values={"latency_ms": 1.5, "body_bytes": 2},
        labels={"type": "http"},
    )


def rows(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path / DB_NAME)
    try:
        return dict(conn.execute("SELECT check_name, data FROM check_states").fetchall())
    finally:
        conn.close()


def test_only_the_checks_that_changed_are_rewritten_and_a_reopen_sees_it_all(
    tmp_path: Path,
) -> None:
    checks = {f"c{i}": CheckPolicy(f"c{i}", Severity.HIGH) for i in range(50)}
    rules = IncidentPolicy()
    store = Store.open(tmp_path)
    first = evaluate(EngineState(), [ok(n, 0) for n in checks], checks, rules, T0)
    store.incidents.commit_cycle([ok(n, 0) for n in checks], first.state, [], [], [])
    before = rows(tmp_path)
    assert len(before) == 50

    batch = [ok("c3", 1), ok("c7", 1)]
    second = evaluate(first.state, batch, checks, rules, T0 + timedelta(minutes=1))
    conn = store.db._conn
    assert conn is not None
    changes = conn.total_changes
    store.incidents.commit_cycle(batch, second.state, [], [], [], changed=second.touched)
    # 2 results + 2 check states + the engine_state row: not the other 48 checks
    assert conn.total_changes - changes == 5
    after = rows(tmp_path)
    assert {n for n in after if after[n] != before[n]} == {"c3", "c7"}
    store.close()
    with Store.open(tmp_path) as reopened:
        assert reopened.incidents.engine_state() == second.state
        assert reopened.results.recent("c3", 10) == [ok("c3", 1), ok("c3", 0)]


def test_a_removed_check_loses_its_row(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        old = EngineState(checks={"a": CheckState(), "b": CheckState(failing=True)})
        store.incidents.commit_cycle([], old, [], [], [])
        new = old.model_copy(update={"checks": {"a": old.checks["a"]}})
        store.incidents.commit_cycle([], new, [], [], [], changed={"b"})
        assert store.incidents.engine_state() == new
    assert set(rows(tmp_path)) == {"a"}


def test_a_state_written_before_check_states_existed_still_loads(tmp_path: Path) -> None:
    legacy = EngineState(checks={"api": CheckState(failing=True, consecutive_failures=3)})
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(
        "INSERT INTO engine_state (id, data, updated_at) VALUES (1, ?, ?)",
        (legacy.model_dump_json(), "2026-03-02T00:00:00.000000+00:00"),
    )
    conn.commit()
    conn.close()
    with Store.open(tmp_path) as store:
        assert store.incidents.engine_state() == legacy
        store.incidents.commit_cycle([], legacy, [], [], [])  # no `changed`: all of it
        assert store.incidents.engine_state() == legacy
    assert set(rows(tmp_path)) == {"api"}
