"""One cycle: run checks, flag soft anomalies, evaluate incidents, triage, commit, escalate.

Shared by `watchkeeper run`, `run --once` and `check --record`. The deterministic path never
depends on a model: without one, incidents still open, resolve and notify, and the messages say
which AI step was skipped and why. A check that crashes or hangs becomes an `error`/`failing`
result, never an exception.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from structlog.contextvars import bound_contextvars

from daemon.ai import reports
from daemon.config.settings import Settings
from daemon.engine import incidents, messages
from daemon.engine.quiet import Quietness, hold, release
from daemon.errors import SecretError, StateError
from daemon.logging import redact
from daemon.models import (
    Acknowledgement,
    CheckResult,
    EngineState,
    IncidentEvent,
    Investigation,
    Message,
)
from daemon.notify.payload import CostsSection, Sections
from daemon.notify.render import render_event
from daemon.notify.routing import route
from daemon.store import Store
from daemon.store.database import store_io
from jobs.base import CheckContext, CheckSpec

if TYPE_CHECKING:
    from daemon.ai.runner import AI
    from daemon.engine.baselines import Anomaly, Baselines
    from daemon.engine.investigator import Investigator
    from daemon.engine.triage import TriageReport

log = structlog.get_logger(__name__)

ESCALATING = ("opened", "changed", "released")
"""Events after which an incident may be investigated (never while its paging is held)."""
TIMEOUT_GRACE_S = 2.0
"""Checks enforce their own timeout; the pipeline cancels them only this much later."""
SNAPSHOT_BATCH = 200
"""Checks' baseline snapshots written a transaction (~20 KB each with full windows)."""


async def run_check(spec: CheckSpec, ctx: CheckContext) -> list[CheckResult]:
    """Run one check under its timeout; never raises for the check's own failures."""
    started = ctx.now()
    limit = spec.timeout.total_seconds()
    try:
        async with asyncio.timeout(limit + TIMEOUT_GRACE_S):
            with bound_contextvars(check=spec.name):  # every line it logs names the check
                results = await spec.run(ctx)
    except TimeoutError:
        return [
            spec.result(
                "failing",
                f"check did not finish within its {limit:g} s timeout",
                started_at=started,
                latency_ms=(ctx.now() - started).total_seconds() * 1000,
            )
        ]
    except SecretError as exc:
        return [spec.result("error", str(exc), started_at=started)]
    except Exception as exc:
        log.exception("check crashed", check=spec.name, type=spec.type)
        message = redact(f"{type(exc).__name__}: {exc}")[:300]
        return [spec.result("error", f"the check itself crashed: {message}", started_at=started)]
    if not results:
        return [spec.result("error", "the check returned no result", started_at=started)]
    return [scrub(result) for result in results]


def scrub(result: CheckResult) -> CheckResult:
    """A result with every known secret (resolved `secret:` values, provider keys) and every
    credential-shaped string (`password=…`, `user:pass@`, tokens) masked, before anything
    stores, shows, notifies or prompts with it: a monitored system may echo a secret."""
    values = {k: redact(v) if isinstance(v, str) else v for k, v in result.values.items()}
    update = {
        "evidence": redact(result.evidence),
        "subject": None if result.subject is None else redact(result.subject),
        "values": values,
        "labels": {k: redact(v) for k, v in result.labels.items()},
    }
    changed = {k: v for k, v in update.items() if v != getattr(result, k)}
    return result.model_copy(update=changed) if changed else result


def policies(settings: Settings) -> dict[str, incidents.CheckPolicy]:
    return {
        spec.name: incidents.CheckPolicy(
            name=spec.name,
            severity=spec.severity,
            failure_threshold=spec.failure_threshold,
            success_threshold=spec.success_threshold,
            depends_on=tuple(spec.depends_on),
        )
        for spec in settings.enabled_checks
    }


@dataclass(frozen=True)
class _Estate:
    """What every cycle needs of the configured checks, derived once per configuration."""

    settings: Settings
    checks: dict[str, incidents.CheckPolicy]
    topology: incidents.Topology
    tags: dict[str, list[str]]

    @classmethod
    def of(cls, settings: Settings) -> _Estate:
        checks = policies(settings)
        tags = {spec.name: spec.tags for spec in settings.checks}
        return cls(settings, checks, incidents.Topology.of(checks), tags)


def incident_policy(settings: Settings) -> incidents.IncidentPolicy:
    return incidents.IncidentPolicy(
        reminder_interval=settings.incidents.reminder_interval,
        flap_window=settings.incidents.flap_window,
        flap_threshold=settings.incidents.flap_threshold,
    )


def apply_triage(evaluation: incidents.Evaluation, report: TriageReport) -> None:
    """Raised severities become the incident's floor; the model never lowers one."""
    for decision in report.decisions.values():
        incident = evaluation.state.incidents.get(decision.incident_id)
        if incident is None or decision.raised_from is None:
            continue
        incident.severity = max(incident.severity, decision.severity)
        incident.severity_floor = incident.severity
        for event in evaluation.events:
            if event.incident_id == incident.id:
                event.severity = incident.severity


class Pipeline:
    """Owns the engine state in memory; every change is committed before it is acted on."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        ctx: CheckContext,
        *,
        now: Callable[[], datetime],
        on_queued: Callable[[], None] = lambda: None,
        ai: AI | None = None,
        investigator: Investigator | None = None,
        baselines: Baselines | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.ctx = ctx
        self.now = now
        self.on_queued = on_queued
        self.ai = ai
        self.investigator = investigator
        self.baselines = baselines
        self._state: EngineState | None = None
        self._committed = False
        """Whether this pipeline committed a state: the first commit writes every check's,
        later ones only the checks an evaluation touched."""
        self._watch: frozenset[str] | None = None
        """The last evaluation's `watch` (None: the state came from the store, look at all)."""
        self._estate = _Estate.of(settings)
        self._lock = asyncio.Lock()
        self._concurrency = settings.daemon.max_concurrency
        self._slots = asyncio.Semaphore(self._concurrency)
        self._buffer: list[CheckResult] = []
        self._anomalous: dict[str, set[tuple[str | None, str]]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.cycles = 0
        self.last_cycle_at: datetime | None = None
        self.last_cycle_seconds: float | None = None
        """How long the last recorded cycle took (evaluation, triage, commit): /metrics."""
        self.last_commit = time.monotonic()
        """When the last cycle was committed (or the pipeline was built): health's measure."""
        self.last_error: str | None = None
        """Why the latest cycle could not be committed; None once one commits again."""

    def apply(self, settings: Settings, baselines: Baselines | None) -> None:
        """A reload: new checks, thresholds, concurrency and baseline policy. Incident state
        carries over (checks removed from the config resolve at the next cycle)."""
        self.settings = settings
        self.baselines = baselines
        if settings.daemon.max_concurrency != self._concurrency:
            self._concurrency = settings.daemon.max_concurrency
            self._slots = asyncio.Semaphore(self._concurrency)

    async def state(self) -> EngineState:
        if self._state is None:
            self._state = await store_io(self.store.incidents.engine_state)
        return self._state

    def _checks(self) -> _Estate:
        """The checks' policies, dependency topology and tags, built once per configuration."""
        if self._estate.settings is not self.settings:
            self._estate = _Estate.of(self.settings)
        return self._estate

    @property
    def open_incidents(self) -> int:
        return len(self._state.incidents) if self._state else 0

    async def run_checks(self, specs: Iterable[CheckSpec]) -> list[CheckResult]:
        """Run checks concurrently, at most `max_concurrency` at a time."""

        async def one(spec: CheckSpec) -> list[CheckResult]:
            async with self._slots:
                return await run_check(spec, self.ctx)

        batches = await asyncio.gather(*(one(spec) for spec in specs))
        return [result for batch in batches for result in batch]

    # -- the daemon batches results that arrive close together into one cycle ---------------

    def submit(self, results: list[CheckResult]) -> None:
        """Queue results; they are evaluated together after `daemon.cycle_window`."""
        self._buffer.extend(results)
        if self._flush_handle is None:
            delay = self.settings.daemon.cycle_window.total_seconds()
            # a fresh context: the cycle belongs to no single check's bound log context
            self._flush_handle = asyncio.get_running_loop().call_later(
                delay, self._start_flush, context=contextvars.Context()
            )

    def _start_flush(self) -> None:
        self._flush_handle = None
        self.spawn(self.flush())

    async def flush(self) -> None:
        results, self._buffer = self._buffer, []
        if results:
            started = time.monotonic()
            try:
                await self.record(results)
                self.last_cycle_seconds = time.monotonic() - started
            except StateError as exc:  # a full disk, a locked or broken database: said plainly
                self.last_error = str(exc)[:300]
                log.error("cycle failed: results not recorded", results=len(results), why=str(exc))
            except Exception as exc:
                self.last_error = redact(f"{type(exc).__name__}: {exc}")[:300]
                log.exception("cycle failed: results not recorded", results=len(results))

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    # -- one cycle ---------------------------------------------------------------------------

    async def record(
        self, results: list[CheckResult], *, consumed: int | None = None
    ) -> list[IncidentEvent]:
        """Anomalies, incidents, triage, commit (one transaction), then escalation.
        `consumed` (sharded mode): the results are stored already, by the nodes that ran
        them; this is the id of the last, committed with the state as its cursor."""
        async with self._lock:
            state = await self.state()
            anomalies: list[Anomaly] = []
            if self.baselines is not None:
                await store_io(self.baselines.prepare, results, self.now())
                results, anomalies = self.baselines.apply(results, self.now())
            acks, quiet = await self._controls()
            estate = self._checks()
            evaluation = incidents.evaluate(
                state,
                results,
                estate.checks,
                incident_policy(self.settings),
                self.now(),
                acknowledged=acks.keys(),
                topology=estate.topology,
                watch=self._watch,
            )
            self._quiet(evaluation, acks, quiet)
            report = await self._triage(
                [e for e in evaluation.events if e.held is None], self._fresh(results, anomalies)
            )
            if report is not None:
                apply_triage(evaluation, report)
            skipped = await self._rca_preflight(evaluation, report)
            composed = [await self._compose(e, report, skipped) for e in evaluation.events]
            if consumed is not None:
                evaluation.state.results_cursor = consumed
            await self._commit(
                results if consumed is None else [],
                evaluation,
                [m for m, _ in composed],
                [x for _, x in composed],
            )
            self._watch = evaluation.watch  # (a reminder pass leaves the checks alone)
            await self._record_skips(evaluation, skipped)
            self.cycles += 1
            self.last_cycle_at = self.now()
            self.last_commit = time.monotonic()
            self.last_error = None
        self._escalate(evaluation, report, skipped)
        return evaluation.events

    def _fresh(self, results: list[CheckResult], anomalies: list[Anomaly]) -> list[Anomaly]:
        """Anomalies that were not there the last time each check reported: one that persists
        was already triaged (or is an incident by now)."""
        current: dict[str, set[tuple[str | None, str]]] = {r.check: set() for r in results}
        for a in anomalies:
            current.setdefault(a.check, set()).add((a.subject, a.metric))
        fresh = [
            a for a in anomalies if (a.subject, a.metric) not in self._anomalous.get(a.check, set())
        ]
        self._anomalous.update(current)
        return fresh

    async def remind(self) -> list[IncidentEvent]:
        """Emit reminders for open incidents that are due one."""
        async with self._lock:
            state = await self.state()
            acks, quiet = await self._controls()
            evaluation = incidents.reminders(
                state, incident_policy(self.settings), self.now(), acknowledged=acks.keys()
            )
            self._quiet(evaluation, acks, quiet)
            if evaluation.events:
                composed = [render_event(e) for e in evaluation.events]
                await self._commit([], evaluation, composed)
        return evaluation.events

    async def _controls(self) -> tuple[dict[int, Acknowledgement], Quietness]:
        """What operators said: acknowledgements of open incidents, and what is quiet now
        (silences in force, maintenance windows)."""
        now = self.now()
        acks = await store_io(self.store.controls.open_acknowledgements)
        silences = await store_io(self.store.controls.silences, active_at=now)
        tags = self._checks().tags
        return acks, Quietness(silences, self.settings.maintenance, tags, now)

    def _quiet(
        self,
        evaluation: incidents.Evaluation,
        acks: Mapping[int, Acknowledgement],
        quiet: Quietness,
    ) -> None:
        """Release incidents whose quiet ended, hold the events of quiet checks, and say who
        acknowledged what. Mutates `evaluation`."""
        evaluation.events.extend(release(evaluation.state, quiet, self.now()))
        for event in evaluation.events:
            ack = acks.get(event.incident_id)
            event.acknowledged_by = ack.by if ack else None
        hold(evaluation.events, evaluation.state, quiet)

    async def _triage(
        self, events: list[IncidentEvent], anomalies: list[Anomaly]
    ) -> TriageReport | None:
        if self.ai is None or not self.settings.triage.enabled:
            return None
        from daemon.engine.triage import triage

        depends_on = {c.name: c.depends_on for c in self.settings.checks}
        timeout = self.settings.triage.timeout.total_seconds()
        return await triage(self.ai, events, anomalies, depends_on, timeout)

    async def _rca_preflight(
        self, evaluation: incidents.Evaluation, report: TriageReport | None
    ) -> dict[int, str]:
        """Incidents that qualify for RCA when no rca model is usable: id → why not."""
        if self.ai is None or self.investigator is None or not self.settings.escalation.enabled:
            return {}
        candidates = []
        for event in evaluation.events:
            incident = evaluation.state.incidents.get(event.incident_id)
            if event.kind not in ESCALATING or event.held or incident is None:
                continue
            asked = bool(report and (d := report.decisions.get(incident.id)) and d.escalate)
            if await self.investigator.due(incident, asked):
                candidates.append(incident.id)
        if not candidates:
            return {}
        model, why = await self.ai.preflight("rca")
        return {} if model is not None else dict.fromkeys(candidates, why)

    async def _compose(
        self, event: IncidentEvent, report: TriageReport | None, skipped: dict[int, str]
    ) -> tuple[Message, Sections]:
        """The message people read, and what the model steps add to its payload."""
        message = render_event(event)
        triage = costs = None
        decision = report.decisions.get(event.incident_id) if report else None
        rca_skipped = event.incident_id in skipped and event.kind in ESCALATING
        note, ai_off = messages.ai_note(report if decision else None, rca_skipped)
        if report is not None and decision is not None:
            triage = messages.triage_section(decision, report)
            if not ai_off:  # one line says it all; the detail stays in the payload
                message = messages.with_triage(message, decision, report)
        if note is not None:
            message = messages.with_line(message, note)
        calls = reports.billed(report.result.calls) if report and report.result and decision else []
        if self.ai is not None and (calls or event.kind == "resolved"):
            block = await self._cost_block(event.incident_id, calls)
            if calls or (event.kind == "resolved" and block.incident_total):
                message = messages.with_costs(message, block)
                costs = CostsSection.from_block(block)
        return message, Sections(triage=triage, costs=costs, ai_note=note, ai_off=ai_off)

    async def _cost_block(self, incident_id: int, calls: list[Any]) -> reports.CostBlock:
        assert self.ai is not None
        return await store_io(
            reports.cost_block, self.store.ledger, self.settings, incident_id, calls, self.now()
        )

    async def _commit(
        self,
        results: list[CheckResult],
        evaluation: incidents.Evaluation,
        composed: list[Message],
        sections: list[Sections] | None = None,
    ) -> None:
        tags = self._checks().tags
        outbox = route(
            evaluation.events, self.settings.notify, tags, messages=composed, sections=sections
        )
        await store_io(
            self.store.incidents.commit_cycle,
            results,
            evaluation.state,
            evaluation.events,
            evaluation.resolved,
            outbox,
            changed=evaluation.touched if self._committed else None,
        )
        self._state, self._committed = evaluation.state, True
        for event in evaluation.events:
            log.info(
                "incident.event",
                kind=event.kind,
                incident=event.incident_id,
                check=event.check,
                severity=str(event.severity),
                evidence=event.evidence,
            )
        if outbox:
            self.on_queued()

    async def _record_skips(
        self, evaluation: incidents.Evaluation, skipped: dict[int, str]
    ) -> None:
        """A skipped RCA is recorded so it is not retried every cycle (a rise in severity or
        blast radius still triggers a new attempt)."""
        assert self.investigator is not None or not skipped
        for incident_id, why in skipped.items():
            incident = evaluation.state.incidents[incident_id]
            record = Investigation(
                incident_id=incident_id,
                at=self.now(),
                reason="automatic escalation",
                severity=incident.severity,
                blast_radius=list(incident.blast_radius),
                skipped=why,
            )
            await store_io(self.store.incidents.add_investigation, record)

    def _escalate(
        self,
        evaluation: incidents.Evaluation,
        report: TriageReport | None,
        skipped: dict[int, str],
    ) -> None:
        """Investigations run in the background: the opened message never waits for them."""
        if self.investigator is None or not self.settings.escalation.enabled:
            return
        touched = {
            e.incident_id for e in evaluation.events if e.kind in ESCALATING and e.held is None
        }
        for incident_id in sorted(touched - set(skipped)):
            incident = evaluation.state.incidents.get(incident_id)
            if incident is not None:
                decision = report.decisions.get(incident_id) if report else None
                self.spawn(self._maybe_investigate(incident, decision))

    async def _maybe_investigate(self, incident: Any, decision: Any) -> None:
        if self.investigator is None or not self.settings.escalation.enabled:
            return
        try:
            why = await self.investigator.due(incident, bool(decision and decision.escalate))
            if why is None:
                return
            summary = decision.summary if decision else None
            await self.investigator.investigate(incident, why, triage_summary=summary)
        except Exception:
            log.exception("investigation failed", incident=incident.id)

    async def resume_investigations(self) -> None:
        """After a restart: open incidents that qualify and were never investigated."""
        if self.investigator is None or not self.settings.escalation.enabled:
            return
        state = await self.state()
        for incident in list(state.incidents.values()):
            self.spawn(self._maybe_investigate(incident, None))

    async def save_baselines(self, batch: int = SNAPSHOT_BATCH) -> int:
        """Store the snapshots of the baseline windows that changed since they were last
        saved, `batch` checks a transaction, the cycle lock released between batches (a cycle
        waits for one batch at most); then drop snapshots whose samples have all aged out.
        Returns how many checks were saved. At a clean stop and hourly (the daemon)."""
        saved = 0
        while True:
            async with self._lock:
                baselines = self.baselines
                if baselines is None:
                    return saved
                rows = baselines.snapshots(batch)
                if not rows:
                    break
                await store_io(self.store.snapshots.write, rows, self.now())
                baselines.saved(check for check, _, _ in rows)
            saved += len(rows)
        if saved:  # (a node that evaluates nothing, e.g. a sharded member, writes nothing)
            await store_io(self.store.snapshots.prune, self.now() - baselines.policy.window)
        return saved

    async def wait_background(self, timeout_s: float) -> None:
        """Let investigations (and pending flushes) finish, at most `timeout_s`."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
            await self.flush()
        pending = {t for t in self.background if not t.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()

    async def cycle(
        self, specs: Iterable[CheckSpec]
    ) -> tuple[list[CheckResult], list[IncidentEvent]]:
        results = await self.run_checks(specs)
        events = await self.record(results)
        return results, events
