"""Checks sharing an interval start from one job, spread evenly over the span; a check still
running is skipped (as `max_instances = 1` did); nothing starts after stop or a reload."""

from __future__ import annotations

import asyncio
import time

from daemon.service.spread import Spread


async def test_runs_start_spread_evenly_over_the_span() -> None:
    spread, started = Spread(), dict[str, float]()
    t0 = time.monotonic()

    async def job(name: str) -> None:
        started[name] = time.monotonic() - t0

    await spread.start(["a", "b", "c", "d"], 0.4, job, asyncio.Event())
    while len(started) < 4:
        await asyncio.sleep(0.05)
    assert list(started) == ["a", "b", "c", "d"]
    assert started["a"] < started["b"] < started["c"] < started["d"]
    assert started["d"] >= 0.3  # the last one waited three quarters of the span
    assert spread.pending == {}


async def test_a_check_still_running_is_skipped_and_stop_starts_nothing() -> None:
    spread, runs = Spread(), list[str]()
    release = asyncio.Event()

    async def job(name: str) -> None:
        spread.running.add(name)
        runs.append(name)
        try:
            await release.wait()
        finally:
            spread.running.discard(name)

    stop = asyncio.Event()
    await spread.start(["slow"], 0, job, stop)
    await asyncio.sleep(0.05)
    await spread.start(["slow"], 0, job, stop)  # the first run has not finished
    await asyncio.sleep(0.05)
    assert runs == ["slow"]
    release.set()
    await asyncio.sleep(0.05)
    stop.set()
    await spread.start(["slow"], 0, job, stop)
    await asyncio.sleep(0.05)
    assert runs == ["slow"]


async def test_cancel_forgets_runs_not_started_yet() -> None:
    spread, runs = Spread(), list[str]()

    async def job(name: str) -> None:
        runs.append(name)

    await spread.start(["a", "b"], 0.2, job, asyncio.Event())
    await asyncio.sleep(0.02)
    spread.cancel()
    await asyncio.sleep(0.3)
    assert runs == ["a"] and spread.pending == {}
