"""The members of a sharded cluster on both backends: join, heartbeat, lapse on the database's
clock, a restarted node waiting for its predecessor's row; a lapsed member's writes refused;
results stored by nodes read back in id order with their location."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.models import CheckResult
from daemon.store.members import Lapsed
from tests.daemon.store.conftest import OpenStore

TERM = timedelta(seconds=1)
T0 = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


def result(check: str, location: str | None, status: str = "ok", s: int = 0) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,  # type: ignore[arg-type]
        evidence=f"{check} from {location}",
        started_at=T0 + timedelta(seconds=s),
        location=location,
    )


def test_members_join_heartbeat_lapse_and_leave(tmp_path: Path, open_store: OpenStore) -> None:
    with open_store(tmp_path) as store:
        members = store.members
        assert members.join("a", "a:1:x", "eu-1", TERM)
        assert members.join("b", "b:1:y", None, TERM)
        assert not members.join("a", "a:2:z", "eu-1", TERM)  # a restart waits for the old row
        assert [(m.node, m.location) for m in members.live(TERM)] == [("a", "eu-1"), ("b", None)]
        time.sleep(0.6)
        assert members.beat("a", "a:1:x", owned=7)
        time.sleep(0.6)
        assert [m.node for m in members.live(TERM)] == ["a"]  # b's heartbeat lapsed
        assert members.join("b", "b:2:w", "us-1", TERM)  # b's successor takes the row
        assert not members.beat("b", "b:1:y", owned=1)  # the old process is told it is out
        every, _ = members.all()
        assert {m.node: m.owned for m in every} == {"a": 7, "b": 0}
        members.leave("a", "a:1:x")
        assert [m.node for m in members.live(TERM)] == ["b"]


def test_a_lapsed_member_cannot_store_results(tmp_path: Path, open_store: OpenStore) -> None:
    with open_store(tmp_path) as store:
        assert store.members.join("a", "a:1:x", "eu-1", TERM)
        store.db.fence = store.members.fence("a", "a:1:x", TERM)
        store.results.add([result("shop", "eu-1")])
        time.sleep(TERM.total_seconds() + 0.2)
        with pytest.raises(Lapsed, match="membership lapsed"):
            store.results.add([result("shop", "eu-1", s=1)])
        store.db.fence = None
        assert len(store.results.recent("shop")) == 1


def test_results_since_a_cursor_and_the_latest_from_each_location(
    tmp_path: Path, open_store: OpenStore
) -> None:
    with open_store(tmp_path) as store:
        assert store.results.last_id() == 0
        first = store.results.add([result("shop", "eu-1", "failing"), result("api", None)])
        store.results.add([result("shop", "us-1", s=1), result("shop", "eu-1", s=2)])
        batch = store.results.since(0, 10)
        assert [r.location for _, r in batch] == ["eu-1", None, "us-1", "eu-1"]
        assert [i for i, _ in batch] == sorted(i for i, _ in batch)
        assert [r.check for _, r in store.results.since(first, 10)] == ["shop", "shop"]
        assert len(store.results.since(0, 3)) == 3
        latest = store.results.latest_from("shop", ["eu-1", "us-1", "ap-1"])
        assert set(latest) == {"eu-1", "us-1"}
        assert latest["eu-1"][0].status == "ok" and latest["eu-1"][0].started_at == T0 + (
            timedelta(seconds=2)
        )
