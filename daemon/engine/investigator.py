"""Root-cause analysis of one incident: gather context, ask the `rca` chain, store the result
and queue the "investigation" message — in one transaction, so a restart neither loses nor
repeats it. Never raises for model or infrastructure failures: they become a recorded skip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from structlog.contextvars import bound_contextvars

from daemon.ai import reports
from daemon.ai.runner import AI, AIResult
from daemon.ai.targets import resolve_target
from daemon.config.settings import Settings
from daemon.engine import messages
from daemon.engine.explore import Exploration, Explorer, Limits
from daemon.engine.rca import SYSTEM, PriorInvestigation, RcaOutput, build_context, should_escalate
from daemon.engine.timeline import investigation_detail, tool_events
from daemon.engine.tools import build_toolbox
from daemon.llm import provider_class
from daemon.llm.types import ChatMessage, ModelRequest
from daemon.logging import redact
from daemon.models import (
    CheckResult,
    ContextBlock,
    Incident,
    IncidentEvent,
    Investigation,
    InvestigationCall,
    Message,
    ModelRef,
)
from daemon.notify.payload import CostsSection, Sections
from daemon.notify.routing import route
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.ledger import LedgerRow
from jobs.base import CheckContext

log = structlog.get_logger(__name__)

HOOK_TIMEOUT_S = 20.0
LIGHT_TOOLS = frozenset({"check_history", "run_check", "http_get"})
"""Tools that add little to the context (which already holds the check's recent results and
evidence): alone they do not justify the investigator's extra model turn. They are offered
whenever a Kubernetes, Prometheus or Alertmanager source makes the look-ups worth it."""


@dataclass
class Outcome:
    investigation: Investigation
    message: Message
    result: AIResult | None
    calls: list[LedgerRow] | None = None
    """Every ledger row of the investigation (look-up turns and the answer)."""


class Investigator:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        ai: AI,
        ctx: CheckContext,
        *,
        now: Callable[[], datetime],
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ai = ai
        self.ctx = ctx
        self.now = now
        self.on_queued = on_queued
        self._running: set[int] = set()

    def apply(self, settings: Settings) -> None:
        """A reload: escalation settings, checks (for context hooks) and targets."""
        self.settings = settings

    async def due(self, incident: Incident, triage_asked: bool = False) -> str | None:
        """Why this incident should be investigated now, or None."""
        if incident.id in self._running:
            return None
        latest = await store_io(self.store.incidents.latest_investigation, incident.id)
        prior = (
            None
            if latest is None
            else PriorInvestigation(latest.severity, tuple(latest.blast_radius))
        )
        return should_escalate(
            incident,
            min_severity=self.settings.escalation.min_severity,
            triage_asked=triage_asked,
            prior=prior,
        )

    async def investigate(
        self,
        incident: Incident,
        why: str,
        *,
        model: str | None = None,
        notify_targets: bool = True,
        triage_summary: str | None = None,
        question: str | None = None,
    ) -> Outcome:
        """`question`: a follow-up, answered from the incident's context plus the latest
        investigation's conclusion and trail (another model may take over)."""
        self._running.add(incident.id)
        try:
            with bound_contextvars(incident=incident.id):
                return await self._investigate(
                    incident, why, model, notify_targets, triage_summary, question
                )
        finally:
            self._running.discard(incident.id)

    async def _investigate(
        self,
        incident: Incident,
        why: str,
        model: str | None,
        notify_targets: bool,
        triage_summary: str | None,
        question: str | None = None,
    ) -> Outcome:
        request, dropped = await self.request(incident, triage_summary)
        if question is not None:
            prior = await store_io(self.store.incidents.latest_investigation, incident.id)
            request = replace(
                request,
                messages=(
                    ChatMessage("user", request.messages[0].content + follow_up(prior, question)),
                ),
            )
        explored = await self.explore(incident, request, model)
        if explored is not None:
            result, ledger = explored.result, explored.calls
        else:
            result = await self.ai.run(
                "rca",
                request,
                models=[model] if model else None,
                incident_id=incident.id,
                timeout_s=self.settings.escalation.timeout.total_seconds(),
            )
            ledger = result.calls
        record = Investigation(
            incident_id=incident.id,
            at=self.now(),
            reason=why,
            severity=incident.severity,
            blast_radius=list(incident.blast_radius),
            dropped=dropped,
            calls=[
                InvestigationCall(
                    model=f"{row.provider}/{row.model}",
                    host=row.host,
                    local=row.local,
                    outcome=row.outcome,
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    cost_usd=row.cost_usd,
                )
                for row in reports.billed(ledger)
            ],
        )
        if explored is not None:
            record.trail, record.limit = explored.trail, explored.limit
        record.question = question
        rca = None
        off = False
        if result.response is not None and result.response.data is not None:
            rca = RcaOutput.model_validate(result.response.data)
            where = "local" if result.local else result.response.host
            record.model, record.rca = str(result.ref), rca.model_dump(mode="json")
            message = messages.investigation(incident, rca, f"{result.ref}, {where}", why, dropped)
            if record.trail or record.limit:
                message = messages.with_line(
                    message, messages.trail_text(record.trail, record.limit)
                )
        else:
            record.skipped = (
                result.reason
                or (explored.limit if explored else None)
                or "no model configured for rca"
            )
            off = messages.no_model(result.calls)
            message = Message(
                title=f"[{incident.severity.value.upper()}] {incident.check} — RCA not available "
                f"(incident #{incident.id})",
                body=messages.rca_skipped(incident, record.skipped, off=off)
                + (
                    "\nThe incident stays open and is tracked as usual."
                    if incident.status == "open"
                    else "\nThe incident is already resolved; nothing else changes."
                ),
                notify_type="warning",
            )
        block = await self.cost_block(incident.id, result, ledger)
        message = messages.with_costs(message, block)
        sections = Sections(
            rca=None if rca is None else messages.rca_section(rca, record.model, why, dropped),
            rca_skipped=record.skipped,
            costs=CostsSection.from_block(block),
            ai_note=messages.AI_OFF if off else None,
            ai_off=off,
        )
        await self.commit(incident, record, message if notify_targets else None, sections)
        return Outcome(record, message, result, ledger)

    async def explore(
        self, incident: Incident, request: ModelRequest, model: str | None
    ) -> Exploration | None:
        """The tool loop, when enabled, the incident has tools, and the chain's first usable
        model is reached through a module that speaks tool calling; None: single-shot."""
        config = self.settings.escalation
        if not config.tools:
            return None
        box = build_toolbox(
            incident,
            self.settings.checks,
            self.store,
            self.ctx,
            output_bytes=config.tool_output_bytes,
            aws=config.aws_tools,
        )
        if not set(box.tools) - LIGHT_TOOLS:
            return None  # nothing to look up beyond what the context already holds
        chosen, _ = (model, "") if model else await self.ai.preflight("rca")
        if chosen is None:
            return None
        try:
            target = resolve_target(ModelRef.parse(chosen), self.settings.providers)
        except ValueError:
            return None
        if not provider_class(target.api).native_tools:
            return None
        limits = Limits(config.max_steps, config.timeout.total_seconds(), config.max_usd)
        prompt = request.messages[0].content
        # The rest of the chain takes the answer over on an outage (an explicit --model has
        # no chain, as in a single-shot analysis).
        chain = [] if model else await self.ai.chain("rca")
        fallbacks = chain[chain.index(chosen) + 1 :] if chosen in chain else []
        return await Explorer(self.ai, box, limits).run(
            prompt, model=chosen, incident_id=incident.id, fallbacks=fallbacks
        )

    async def request(
        self, incident: Incident, triage_summary: str | None = None
    ) -> tuple[ModelRequest, list[str]]:
        """The RCA request for `incident` as it stands (and the context blocks left out to
        fit): what `investigate` sends, and what the demo's bill prices."""
        prompt, dropped = await self.context(incident, triage_summary)
        request = ModelRequest.ask(
            prompt,
            system=SYSTEM,
            output=RcaOutput,
            output_name="root_cause_analysis",
            output_description="The root cause, confidence, evidence, blast radius, next steps.",
            max_output_tokens=1500,
        )
        return request, dropped

    async def context(
        self, incident: Incident, triage_summary: str | None
    ) -> tuple[str, list[str]]:
        found = await store_io(self.store.incidents.get, incident.id)
        # Look-ups reach a follow-up through the earlier trail, not as timeline events.
        events = [e for e in found[1] if e.kind != "tool_call"] if found else []
        names = [incident.check, *incident.blast_radius]
        history = {name: await store_io(self.store.results.recent, name, 12) for name in names}
        open_incidents = await store_io(self.store.incidents.recent, False)
        related = [i for i in open_incidents if i.id != incident.id][:10]
        depends_on = {c.name: c.depends_on for c in self.settings.checks}
        extra = await self.hook_blocks(incident, history.get(incident.check, []))
        return build_context(incident, events, history, depends_on, related, extra, triage_summary)

    async def hook_blocks(
        self, incident: Incident, recent: list[CheckResult]
    ) -> list[ContextBlock]:
        """Context the check type supplies (Kubernetes events and logs, alarm history…)."""
        try:
            spec = self.settings.check(incident.check)
        except KeyError:
            return []
        latest = [r for r in recent if r.started_at == recent[0].started_at] if recent else []
        try:
            async with asyncio.timeout(HOOK_TIMEOUT_S):
                blocks = await spec.rca_context(self.ctx, latest)
            # logs and events may echo a secret: masked even for a local model
            return [replace(b, title=redact(b.title), text=redact(b.text)) for b in blocks]
        except Exception as exc:  # a failing hook costs context, never the investigation
            log.warning("rca context hook failed", check=incident.check, error=type(exc).__name__)
            return [ContextBlock("Context hook", f"could not collect: {type(exc).__name__}", 10)]

    async def cost_block(
        self,
        incident_id: int | None,
        result: AIResult | None,
        ledger: list[LedgerRow] | None = None,
    ) -> reports.CostBlock:
        calls = ledger if ledger is not None else result.calls if result else []
        return await store_io(
            reports.cost_block, self.store.ledger, self.settings, incident_id, calls, self.now()
        )

    async def commit(
        self,
        incident: Incident,
        record: Investigation,
        message: Message | None,
        sections: Sections | None = None,
    ) -> None:
        event = IncidentEvent(
            incident_id=incident.id,
            kind="investigation",
            at=record.at,
            check=incident.check,
            severity=incident.severity,
            evidence=incident.evidence,
            blast_radius=list(incident.blast_radius),
            opened_at=incident.opened_at,
            detail=investigation_detail(record),
        )
        outbox = []
        if message is not None:
            tags = {c.name: c.tags for c in self.settings.checks}
            outbox = route(
                [event],
                self.settings.notify,
                tags,
                messages=[message],
                sections=[sections or Sections()],
            )
        await store_io(
            self.store.incidents.commit_investigation,
            record,
            event,
            outbox,
            looked_up=tool_events(incident, record),
        )
        if outbox:
            self.on_queued()


def follow_up(prior: Investigation | None, question: str) -> str:
    """What a follow-up adds to the context: the last conclusion, its trail, the question."""
    parts = ["\n\n## Earlier investigation"]
    if prior is None or prior.rca is None:
        parts.append("None yet.")
    else:
        parts.append(
            f"By {prior.model}: {prior.rca.get('root_cause', '')} "
            f"(confidence {prior.rca.get('confidence', '?')})."
        )
        parts += [f"- evidence: {item}" for item in prior.rca.get("evidence") or []]
        parts += [
            f"- looked up {s.tool}({', '.join(f'{k}={v}' for k, v in s.arguments.items())}): "
            f"{s.summary}"
            for s in prior.trail
        ]
    parts.append(
        f"\n## Follow-up question from the on-call engineer\n{question}\n"
        "Answer it in root_cause (the other fields as usual), from the evidence above."
    )
    return "\n".join(parts)
