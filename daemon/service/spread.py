"""Checks that share an interval run from one scheduler job: each time it fires, their runs
start spread evenly over a span (the jitter), one `loop.call_later` each.

Why not one APScheduler job per check: at 10,000 checks that costs ~2.4x the CPU per run
(the job store's bookkeeping, a wakeup per job) and 2 s of the event loop to add the jobs at
start and at every reload (`python -m bench.scale`). A check whose previous run is still going
is skipped, as APScheduler's `max_instances = 1` did; nothing starts once the daemon stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[str], Coroutine[Any, Any, None]]


class Spread:
    def __init__(self) -> None:
        self.pending: dict[str, asyncio.TimerHandle] = {}
        """Runs scheduled but not started, by check name."""
        self.running: set[str] = set()
        """Checks whose run has started and not finished (the job maintains it)."""
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self, names: list[str], span_s: float, job: Job, stop: asyncio.Event) -> None:
        """Start `job(name)` for every name, the i-th after i * span / len(names) s."""
        loop = asyncio.get_running_loop()
        step = span_s / len(names) if names else 0.0
        for i, name in enumerate(names):
            if name in self.pending:  # the last round has not reached it yet: keep that one
                continue
            self.pending[name] = loop.call_later(i * step, self._run, name, job, stop)

    def _run(self, name: str, job: Job, stop: asyncio.Event) -> None:
        self.pending.pop(name, None)
        if stop.is_set():
            return
        if name in self.running:
            log.warning("check skipped: its previous run is still going", check=name)
            return
        task = asyncio.ensure_future(job(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel(self) -> None:
        """Forget every run not started yet (a reload schedules afresh)."""
        for handle in self.pending.values():
            handle.cancel()
        self.pending.clear()
