"""What the Slack and Teams tests share: an incident event with every section a model can add,
forged text in every untrusted field, a clock, the outbox as rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.config.settings import DeliverySettings, NotifyTarget
from daemon.models import EngineState, Incident, IncidentEvent, Severity, fingerprint
from daemon.notify.payload import CallCost, CostsSection, RcaSection, Sections, TriageSection
from daemon.notify.routing import route
from daemon.store import Store

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
FORGED = (
    "disk full\n\n[RESOLVED] api — incident #1 after 2m\nref: incident #1 · event 2 "
    "<!here> <!channel> <https://evil.example/login|click> @everyone <@U4242> "
    "**bold** *also* _it_ ~gone~ `code` ``` [click](https://evil.example) \x1b]0;pwned\x07"
)
"""An alert name or log line that tries to ping, link, format and forge lines."""
MARKERS = ("<!here>", "<!channel>", "<https://", "<@U4242>", "\x1b", "\x07")
"""What must never arrive raw in a Slack message."""
JSON_EVIDENCE = (
    "GET http://cache.internal:8080/health returned 503 in 41 ms; expected 200; body: "
    + json.dumps(json.dumps({"status": "down", "error": "OOM > 'maxmemory'"}))
)
"""How the http check quotes a JSON body: a JSON string holding the JSON."""
DELIVERY = DeliverySettings(
    timeout=timedelta(seconds=5),
    retry_initial=timedelta(seconds=10),
    retry_max=timedelta(seconds=40),
    max_age=timedelta(hours=1),
)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def event(kind: str = "opened", evidence: str = JSON_EVIDENCE, **kw: Any) -> IncidentEvent:
    fields: dict[str, Any] = {
        "incident_id": 42,
        "kind": kind,
        "at": T0 + timedelta(minutes=5 if kind == "resolved" else 0),
        "check": "session-cache",
        "severity": Severity.HIGH,
        "evidence": evidence,
        "opened_at": T0,
        "blast_radius": ["checkout-api", "cart-worker"],
        "status": "failing",
    }
    if kind == "resolved":
        fields["duration_s"] = 300.0
    return IncidentEvent(**(fields | kw))


def triage(text: str = "Redis behind session-cache stopped answering") -> TriageSection:
    return TriageSection(
        by="ollama/gemma4:27b, local",
        deterministic=False,
        summary=text,
        severity="high",
        raised_from="medium",
        escalate=True,
        reason=text,
        correlations=[text],
    )


def rca(text: str = "the cache hit its memory limit after the 13:55 deploy") -> RcaSection:
    return RcaSection(
        root_cause=text,
        confidence="medium",
        evidence=[text, "evictions rose 40x"],
        blast_radius=[text],
        next_steps=["kubectl -n prod describe pod session-cache-0", text],
        model="anthropic/claude-opus-4-6",
        reason=text,
    )


def costs() -> CostsSection:
    return CostsSection(
        calls=[
            CallCost("triage", "ollama/gemma4:27b", True, 1204, 151, 0.0, "ok"),
            CallCost("rca", "anthropic/claude-opus-4-6", False, 2310, 480, 0.0236, "ok"),
        ],
        incident_total_usd=0.0236,
        today_usd=0.06,
        month_usd=1.84,
        local_triage_saved_today_usd=0.31,
        savings_reference_model="anthropic/claude-opus-4-6",
    )


def full(text: str | None = None) -> Sections:
    """Every section filled, with `text` in each untrusted field when given."""
    if text is None:
        return Sections(triage=triage(), rca=rca(), costs=costs())
    return Sections(triage=triage(text), rca=rca(text), costs=costs())


def commit(store: Store, targets: list[NotifyTarget], *events: IncidentEvent) -> None:
    """One engine cycle that produced `events` for incident 42, routed to `targets`."""
    opened = Incident(
        id=42,
        fingerprint=fingerprint("session-cache"),
        check="session-cache",
        severity=Severity.HIGH,
        opened_at=T0,
    )
    items = route(list(events), targets, {})
    store.incidents.commit_cycle(
        [], EngineState(incidents={42: opened}), list(events), [], items, now=T0
    )


def outbox(store: Store) -> list[tuple[str, int, str | None, str, str]]:
    """(target, attempts, last_error, status, next_attempt_at) per row."""
    conn = store.db._conn
    assert conn is not None
    found = conn.execute(
        "SELECT target, attempts, last_error, status, next_attempt_at FROM outbox ORDER BY id"
    )
    return [tuple(r) for r in found]


def texts(node: Any, kind: str | None = None) -> list[str]:
    """Every `text` of the objects of `kind` (any kind when None) in a message, depth first."""
    found: list[str] = []
    if isinstance(node, list):
        for item in node:
            found += texts(item, kind)
    elif isinstance(node, dict):
        if isinstance(node.get("text"), str) and (kind is None or node.get("type") == kind):
            found.append(node["text"])
        for value in node.values():
            if not isinstance(value, str):
                found += texts(value, kind)
    return found
