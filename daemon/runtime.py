"""Every component of a running watchkeeper, built once from one configuration and held here;
`apply(settings)` hands a reload to each of them.

The daemon, `run --once` and every command that records or calls a model open the same
runtime, so they behave the same. Nothing here schedules, listens or handles signals: that is
`daemon.service`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog

from daemon import USER_AGENT, secrets
from daemon.ai.runner import AI
from daemon.config.settings import Settings
from daemon.engine.baselines import BaselinePolicy, Baselines
from daemon.engine.investigator import Investigator
from daemon.engine.pipeline import Pipeline
from daemon.logging import add_known_secret
from daemon.models import Message, Ping
from daemon.notify.delivery import Notifier
from daemon.notify.routing import route_message
from daemon.store import Store
from daemon.store.database import store_io
from daemon.util.threads import DaemonPool
from daemon.util.time import utcnow
from jobs.base import CheckContext

log = structlog.get_logger(__name__)

LIBRARY_THREADS = 32
"""The loop's default executor: libraries' blocking calls (httpx's name lookups, keyring)."""


def secret_resolver() -> Callable[[str], str]:
    """`secret:NAME` → value, and register the value so logs mask it wherever it appears."""

    def resolve(ref: str) -> str:
        value = secrets.resolve(ref)
        if value is not ref:
            add_known_secret(value)
        return value

    return resolve


def make_baselines(settings: Settings, store: Store) -> Baselines | None:
    if not settings.baselines.enabled:
        return None
    return Baselines(
        BaselinePolicy.from_settings(settings.baselines),
        store.results.figures,
        snapshots=store.snapshots.read,
        tail=store.results.figures,
    )


@dataclass
class Runtime:
    """The components of one process, wired together. Built by `open_runtime`."""

    settings: Settings
    store: Store
    ctx: CheckContext
    ai: AI
    notifier: Notifier
    investigator: Investigator
    pipeline: Pipeline
    wake: asyncio.Event
    """Set whenever something was queued in the outbox: the delivery loop wakes up."""

    def apply(self, settings: Settings) -> None:
        """A reload: every component takes what it needs from the new settings (routing,
        budgets, providers, prices, redaction, targets, checks, incidents, baselines).
        The state directory is not among them: it needs a restart."""
        self.settings = settings
        self.ai.apply(settings)
        self.notifier.apply(settings.notify, settings.delivery)
        self.investigator.apply(settings)
        baselines = self.pipeline.baselines
        policy = BaselinePolicy.from_settings(settings.baselines)
        if baselines is None or policy != baselines.policy:
            baselines = make_baselines(settings, self.store)
        self.pipeline.apply(settings, baselines)

    def queue_budget_notice(self, message: Message) -> None:
        """The model layer's "budget reached" notice, to the targets configured *now*."""
        self.store.outbox.enqueue(route_message(message, self.settings.notify, "budget"))
        self.wake.set()


def ping_reader(store: Store) -> Callable[[str], Awaitable[list[Ping]]]:
    """What `heartbeat` checks read: the newest pings of a check, from the store's thread."""

    async def pings(check: str) -> list[Ping]:
        return await store_io(store.heartbeats.recent, check)

    return pings


@asynccontextmanager
async def open_runtime(
    settings: Settings, now: Callable[[], datetime] = utcnow
) -> AsyncIterator[Runtime]:
    """The runtime for `settings`, closed (store last) when the block ends."""
    # httpx and anyio resolve names on the loop's default executor; a pool of daemon threads
    # there means lookups a black-holed resolver never answers cannot hold up the exit.
    asyncio.get_running_loop().set_default_executor(DaemonPool(LIBRARY_THREADS, "wk-io"))
    store = await store_io(
        Store.open,
        settings.daemon.state_dir,
        settings.store.url,
        await asyncio.to_thread(settings.store.resolved_password),
    )
    try:
        async with httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, timeout=30.0, follow_redirects=False
        ) as client:
            resolve = secret_resolver()
            wake = asyncio.Event()
            ctx = CheckContext(
                http=client, now=now, resolve_secret=resolve, pings=ping_reader(store)
            )
            notifier = Notifier(store, settings.notify, settings.delivery, resolve, now)
            holder: list[Runtime] = []
            ai = AI(
                settings,
                store,
                client,
                now=now,
                on_budget_notice=lambda message: holder[0].queue_budget_notice(message),
            )
            await asyncio.to_thread(ai.register_keys)
            investigator = Investigator(settings, store, ai, ctx, now=now, on_queued=wake.set)
            pipeline = Pipeline(
                settings,
                store,
                ctx,
                now=now,
                on_queued=wake.set,
                ai=ai,
                investigator=investigator,
                baselines=make_baselines(settings, store),
            )
            runtime = Runtime(settings, store, ctx, ai, notifier, investigator, pipeline, wake)
            holder.append(runtime)
            yield runtime
    finally:
        await store_io(store.close)
