"""Vantage points, pure: the verdict is the status a quorum of locations agrees on; stale and
missing locations do not vote; an unreachable quorum judges nothing (no verdict); the evidence
has every location's line. And the plan: each check to one live member, a located check to one
member of each of its locations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.engine.shards import plan, unstaffed
from daemon.engine.vantage import Vantage, unreachable, verdict
from daemon.models import CheckResult, Status
from daemon.store.members import Member
from jobs.base import CheckSpec
from jobs.tcp import TcpCheck

NOW = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
FRESH = timedelta(seconds=30)


def at(where: str, status: Status, age_s: float = 2, evidence: str = "") -> Vantage:
    result = CheckResult(
        check="shop",
        status=status,
        evidence=evidence or f"GET /shop from {where}: {status}",
        started_at=NOW - timedelta(seconds=age_s),
        latency_ms=42.0,
        location=where,
    )
    return Vantage(where, [result], live=True)


def judge(*vantages: Vantage, quorum: int = 2) -> CheckResult:
    got = verdict("shop", vantages, quorum, NOW, FRESH)
    assert got is not None
    return got


def test_one_location_failing_is_below_the_quorum_but_named() -> None:
    got = judge(at("eu-1", "failing"), at("us-1", "ok"), at("ap-1", "ok"))
    assert got.status == "ok"
    lines = got.evidence.splitlines()
    assert lines[0] == "1 of 3 locations not ok (quorum 2, below the quorum)"
    assert lines[1].startswith("eu-1: FAILING, 42 ms, 2s ago — GET /shop from eu-1: failing")
    assert lines[2].startswith("us-1: OK, ") and lines[3].startswith("ap-1: OK, ")


def test_two_locations_agreeing_make_the_check_fail_with_every_location_shown() -> None:
    got = judge(at("eu-1", "failing"), at("us-1", "error"), at("ap-1", "ok"))
    assert got.status == "failing"  # two agree on at least failing (one says worse)
    assert got.evidence.splitlines()[0] == "2 of 3 locations not ok (quorum 2, agree)"
    assert [line.split(":")[0] for line in got.evidence.splitlines()[1:]] == [
        "eu-1",
        "us-1",
        "ap-1",
    ]
    assert got.check == "shop" and got.location is None


def test_the_verdict_is_the_status_the_quorum_agrees_on() -> None:
    assert judge(at("a", "degraded"), at("b", "failing"), at("c", "ok")).status == "degraded"
    assert judge(at("a", "failing"), at("b", "ok"), quorum=1).status == "failing"
    assert judge(at("a", "failing"), at("b", "failing"), at("c", "ok"), quorum=3).status == "ok"


def test_a_stale_result_does_not_vote() -> None:
    got = judge(at("eu-1", "failing"), at("us-1", "failing", age_s=120), at("ap-1", "ok"))
    assert got.status == "ok"
    assert "us-1: FAILING, 42 ms, 2m ago, stale: not counted" in got.evidence


def test_a_location_without_a_live_node_is_named_and_an_unreachable_quorum_judges_nothing() -> None:
    missing = Vantage("ap-1", [], live=False)
    got = judge(at("eu-1", "ok"), at("us-1", "failing"), missing)
    assert got.status == "ok" and "ap-1: no live node in this location" in got.evidence
    # one location left for a quorum of 2: nothing can be concluded, so no verdict at all
    alone = [at("eu-1", "failing"), Vantage("us-1", [], False), missing]
    assert verdict("shop", alone, 2, NOW, FRESH) is None
    assert unreachable(alone, 2) == ["us-1", "ap-1"]
    assert unreachable(alone, 1) == []
    waiting = judge(at("eu-1", "failing"), Vantage("us-1", [], True), Vantage("ap-1", [], True))
    assert waiting.status == "ok" and "us-1: no result yet" in waiting.evidence


def member(node: str, location: str | None) -> Member:
    return Member(node, f"{node}:1:x", location, NOW, NOW, 0)


def spec(name: str, locations: list[str] | None = None) -> CheckSpec:
    return TcpCheck(name=name, type="tcp", host="127.0.0.1", port=1, locations=locations or [])


def test_the_plan_runs_each_check_once_and_a_located_one_once_per_location() -> None:
    members = [member("a", "eu-1"), member("b", "eu-1"), member("c", "us-1"), member("d", None)]
    specs = [spec(f"c{i}") for i in range(200)] + [spec("shop", ["eu-1", "us-1", "ap-1"])]
    runs = plan(specs, members)
    for i in range(200):
        assert sum(f"c{i}" in names for names in runs.values()) == 1
    holders = sorted(node for node, names in runs.items() if "shop" in names)
    assert len(holders) == 2 and "c" in holders and holders[0] in {"a", "b"}
    assert all(len(runs[node]) > 25 for node in "abcd")
    assert unstaffed(specs, members) == {"ap-1": ["shop"]}
