"""Say less, say it once: without a usable model an incident message carries one short line —
"AI off: no model reachable — run `watchkeeper models`" — not a paragraph per provider; the
detail stays in the ledger, the payload and `watchkeeper models`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from daemon.ai.runner import AIResult
from daemon.engine import messages
from daemon.engine.triage import TriageReport
from daemon.models import Incident, Severity, fingerprint
from daemon.store.ledger import LedgerRow

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
AI_OFF = "AI off: no model reachable — run `watchkeeper models`"


def row(model: str, outcome: str, detail: str = "") -> LedgerRow:
    provider, name = model.split("/", 1)
    cost = None if outcome == "bad_response" else Decimal(0)
    return LedgerRow(
        ts=T0, task="triage", provider=provider, model=name, host="", cost_usd=cost,
        outcome=outcome, detail=detail,
    )  # fmt: skip


def report(
    *calls: LedgerRow, label: str = "deterministic: ollama/gemma4:27b unreachable"
) -> TriageReport:
    return TriageReport(label=label, result=AIResult("triage", calls=list(calls)))


UNREACHABLE = row("ollama/gemma4:27b", "unreachable", "cannot connect to 127.0.0.1")
NO_KEY = row("anthropic/claude-opus-4-6", "missing_key", "no key for anthropic")


def test_the_lines_are_exactly_these() -> None:
    assert messages.AI_OFF == AI_OFF
    assert messages.TRIAGE_OFF == "Triage off: no model reachable — run `watchkeeper models`"
    assert messages.RCA_OFF == "RCA skipped: no model usable for rca — run `watchkeeper models`"


def test_no_model_for_triage_or_rca_is_one_ai_off_line() -> None:
    assert messages.ai_note(report(UNREACHABLE, NO_KEY), rca_skipped=True) == (AI_OFF, True)
    assert messages.ai_note(report(), rca_skipped=True) == (AI_OFF, True)  # none configured
    assert messages.ai_note(None, rca_skipped=True) == (AI_OFF, True)  # triage disabled


def test_only_triage_due_and_no_model_says_triage_off() -> None:
    assert messages.ai_note(report(UNREACHABLE), rca_skipped=False) == (
        messages.TRIAGE_OFF,
        True,
    )


def test_a_model_that_answered_or_failed_keeps_its_own_line() -> None:
    answered = report(row("ollama/gemma4:27b", "ok"), label="ollama/gemma4:27b, local")
    assert messages.ai_note(answered, rca_skipped=True) == (messages.RCA_OFF, False)
    assert messages.ai_note(answered, rca_skipped=False) == (None, False)
    garbage = report(row("ollama/gemma4:27b", "bad_response"), label="deterministic: bad")
    assert messages.ai_note(garbage, rca_skipped=False) == (None, False)
    spent = report(row("anthropic/claude-opus-4-6", "budget"), label="deterministic: budget")
    assert messages.ai_note(spent, rca_skipped=True) == (messages.RCA_OFF, False)
    slow = TriageReport(label="deterministic: the triage model did not answer within 30 s")
    assert messages.ai_note(slow, rca_skipped=True) == (messages.RCA_OFF, False)


def test_an_investigation_without_any_model_says_the_line_not_the_chain() -> None:
    incident = Incident(
        id=7, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH, opened_at=T0
    )
    chain = "anthropic/claude-opus-4-6: no key; openai/gpt-5.4: no key; ollama/gemma4:27b: down"
    assert messages.rca_skipped(incident, chain, off=True) == AI_OFF
    assert messages.rca_skipped(incident, chain) == f"RCA skipped for incident #7: {chain}"
    assert messages.no_model([UNREACHABLE, NO_KEY]) is True
    assert messages.no_model([UNREACHABLE, row("openai/gpt-5.4", "http_error")]) is False
