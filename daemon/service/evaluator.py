"""Sharded mode, on the lease holder: every node's stored results → one incident engine.

Each node commits its own results (`daemon.service.cluster`); the leader reads the results
stored since its last cycle, by id, and records them as one cycle: the same evaluation,
triage, notifications and commit as a single node, except that the results are already
stored. The id of the last result evaluated is committed with the engine state
(`EngineState.results_cursor`), in the same fenced transaction, so a new leader resumes where
the old one's last committed cycle ended: no result evaluated twice, none skipped. Ids become
visible in order because every write transaction holds the database's write lock while it
inserts (`Results.since`).

A check with `locations` is evaluated from its latest result in each location
(`daemon.engine.vantage`): whenever one of its locations reports, the leader reads the others'
latest results and records the quorum's verdict in place of the raw results — or nothing,
with a warning, while too few of its locations have a live node to reach the quorum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from daemon.engine.vantage import fresh_for, unreachable, vantages, verdict
from daemon.errors import StateError
from daemon.models import CheckResult
from daemon.store.database import store_io
from daemon.store.members import Member

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.engine.pipeline import Pipeline
    from daemon.store import Store

log = structlog.get_logger(__name__)

FORGET_MEMBERS_AFTER = timedelta(days=1)
"""A member gone this long leaves `status` (until then it shows as gone)."""
PRUNE_EVERY_S = 3600.0
BATCH = 1000
"""Results evaluated in one cycle at most (a backlog after a takeover is several cycles):
a cycle's engine work runs on the event loop, and a long one would delay the lease renewal
of a busy leader."""


class Evaluator:
    """The leader's side: `run` until stopped."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        settings: Callable[[], Settings],
        members: Callable[[], Sequence[Member]],
        term: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self.members = members
        self.term = term
        self.now = now

    async def run(self, stop: asyncio.Event) -> None:
        state = await self.pipeline.state()
        cursor = state.results_cursor
        if cursor is None:  # the first sharded leader: evaluate what is stored from now on
            cursor = await store_io(self.store.results.last_id)
        every = max(self.settings().daemon.cycle_window.total_seconds(), 0.2)
        pruned = 0.0
        while not stop.is_set():
            if time.monotonic() - pruned >= PRUNE_EVERY_S:
                pruned = time.monotonic()
                with suppress(StateError):
                    await store_io(self.store.members.prune, FORGET_MEMBERS_AFTER)
            try:
                cursor, full = await self.once(cursor)
            except Exception as exc:  # a StateError (the cycle failed) is retried next round
                self.pipeline.last_error = str(exc)[:300]
                log.error("sharded cycle failed: results not evaluated", why=str(exc))
                full = False
            if full:
                continue
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)

    async def once(self, cursor: int) -> tuple[int, bool]:
        """Evaluate the results stored after `cursor`; the new cursor, and whether more
        are waiting."""
        batch = await store_io(self.store.results.since, cursor, BATCH)
        if not batch:
            return cursor, False
        last = batch[-1][0]
        results = await self.with_verdicts([result for _, result in batch])
        await self.pipeline.record(results, consumed=last)
        return last, len(batch) == BATCH

    async def with_verdicts(self, results: list[CheckResult]) -> list[CheckResult]:
        """The results, with every vantage check's replaced by its quorum's verdict."""
        settings = self.settings()
        vantage = {s.name: s for s in settings.enabled_checks if s.locations}
        touched = sorted({r.check for r in results if r.check in vantage})
        if not touched:
            return results
        staffed = {m.location for m in self.members() if m.location}
        now = self.now()
        verdicts = []
        for name in touched:
            spec = vantage[name]
            latest = await store_io(self.store.results.latest_from, name, spec.locations)
            seen = vantages(spec, latest, staffed)
            judged = verdict(name, seen, spec.needed, now, fresh_for(spec, self.term))
            if judged is not None:
                verdicts.append(judged)
                continue
            log.warning(
                "vantage check not judged: too few of its locations have a live node for "
                "its quorum; its state is kept as it was",
                check=name,
                quorum=spec.needed,
                missing=unreachable(seen, spec.needed),
            )
        return [r for r in results if r.check not in vantage] + verdicts
