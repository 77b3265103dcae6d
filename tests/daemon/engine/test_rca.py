from __future__ import annotations

from datetime import UTC, datetime

from daemon.engine.rca import PriorInvestigation, build_context, should_escalate
from daemon.models import CheckResult, ContextBlock, Incident, Severity

T = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def incident(severity: Severity = Severity.HIGH, radius: tuple[str, ...] = ()) -> Incident:
    return Incident(
        id=42,
        fingerprint="f",
        check="session-cache",
        severity=severity,
        opened_at=T,
        evidence="GET /health returned 503",
        first_evidence="latency 812 ms",
        blast_radius=list(radius),
    )


def test_escalates_once_at_the_minimum_severity() -> None:
    why = should_escalate(incident(), min_severity=Severity.HIGH, triage_asked=False, prior=None)
    assert why == "severity high ≥ high"
    again = should_escalate(
        incident(),
        min_severity=Severity.HIGH,
        triage_asked=False,
        prior=PriorInvestigation(Severity.HIGH, ()),
    )
    assert again is None


def test_below_the_minimum_only_when_triage_asks() -> None:
    low = incident(Severity.MEDIUM)
    assert should_escalate(low, min_severity=Severity.HIGH, triage_asked=False, prior=None) is None
    assert (
        should_escalate(low, min_severity=Severity.HIGH, triage_asked=True, prior=None)
        == "triage asked for it"
    )


def test_escalates_again_when_severity_rises_or_blast_radius_grows() -> None:
    prior = PriorInvestigation(Severity.HIGH, ("checkout-api",))
    rose = should_escalate(
        incident(Severity.CRITICAL), min_severity=Severity.HIGH, triage_asked=False, prior=prior
    )
    assert rose == "severity rose from high to critical"
    grew = should_escalate(
        incident(radius=("checkout-api", "cart-worker")),
        min_severity=Severity.HIGH,
        triage_asked=False,
        prior=prior,
    )
    assert grew == "blast radius grew: cart-worker"


def test_resolved_incidents_are_not_investigated() -> None:
    done = incident().model_copy(update={"status": "resolved"})
    assert should_escalate(done, min_severity=Severity.INFO, triage_asked=True, prior=None) is None


def result(n: int) -> CheckResult:
    return CheckResult(
        check="session-cache",
        status="failing",
        evidence=f"503 number {n}",
        started_at=T,
        latency_ms=4.0,
    )


def test_context_keeps_everything_when_it_fits() -> None:
    text, dropped = build_context(
        incident(radius=("checkout-api",)),
        [],
        {"session-cache": [result(1)]},
        {"checkout-api": ["session-cache"]},
        [],
        [ContextBlock("Pod events", "OOMKilled", 80)],
        triage_summary="cache out of memory",
    )
    assert dropped == []
    for part in (
        "## Incident",
        "## Local triage",
        "checkout-api depends on session-cache",
        "503 number 1",
        "## Pod events",
    ):
        assert part in text


def test_context_drops_the_least_relevant_first_and_says_so() -> None:
    logs = ContextBlock("Log tail of session-cache-0", "line\n" * 3000, 30)
    events = ContextBlock("Events of session-cache-0", "OOMKilled", 80)
    text, dropped = build_context(
        incident(),
        [],
        {"session-cache": [result(n) for n in range(12)]},
        {},
        [],
        [logs, events],
        limit=2500,
    )
    assert dropped[0] == "Log tail of session-cache-0"
    assert "Events of session-cache-0" not in dropped
    assert "(Omitted to fit the context budget: Log tail of session-cache-0" in text
    assert "## Incident" in text
