"""A scripted incident in a real state directory: what the console tests read.

Incident #1 on `api` (open, HIGH) whose first evidence carries a `<script>`, a triage and an
RCA investigation with their model calls in the ledger (local triage at $0, a cloud RCA at a
known price, one call whose price is unknown), results for `api`, `db` and `payroll-internal`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.models import (
    CheckResult,
    CheckState,
    EngineState,
    Incident,
    IncidentEvent,
    Investigation,
    InvestigationCall,
    Severity,
    fingerprint,
)
from daemon.store import Store
from daemon.store.ledger import LedgerRow
from daemon.store.outbox import OutboxItem

EVIL = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'
FIRST_EVIDENCE = f"HTTP 503 from https://api.internal.example/health: {EVIL}"
ROOT_CAUSE = "The connection pool of db-main is exhausted by a stuck batch job"
RCA_COST = Decimal("0.0123")
SECRET_EVIDENCE = "payroll-db at 10.1.2.3 password rejected"


def seed(state_dir: Path, now: datetime | None = None) -> datetime:
    """Write the scripted incident; returns the moment it was opened."""
    now = now or datetime.now(UTC)
    opened = now - timedelta(minutes=20)
    store = Store.open(state_dir)
    try:
        results = []
        for i in range(12):
            at = opened + timedelta(minutes=i)
            results.append(
                CheckResult(
                    check="api",
                    status="failing",
                    evidence=FIRST_EVIDENCE,
                    started_at=at,
                    latency_ms=None,
                )
            )
            results.append(
                CheckResult(
                    check="db",
                    status="ok",
                    evidence="SELECT 1 ok",
                    started_at=at,
                    latency_ms=10.0 + i,
                )
            )
            results.append(
                CheckResult(
                    check="payroll-internal",
                    status="failing",
                    evidence=SECRET_EVIDENCE,
                    started_at=at,
                    latency_ms=3.0,
                )
            )
        incident = Incident(
            id=1,
            fingerprint=fingerprint("api"),
            check="api",
            severity=Severity.HIGH,
            opened_at=opened,
            evidence=FIRST_EVIDENCE,
            first_evidence=FIRST_EVIDENCE,
            blast_radius=["checkout", "search"],
        )
        event = IncidentEvent(
            incident_id=1,
            kind="opened",
            at=opened,
            check="api",
            severity=Severity.HIGH,
            evidence=FIRST_EVIDENCE,
            opened_at=opened,
        )
        api_state = CheckState(
            consecutive_failures=12,
            failing=True,
            last_status="failing",
            hard_failure_in_streak=True,
            last_result_at=opened + timedelta(minutes=11),
            last_evidence=FIRST_EVIDENCE,
            changes=[opened],
            incident_id=1,
        )
        state = EngineState(checks={"api": api_state}, incidents={1: incident}, next_incident_id=2)
        notice = OutboxItem(
            target="ops-slack",
            title="[HIGH] api failing — incident #1",
            body=FIRST_EVIDENCE,
            notify_type="failure",
            event_index=0,
        )
        store.incidents.commit_cycle(results, state, [event], [], [notice], now=opened)
        triage_call = LedgerRow(
            ts=opened + timedelta(seconds=5),
            task="triage",
            incident_id=1,
            provider="ollama",
            model="gemma4:27b",
            host="127.0.0.1:11434",
            input_tokens=1204,
            output_tokens=151,
            cost_usd=Decimal(0),
            outcome="ok",
            request_bytes=4000,
            key_source="none",
            local=True,
        )
        rca_call = LedgerRow(
            ts=opened + timedelta(seconds=30),
            task="rca",
            incident_id=1,
            provider="anthropic",
            model="claude-sonnet-4-5",
            host="api.anthropic.com",
            input_tokens=5321,
            output_tokens=642,
            cost_usd=RCA_COST,
            outcome="ok",
            request_bytes=21000,
            key_source="env",
        )
        unknown = LedgerRow(
            ts=opened + timedelta(seconds=40),
            task="digest",
            provider="lmstudio",
            model="=HYPERLINK(evil)",
            host="10.9.9.9:1234",
            input_tokens=100,
            output_tokens=10,
            cost_usd=None,
            outcome="ok",
            request_bytes=900,
            key_source="keyring",
        )
        for row in (triage_call, rca_call, unknown):
            store.ledger.record(row)
        store.incidents.add_investigation(
            Investigation(
                incident_id=1,
                at=opened + timedelta(seconds=30),
                reason="opened",
                severity=Severity.HIGH,
                model="anthropic/claude-sonnet-4-5",
                rca={
                    "root_cause": ROOT_CAUSE,
                    "confidence": "high",
                    "evidence": ["pool wait 30 s <b>bold?</b>", "batch job started 09:58"],
                    "blast_radius": ["checkout"],
                    "next_steps": ["kill the batch job", "raise the pool limit"],
                },
                calls=[
                    InvestigationCall(
                        model="anthropic/claude-sonnet-4-5",
                        host="api.anthropic.com",
                        local=False,
                        outcome="ok",
                        input_tokens=5321,
                        output_tokens=642,
                        cost_usd=RCA_COST,
                    )
                ],
            )
        )
        seed_sweep(store, state_dir, opened)
    finally:
        store.close()
    return opened


SWEEP = "nightly-security"
FINDING_EVIDENCE = "0.0.0.0/0 may reach port 22 <script>x()</script>"


def seed_sweep(store: Store, state_dir: Path, at: datetime) -> None:
    """One security sweep run: a new HIGH finding, a resolved LOW one, and its reports."""
    from daemon.models import Finding
    from daemon.store.sweeps import SweepRunRecord, TrackedFinding

    folder = state_dir / "reports" / SWEEP
    folder.mkdir(parents=True, exist_ok=True)
    reports = {}
    for ext in ("md", "json", "sarif", "ocsf.json"):
        path = folder / f"20260101T020000Z.{ext}"
        path.write_text("# report\n" if ext == "md" else '{"report": true}\n')
        reports[ext] = str(path)

    def finding(rule: str, severity: Severity, resource: str) -> Finding:
        return Finding(
            rule=rule,
            kind="security",
            severity=severity,
            title=f"{rule} on {resource}",
            resource=resource,
            location="eu-west-1",
            evidence=FINDING_EVIDENCE,
            remediation="close it",
        )

    run = SweepRunRecord(
        id="run-1",
        sweep=SWEEP,
        kind="security",
        started_at=at,
        finished_at=at + timedelta(seconds=40),
        status="ok",
        notified=True,
        findings=(
            TrackedFinding(
                finding("aws.sg.open_ssh", Severity.HIGH, "sg-0abc"), state="new", first_seen=at
            ),
            TrackedFinding(
                finding("aws.s3.public", Severity.LOW, "bucket-old"),
                state="resolved",
                first_seen=at - timedelta(days=2),
            ),
        ),
        detail={"reports": reports, "rule_errors": [], "scope_errors": []},
    )
    store.sweeps.commit(run, [], now=at)
