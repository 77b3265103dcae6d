"""Active/standby over a shared PostgreSQL database: which `watchkeeper run` does the work.

Every process tries for the leader lease (`daemon.store.lease`) on a connection of its own, so
the lease never waits behind the store's work. The one that holds it is active: it runs the
checks, commits cycles, delivers notifications, runs triage, RCA and sweeps, and every write
transaction of its store is fenced by its epoch. The others are standbys: they only look at
the lease every third of its term, and take it once it expires — at most `[store] lease` after
the active process died, wedged or lost the database.

What elects is a backend behind `Leader`'s two hooks (`_try`, `_renew`): the lease row itself
(here), or a Kubernetes `coordination.k8s.io` Lease (`daemon.service.kube_lease`, `[store]
election = "kubernetes"`) whose winner then claims the row at the Lease's transition count.
Fencing is the same either way: the row's holder and epoch, checked by every write.

A process that finds its lease taken over (or cannot renew it for a whole term) is deposed: it
stops, with exit status EX_TEMPFAIL (75), and its supervisor (systemd, Kubernetes) starts it
again as a standby. Delivery stays at-least-once across a failover: a message sent just before
the old process died, and not yet marked delivered, is sent again by the new one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from daemon.errors import ConfigError, ConfigProblem, StateError
from daemon.store import Store
from daemon.store.database import Fence
from daemon.store.lease import Lease
from daemon.store.postgres import redacted
from daemon.util.text import printable

if TYPE_CHECKING:
    from daemon.config.store import StoreSettings
    from daemon.runtime import Runtime

log = structlog.get_logger(__name__)

DEPOSED_EXIT = 75
"""EX_TEMPFAIL: try again (as a standby)."""


def node_name(configured: str | None) -> str:
    return configured or socket.gethostname()


def election(settings: StoreSettings, password: str | None) -> Leader:
    """This process's side of the election `[store] election` chooses (`url` must be set)."""
    if settings.url is None:
        raise RuntimeError("an election needs [store] url")
    if settings.election == "kubernetes":
        from daemon.service.kube_lease import KubernetesLeader

        return KubernetesLeader(
            settings.url, password, settings.lease, settings.node, settings.kubernetes
        )
    return Leader(settings.url, password, settings.lease, settings.node)


class Leader:
    """This process's side of the election. `wait` until active, then `keep` the lease."""

    def __init__(
        self, url: str, password: str | None, term: timedelta, node: str | None = None
    ) -> None:
        self.url = url
        self._password = password
        self.term = term
        self.node = node_name(node)
        self.holder = f"{self.node}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease: Lease | None = None
        self.last_contact = time.monotonic()
        """When the database last answered a lease call (a standby's health)."""
        self.problem: str | None = None
        self._store: Store | None = None

    @property
    def active(self) -> bool:
        return self.lease is not None

    @property
    def every(self) -> float:
        """How often the active process renews."""
        return self.term.total_seconds() / 3

    @property
    def poll(self) -> float:
        """How often a standby looks at the lease."""
        return self.every

    @property
    def renew_deadline(self) -> float:
        """Seconds without a renewal after which the active process must assume a standby
        took over, and stop."""
        return self.term.total_seconds()

    def _lease_store(self) -> Store:
        if self._store is None:
            self._store = Store.open(Path("."), self.url, self._password)
        return self._store

    def _try(self) -> Lease | None:
        return self._lease_store().lease.acquire(self.holder, self.node, self.term)

    def _renew(self, lease: Lease) -> Lease | None:
        return self._lease_store().lease.renew(self.holder, lease.epoch, self.term)

    def fence(self) -> Fence:
        if self.lease is None:
            raise RuntimeError("not the leader")
        return self._lease_store().lease.fence(self.holder, self.lease.epoch)

    async def wait(self, stop: asyncio.Event) -> bool:
        """Standby until the lease is ours (True), or until `stop` (False)."""
        announced = False
        while not stop.is_set():
            try:
                lease = await asyncio.to_thread(self._try)
                self.last_contact, self.problem = time.monotonic(), None
            except StateError as exc:
                lease, self.problem = None, str(exc)
                log.warning("standby: cannot take part in the election", reason=str(exc))
            if lease is not None:
                self.lease = lease
                log.info("active: holding the leader lease", node=self.node, epoch=lease.epoch)
                return True
            if not announced:
                log.info("standby: another watchkeeper is active", node=self.node)
                announced = True
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll)
        return False

    async def keep(self, stop: asyncio.Event, deposed: Callable[[str], None]) -> None:
        """Renew every third of the term; call `deposed(why)` and return when the lease was
        taken over, or when no renewal got through for `renew_deadline` (from here it cannot
        tell whether a standby took over, so it must assume one did)."""
        last_ok = time.monotonic()
        while not stop.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)
            if stop.is_set() or self.lease is None:
                return
            try:
                renewed = await asyncio.to_thread(self._renew, self.lease)
            except Exception as exc:  # StateError mostly; anything else must not end the loop
                self.problem = str(exc)
                if time.monotonic() - last_ok >= self.renew_deadline:
                    deposed(f"no lease renewal for {self.renew_deadline:g} s: {exc}")
                    return
                log.warning("cannot renew the leader lease", reason=str(exc))
                continue
            if renewed is None:
                deposed("another watchkeeper took the leader lease over")
                return
            self.lease, self.problem = renewed, None
            last_ok = self.last_contact = time.monotonic()

    def release(self) -> None:
        """After a clean stop: hand the lease to a standby at once."""
        if self.lease is not None:
            with suppress(StateError):
                self._lease_store().lease.release(self.holder, self.lease.epoch)
            self.lease = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


@asynccontextmanager
async def lease_for_one_run(rt: Runtime) -> AsyncIterator[None]:
    """`run --once` and `check --record` on a shared database: they commit cycles like the
    active process, so they take the lease for the run (fenced like it), and refuse to run
    while another process holds it — two writers of one engine state would undo each other."""
    settings = rt.settings.store
    if settings.url is None:
        yield
        return
    if rt.settings.cluster.mode == "sharded":
        # the members run the checks and the leader evaluates their stored results from a
        # cursor: a cycle committed here would be evaluated again by the next leader
        raise ConfigError(
            "watchkeeper",
            [
                ConfigProblem(
                    "cluster.mode",
                    '"sharded": the members run the checks; this command commits a cycle of '
                    "its own, so it runs only on a single node or an active/standby pair "
                    "(`watchkeeper check NAME` without --record runs one check by hand)",
                )
            ],
        )
    password = await asyncio.to_thread(settings.resolved_password)
    leader = election(settings, password)
    try:
        lease = await asyncio.to_thread(leader._try)
        if lease is None:
            current, _ = await asyncio.to_thread(leader._lease_store().lease.current)
            who = printable(current.node) if current is not None else "another process"
            raise StateError(
                f"watchkeeper on {who} is active on {redacted(settings.url)}: it runs the checks "
                "and owns their state; run this on that node, or stop it first"
            )
        leader.lease = lease
        rt.store.db.fence = leader.fence()
        yield
    finally:
        await asyncio.to_thread(leader.release)
        await asyncio.to_thread(leader.close)
