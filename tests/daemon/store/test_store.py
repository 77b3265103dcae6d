from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import StateError
from daemon.models import (
    CheckResult,
    EngineState,
    Incident,
    IncidentEvent,
    Severity,
    Status,
    fingerprint,
)
from daemon.store import Store
from daemon.store.database import DB_NAME
from daemon.store.outbox import OutboxItem
from daemon.store.schema import SCHEMA_VERSION
from tests import ROOT
from tests.daemon.store.conftest import OpenStore

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)


def result(
    check: str, at: datetime, status: Status = "failing", subject: str | None = None
) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        evidence=f"{check} said no at {at:%H:%M:%S}",
        started_at=at,
        latency_ms=41.5,
        subject=subject,
        values={"code": 503, "ok": False, "note": None},
        labels={"env": "prod"},
    )


def incident(incident_id: int, check: str = "api", at: datetime = T0, **kw: object) -> Incident:
    return Incident(
        id=incident_id,
        fingerprint=fingerprint(check),
        check=check,
        severity=Severity.HIGH,
        opened_at=at,
        evidence="503",
        **kw,
    )


def event(
    incident_id: int, kind: str = "opened", at: datetime = T0, check: str = "api"
) -> IncidentEvent:
    return IncidentEvent(
        incident_id=incident_id,
        kind=kind,
        at=at,
        check=check,
        severity=Severity.HIGH,
        evidence="503",
        opened_at=T0,
    )


def item(target: str = "ops", event_index: int | None = None, title: str = "t") -> OutboxItem:
    return OutboxItem(target, title, "body", "failure", event_index)


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Iterator[Store]:
    s = open_store(tmp_path / "state")
    yield s
    s.close()


def test_open_creates_private_dir_and_current_schema(tmp_path: Path) -> None:
    state_dir = tmp_path / "a" / "state"
    with Store.open(state_dir):
        pass
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / DB_NAME).stat().st_mode) == 0o600
    conn = sqlite3.connect(state_dir / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"check_results", "engine_state", "incidents", "incident_events", "outbox"} <= tables


def test_connection_is_durable_and_enforces_foreign_keys(tmp_path: Path) -> None:
    store = Store.open(tmp_path)  # SQLite's pragmas (test_postgres.py has PostgreSQL's)
    conn = store.db._conn
    assert conn is not None
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    store.close()


def test_reopening_keeps_everything(tmp_path: Path, open_store: OpenStore) -> None:
    state = EngineState(incidents={1: incident(1)}, next_incident_id=2)
    with open_store(tmp_path) as store:
        store.incidents.commit_cycle(
            [result("api", T0)], state, [event(1)], [], [item(event_index=0)], now=T0
        )
        store.outbox.enqueue([item(title="report")], now=T0)
    with open_store(tmp_path) as store:
        assert store.incidents.engine_state() == state
        assert store.results.latest() == {"api": [result("api", T0)]}
        assert store.incidents.recent(include_resolved=False) == [incident(1)]
        assert store.incidents.get(1) == (incident(1), [event(1)])
        assert [r.title for r in store.outbox.due(T0, 10)] == ["t", "report"]


def test_opening_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer release"):
        Store.open(tmp_path)


def test_opening_a_file_that_is_not_a_database_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="cannot use the state database"):
        Store.open(tmp_path)


def test_empty_store_has_default_engine_state(store: Store) -> None:
    assert store.incidents.engine_state() == EngineState()
    assert store.results.latest() == {}
    assert store.incidents.get(1) is None


def test_commit_cycle_is_all_or_nothing(store: Store) -> None:
    state = EngineState(incidents={1: incident(1)}, next_incident_id=2)
    with pytest.raises(IndexError):
        store.incidents.commit_cycle(
            [result("api", T0)], state, [event(1)], [], [item(event_index=3)]
        )
    assert store.results.latest() == {}
    assert store.incidents.engine_state() == EngineState()
    assert store.incidents.recent(include_resolved=True) == []
    assert store.outbox.counts()["pending"] == 0


def test_commit_cycle_links_outbox_rows_to_their_events(store: Store) -> None:
    state = EngineState(incidents={1: incident(1), 2: incident(2, "db")}, next_incident_id=3)
    events = [event(1), event(2, check="db")]
    store.incidents.commit_cycle([], state, events, [], [item(event_index=1), item()], now=T0)
    rows = store.outbox.due(T0, 10)
    assert [(r.incident_id, r.event_id is not None) for r in rows] == [(2, True), (None, False)]


def test_resolved_incidents_are_updated_in_place(store: Store) -> None:
    store.incidents.commit_cycle([], EngineState(incidents={1: incident(1)}), [event(1)], [], [])
    done = incident(1, status="resolved", resolved_at=T0 + timedelta(minutes=14))
    store.incidents.commit_cycle([], EngineState(), [event(1, "resolved")], [done], [])
    assert store.incidents.recent(include_resolved=False) == []
    assert store.incidents.recent(include_resolved=True) == [done]
    found = store.incidents.get(1)
    assert found is not None
    assert [e.kind for e in found[1]] == ["opened", "resolved"]


def test_list_incidents_is_newest_first_and_limited(store: Store) -> None:
    open_ = {i: incident(i, at=T0 + timedelta(hours=i)) for i in (1, 2, 3)}
    store.incidents.commit_cycle([], EngineState(incidents=open_), [], [], [])
    assert [i.id for i in store.incidents.recent(include_resolved=False)] == [3, 2, 1]
    assert [i.id for i in store.incidents.recent(include_resolved=False, limit=2)] == [3, 2]


def test_last_results_is_the_latest_run_of_each_check(store: Store) -> None:
    later = T0 + timedelta(minutes=1)
    first = [result("api", T0), result("pods", T0, subject="a")]
    second = [result("pods", later, subject="a"), result("pods", later, "ok", subject="b")]
    store.incidents.commit_cycle(first, EngineState(), [], [], [])
    store.incidents.commit_cycle(second, EngineState(), [], [], [])
    assert store.results.latest() == {"api": [result("api", T0)], "pods": second}
    assert store.results.recent("pods", 2) == [second[1], second[0]]


def test_outbox_lifecycle(store: Store) -> None:
    (row_id,) = store.outbox.enqueue([item()], now=T0)
    assert [r.id for r in store.outbox.due(T0, 10)] == [row_id]
    store.outbox.mark_retry(
        row_id, T0, "json://127.0.0.1:9/... returned failure", T0 + timedelta(seconds=15)
    )
    assert store.outbox.due(T0 + timedelta(seconds=14), 10) == []
    assert store.outbox.next_due_at() == T0 + timedelta(seconds=15)
    (row,) = store.outbox.due(T0 + timedelta(seconds=15), 10)
    assert (row.attempts, row.last_error) == (1, "json://127.0.0.1:9/... returned failure")
    store.outbox.mark_delivered(row_id, T0 + timedelta(seconds=16))
    store.outbox.mark_failed(row_id, T0, "ignored: the row is no longer pending")
    assert store.outbox.counts() == {"pending": 0, "delivered": 1, "failed": 0}
    assert store.outbox.next_due_at() is None
    (failing,) = store.outbox.enqueue([item()], now=T0)
    store.outbox.mark_failed(failing, T0, "too old")
    assert store.outbox.counts() == {"pending": 0, "delivered": 1, "failed": 1}


def test_enqueue_rejects_event_index(store: Store) -> None:
    with pytest.raises(ValueError, match="event_index"):
        store.outbox.enqueue([item(event_index=0)])


def test_defer_moves_pending_rows_without_counting_an_attempt(store: Store) -> None:
    ids = store.outbox.enqueue([item(), item()], now=T0)
    store.outbox.defer(ids, T0 + timedelta(minutes=1))
    assert store.outbox.due(T0, 10) == []
    assert [r.attempts for r in store.outbox.due(T0 + timedelta(minutes=1), 10)] == [0, 0]


def test_prune_keeps_open_incidents_and_pending_rows(store: Store) -> None:
    old, new = T0 - timedelta(days=30), T0
    state = EngineState(incidents={1: incident(1, at=old)})
    store.incidents.commit_cycle(
        [result("api", old), result("api", new)], state, [event(1, at=old)], [], []
    )
    pending, delivered = store.outbox.enqueue([item(), item()], now=old)
    store.outbox.mark_delivered(delivered, old)
    assert store.prune(T0 - timedelta(days=14)) == 2  # one result, one delivered row
    assert store.results.recent("api", 10) == [result("api", new)]
    assert store.incidents.recent(include_resolved=False) == [incident(1, at=old)]
    assert [r.id for r in store.outbox.due(T0, 10)] == [pending]


def test_concurrent_writers_from_threads(store: Store) -> None:
    def work(n: int) -> None:
        for i in range(20):
            store.incidents.commit_cycle(
                [result(f"c{n}", T0 + timedelta(seconds=i))], EngineState(), [], [], []
            )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(store.results.recent(f"c{n}", 100)) for n in range(8)) == 160


_CYCLES = r"""
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from daemon.models import CheckResult, EngineState, Incident, IncidentEvent, Severity
from daemon.store import Store
from daemon.store.outbox import OutboxItem

store = Store.open(Path(sys.argv[1]))
n = store.incidents.engine_state().next_incident_id
base = datetime(2026, 1, 1, tzinfo=UTC)
while True:
    at = base + timedelta(seconds=n)
    results = [
        CheckResult(check=f"c{i}", status="failing", evidence=f"cycle {n}", started_at=at,
                    values={"cycle": n})
        for i in range(3)
    ]
    opened = Incident(id=n, fingerprint=str(n), check="c0", severity=Severity.HIGH, opened_at=at)
    event = IncidentEvent(incident_id=n, kind="opened", at=at, check="c0",
                          severity=Severity.HIGH, evidence=f"cycle {n}", opened_at=at)
    state = EngineState(incidents={n: opened}, next_incident_id=n + 1)
    store.incidents.commit_cycle(results, state, [event], [],
                                 [OutboxItem("ops", f"cycle {n}", "b", "failure", 0)])
    print(n, flush=True)
    n += 1
"""


def _kill_mid_cycle(state_dir: Path, rng: random.Random) -> int:
    """Run the cycle writer, SIGKILL it at a random moment; return the last cycle it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CYCLES, str(state_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    printed = 0
    for _ in range(rng.randint(3, 40)):
        printed = int(proc.stdout.readline())
    # busy-spin a random number of iterations: the kill lands anywhere inside a cycle
    for _ in range(rng.randint(0, 200_000)):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return printed


def _assert_complete_cycles(state_dir: Path, printed: int) -> None:
    conn = sqlite3.connect(state_dir / DB_NAME)
    state = EngineState.model_validate_json(
        conn.execute("SELECT data FROM engine_state").fetchone()[0]
    )
    last = state.next_incident_id - 1
    assert last >= printed  # everything reported as committed survived
    assert conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0] == 3 * last
    cycles = conn.execute(
        "SELECT json_extract(values_json, '$.cycle'), COUNT(*) FROM check_results "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert cycles == [(n, 3) for n in range(1, last + 1)]
    assert conn.execute("SELECT COUNT(*), MAX(id) FROM incidents").fetchone() == (last, last)
    linked = conn.execute(
        "SELECT COUNT(*) FROM outbox o JOIN incident_events e ON e.id = o.event_id "
        "WHERE o.title = 'cycle ' || e.incident_id"
    ).fetchone()[0]
    assert linked == last == conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    conn.close()


def test_kill_9_leaves_only_complete_cycles(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("WK_TEST_SEED", "kill-9"))
    for _ in range(10):
        printed = _kill_mid_cycle(tmp_path, rng)
        _assert_complete_cycles(tmp_path, printed)
    with Store.open(tmp_path) as store:  # and the store still opens cleanly afterwards
        assert store.outbox.counts()["pending"] >= 10
