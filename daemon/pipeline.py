"""One cycle of the deterministic path: run checks, evaluate incidents, commit, queue messages.

Shared by `watchkeeper run`, `run --once` and `check --record`. It never depends on a model,
and a check that crashes or hangs becomes an `error`/`failing` result, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime

import structlog

from daemon import incidents, notify
from daemon.config import Settings
from daemon.errors import SecretError
from daemon.logging import redact
from daemon.models import CheckResult, EngineState, IncidentEvent
from daemon.store import Store
from jobs.base import CheckContext, CheckSpec

log = structlog.get_logger(__name__)

TIMEOUT_GRACE_S = 2.0
"""Checks enforce their own timeout; the pipeline cancels them only this much later."""


async def run_check(spec: CheckSpec, ctx: CheckContext) -> list[CheckResult]:
    """Run one check under its timeout; never raises for the check's own failures."""
    started = ctx.now()
    limit = spec.timeout.total_seconds()
    try:
        async with asyncio.timeout(limit + TIMEOUT_GRACE_S):
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
    return results


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


def incident_policy(settings: Settings) -> incidents.IncidentPolicy:
    return incidents.IncidentPolicy(
        reminder_interval=settings.incidents.reminder_interval,
        flap_window=settings.incidents.flap_window,
        flap_threshold=settings.incidents.flap_threshold,
    )


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.ctx = ctx
        self.now = now
        self.on_queued = on_queued
        self._state: EngineState | None = None
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.daemon.max_concurrency)
        self.cycles = 0
        self.last_cycle_at: datetime | None = None

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings

    async def state(self) -> EngineState:
        if self._state is None:
            self._state = await asyncio.to_thread(self.store.load_engine_state)
        return self._state

    async def run_checks(self, specs: Iterable[CheckSpec]) -> list[CheckResult]:
        """Run checks concurrently, at most `max_concurrency` at a time."""

        async def one(spec: CheckSpec) -> list[CheckResult]:
            async with self._slots:
                return await run_check(spec, self.ctx)

        batches = await asyncio.gather(*(one(spec) for spec in specs))
        return [result for batch in batches for result in batch]

    async def record(self, results: list[CheckResult]) -> list[IncidentEvent]:
        """Evaluate incidents over `results` and commit results, state, events and outbox."""
        async with self._lock:
            state = await self.state()
            evaluation = incidents.evaluate(
                state, results, policies(self.settings), incident_policy(self.settings), self.now()
            )
            await self._commit(results, evaluation)
            self.cycles += 1
            self.last_cycle_at = self.now()
        return evaluation.events

    async def remind(self) -> list[IncidentEvent]:
        """Emit reminders for open incidents that are due one."""
        async with self._lock:
            state = await self.state()
            evaluation = incidents.reminders(state, incident_policy(self.settings), self.now())
            if evaluation.events:
                await self._commit([], evaluation)
        return evaluation.events

    async def _commit(self, results: list[CheckResult], evaluation: incidents.Evaluation) -> None:
        tags = {spec.name: spec.tags for spec in self.settings.checks}
        outbox = notify.route(evaluation.events, self.settings.notify, tags)
        await asyncio.to_thread(
            self.store.commit_cycle,
            results,
            evaluation.state,
            evaluation.events,
            evaluation.resolved,
            outbox,
        )
        self._state = evaluation.state
        for event in evaluation.events:
            log.info(
                "incident " + event.kind,
                incident=event.incident_id,
                check=event.check,
                severity=str(event.severity),
                evidence=event.evidence,
            )
        if outbox:
            self.on_queued()

    async def cycle(
        self, specs: Iterable[CheckSpec]
    ) -> tuple[list[CheckResult], list[IncidentEvent]]:
        results = await self.run_checks(specs)
        events = await self.record(results)
        return results, events
