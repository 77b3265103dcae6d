"""Incident evaluation proportional to what changed: `evaluate` (which walks only the checks
that can change and shares the others' state) gives, cycle after cycle, exactly the state and
events of walking every configured check, on seeded estates with dependency chains, outages,
flapping, removed checks, reminders and acknowledgements, with the `watch` hint carried from
cycle to cycle — never mutating its input, and naming in `touched` every check it changed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from daemon.engine.incidents import CheckPolicy, IncidentPolicy, Topology, _evaluate, evaluate
from daemon.models import CheckResult, EngineState, Severity, Status

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def estate(rng: random.Random, size: int) -> dict[str, CheckPolicy]:
    checks = {}
    for i in range(size):
        name = f"c{i:03d}"
        deps = tuple(f"c{j:03d}" for j in rng.sample(range(i), min(i, rng.choice((0, 0, 1, 2)))))
        checks[name] = CheckPolicy(
            name,
            rng.choice(list(Severity)),
            failure_threshold=rng.choice((1, 2, 3)),
            success_threshold=rng.choice((1, 2)),
            depends_on=deps,
        )
    return checks


def batch(
    rng: random.Random, checks: dict[str, CheckPolicy], minute: int, down: set[str]
) -> list[CheckResult]:
    out = []
    for name in checks:
        if rng.random() < 0.4:  # a subset reports each cycle, as with different intervals
            continue
        bad = (name in down and rng.random() < 0.8) or rng.random() < 0.02
        status: Status = rng.choice(("failing", "error", "degraded")) if bad else "ok"
        out.append(
            CheckResult(
                check=name,
                status=status,
                evidence=f"{name} {status} at {minute}",
                started_at=T0 + timedelta(minutes=minute),
                subject=rng.choice((None, None, "a", "b")),
            )
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_evaluate_equals_walking_every_check(seed: int) -> None:
    rng = random.Random(seed)
    checks = estate(rng, 60)
    rules = IncidentPolicy(
        reminder_interval=timedelta(minutes=25), flap_window=timedelta(minutes=20)
    )
    topology = Topology.of(checks)
    fast = full = EngineState()
    watch: frozenset[str] | None = None  # the first call looks at every check
    down: set[str] = set()
    kinds: set[str] = set()
    for minute in range(600):
        if minute % 37 == 0:  # outages come and go, some on shared dependencies
            down = set(rng.sample(sorted(checks), rng.choice((0, 1, 3, 8))))
        if minute == 400:  # a reload removes checks, one of them depended upon
            checks = {n: p for n, p in checks.items() if n not in ("c001", "c030")}
            topology = Topology.of(checks)
        results = batch(rng, checks, minute, down)
        now = T0 + timedelta(minutes=minute, seconds=30)
        acked = frozenset(i for i in fast.incidents if i % 5 == 0)
        before = fast.model_dump()
        got = evaluate(fast, results, checks, rules, now, acked, topology, watch)
        want = _evaluate(full, results, checks, rules, now, acked, None, every=True)
        assert fast.model_dump() == before, f"minute {minute}: the input state changed"
        assert got.state.model_dump() == want.state.model_dump(), f"minute {minute}"
        assert [e.model_dump() for e in got.events] == [e.model_dump() for e in want.events]
        assert [i.model_dump() for i in got.resolved] == [i.model_dump() for i in want.resolved]
        differ = {
            n
            for n in fast.checks.keys() | got.state.checks.keys()
            if fast.checks.get(n) != got.state.checks.get(n)
        }
        assert differ <= got.touched, f"minute {minute}: a changed check the commit would miss"
        fast, full, watch = got.state, want.state, got.watch
        kinds.update(e.kind for e in got.events)
    assert kinds >= {"opened", "changed", "resolved", "flapping", "reminder"}, kinds


def test_a_quiet_estate_shares_every_unchanged_check_state() -> None:
    checks = {f"c{i}": CheckPolicy(f"c{i}", Severity.HIGH) for i in range(100)}
    now = T0
    ok = [CheckResult(check=n, status="ok", evidence="ok", started_at=now) for n in checks]
    first = evaluate(EngineState(), ok, checks, IncidentPolicy(), now)
    second = evaluate(first.state, ok[:10], checks, IncidentPolicy(), now + timedelta(minutes=1))
    shared = [n for n in checks if second.state.checks[n] is first.state.checks[n]]
    assert len(shared) == 90  # only the ten that reported were copied and changed
    assert second.state.checks["c0"].consecutive_successes == 2
    assert first.state.checks["c0"].consecutive_successes == 1
