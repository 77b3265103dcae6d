"""Sharded mode (`[cluster] mode = "sharded"`): this node's membership and its share of the
checks.

Every node registers in `cluster_members` and heartbeats every third of the term (`[store]
lease`) on a connection of its own, so a heartbeat never waits behind the store's work. At each
heartbeat it reads the live members and, when they (or the configuration) changed, recomputes
the assignment (`plan`): rendezvous hashing of each check's name over the live members, and for
a check with `locations`, over the live members of each listed location. All nodes compute the
same plan from the same member list, so nothing is handed out and nothing is stored.

A node that stops heartbeating (kill -9, a lost database) drops out of the live set one term
after its last heartbeat; the others see it at their next heartbeat and run its checks at once
(`on_gained`). Until every node has seen a change a check may run twice or be late by up to a
third of the term: harmless, since the leader folds duplicate results into one evaluation.

This node's results go straight to `check_results` (`submit`), fenced by its membership: a
node whose row lapsed (its checks given to others) cannot add late results. The lease holder
alone turns stored results into incidents (`daemon.service.evaluator`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import structlog

from daemon import USER_AGENT
from daemon.engine.shards import plan, unstaffed
from daemon.errors import StateError
from daemon.models import CheckResult
from daemon.store import Store
from daemon.store.database import Fence, store_io
from daemon.store.members import Member
from daemon.util.threads import DaemonPool

T = TypeVar("T")

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.engine.pipeline import Pipeline

log = structlog.get_logger(__name__)

_members_io = DaemonPool(1, "wk-members")
"""Membership's own thread (and connection): a heartbeat must not queue behind the checks'
work on the loop's default threads, or a busy node would drop out of the members."""


async def _io(fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_members_io, fn, *args)


def user_agent(node: str, location: str | None) -> str:
    """What HTTP checks send: the version, and which node and vantage point asks (uptime
    services do the same, so the target's logs tell the locations apart)."""
    where = f"; location {location}" if location else ""
    return f"{USER_AGENT} (node {node}{where})"


class ShardNode:
    """This process as a member: `join`, then `keep` (heartbeats and the plan), `submit`
    results, `leave` on a clean stop."""

    def __init__(
        self,
        url: str,
        password: str | None,
        term: timedelta,
        node: str,
        location: str | None,
        settings: Callable[[], Settings],
    ) -> None:
        self.url = url
        self.password = password
        self.term = term
        self.node = node
        self.location = location
        self.settings = settings
        self.holder = f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.members: list[Member] = []
        """The live members at the last heartbeat."""
        self.mine: frozenset[str] = frozenset()
        """The checks this node runs under the current plan."""
        self.problem: str | None = None
        self._planned: tuple[object, ...] | None = None
        self._store: Store | None = None
        self._buffer: list[CheckResult] = []
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def every(self) -> float:
        return self.term.total_seconds() / 3

    def _own_store(self) -> Store:
        if self._store is None:
            self._store = Store.open(Path("."), self.url, self.password)
        return self._store

    def fence(self, store: Store) -> Fence:
        """The runtime store's writes are this member's: refused once its membership lapsed."""
        return store.members.fence(self.node, self.holder, self.term)

    def runs(self, name: str) -> bool:
        return name in self.mine

    async def join(self, stop: asyncio.Event) -> bool:
        """Register; wait while a live row of this name is another process's (a restart after
        kill -9 waits up to one term). False when stopped first."""
        announced = False
        while not stop.is_set():
            try:
                joined = await _io(
                    self._own_store().members.join, self.node, self.holder, self.location, self.term
                )
                self.problem = None
            except StateError as exc:
                joined, self.problem = False, str(exc)
                log.warning("cluster: cannot reach the database", reason=str(exc))
            if joined:
                await self._refresh(initial=True)
                log.info(
                    "cluster: joined",
                    node=self.node,
                    location=self.location,
                    members=len(self.members),
                    checks=len(self.mine),
                )
                return True
            if not announced and self.problem is None:
                log.warning(
                    "cluster: a live member already has this node's name; waiting for its "
                    "heartbeat to lapse (give each node its own [store] node)",
                    node=self.node,
                )
                announced = True
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)
        return False

    async def keep(
        self, stop: asyncio.Event, on_gained: Callable[[list[str]], Awaitable[None]]
    ) -> None:
        """Heartbeat every third of the term; re-plan when the members or the checks changed,
        and hand the checks this node gained to `on_gained` (run them now: their old owner
        may be dead and they are due)."""
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)
            if stop.is_set():
                return
            try:
                store = self._own_store()
                alive = await _io(store.members.beat, self.node, self.holder, len(self.mine))
                if not alive:  # lapsed and taken, or pruned: join again under a new holder
                    log.warning("cluster: this node's membership lapsed; joining again")
                    await _io(store.members.join, self.node, self.holder, self.location, self.term)
                gained = await self._refresh()
                self.problem = None
            except Exception as exc:  # StateError mostly; the loop must go on
                self.problem = str(exc)
                log.warning("cluster: heartbeat failed", reason=str(exc))
                continue
            if gained:
                await on_gained(sorted(gained))

    async def replan(self) -> None:
        """After a reload: the plan for the new checks, with the members last seen."""
        try:
            await self._refresh()
        except StateError as exc:
            log.warning("cluster: cannot read the members; keeping the plan", reason=str(exc))

    async def _refresh(self, *, initial: bool = False) -> set[str]:
        """Read the live members; re-plan if anything changed. The checks gained."""
        members = await _io(self._own_store().members.live, self.term)
        settings = self.settings()
        key = (tuple((m.node, m.location) for m in members), id(settings))
        self.members = members
        if key == self._planned:
            return set()
        before = self.mine
        specs = settings.enabled_checks
        # 10,000 checks x 3 members is ~0.1 s of hashing: off the loop
        planned = await _io(plan, specs, members)
        self.mine = frozenset(planned.get(self.node, set()))
        self._planned = key
        missing = unstaffed(specs, members)
        for where, checks in sorted(missing.items()):
            log.warning(
                "cluster: no live node in a location checks run from",
                location=where,
                checks=checks[:10],
                count=len(checks),
            )
        if not initial:
            log.info(
                "cluster: re-planned",
                members=[m.node for m in members],
                checks=len(self.mine),
                gained=len(self.mine - before),
                lost=len(before - self.mine),
            )
        return set(self.mine - before)

    # -- results ----------------------------------------------------------------------------

    def submit(self, results: list[CheckResult], pipeline: Pipeline, store: Store) -> None:
        """Queue results (stamped with this node's location); stored together after the
        cycle window, so a burst of checks is one transaction."""
        self._buffer.extend(r.model_copy(update={"location": self.location}) for r in results)
        if self._flush is None:
            delay = self.settings().daemon.cycle_window.total_seconds()
            self._flush = asyncio.get_running_loop().call_later(
                delay, self._start_flush, pipeline, store
            )

    def _start_flush(self, pipeline: Pipeline, store: Store) -> None:
        self._flush = None
        task = asyncio.ensure_future(self.flush(pipeline, store))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self, pipeline: Pipeline, store: Store) -> None:
        """Store the queued results; the node's health follows these commits as a single
        node's follows its cycles."""
        results, self._buffer = self._buffer, []
        if not results:
            return
        try:
            await store_io(store.results.add, results)
        except StateError as exc:
            pipeline.last_error = str(exc)[:300]
            log.error("results not recorded", results=len(results), why=str(exc))
            return
        pipeline.last_commit, pipeline.last_error = time.monotonic(), None

    async def drain(self, pipeline: Pipeline, store: Store) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        await self.flush(pipeline, store)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    def leave(self) -> None:
        """A clean stop: the others take this node's checks at their next heartbeat."""
        with suppress(StateError):
            self._own_store().members.leave(self.node, self.holder)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
