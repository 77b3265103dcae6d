"""Deliver the durable outbox to notify targets: through apprise, watchkeeper's own signed
JSON webhook (`daemon.notify.webhook`), or the native Slack and Teams channels.

Never log, store or return a target's raw URL or a secret: only its name and a masked URL.

Delivery is at-least-once. A row is marked delivered only after the target reports success; if
the process dies between the target accepting a message and that commit, the message is sent
again after restart. Every apprise body therefore ends with `ref: incident #42 · event 17` (or
`ref: message 9` for rows without an event), Slack and Teams cards show it in their footer,
and every webhook POST carries the row id in X-Watchkeeper-Delivery, so receivers can drop
duplicates.

Rows are claimed before they are sent (`Outbox.claim_due`): a lease held by this Notifier,
renewed just before each send for the whole delivery timeout, so the daemon and a command
that delivers (`digest --send`, `investigate --notify`, `check --record`…) never send the same
row, and a crashed owner's rows are taken over once its lease runs out.

Rows of one target are sent in order; when one fails, the rest of that target's due rows wait
for the same retry time (one probe per backoff step while a target is down, never sooner than
a Retry-After it sent), and other targets carry on concurrently. A failure the target calls
final (it refused the message, the webhook is gone, the token is bad) fails the row at once.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from daemon.config.settings import DeliverySettings, NotifyTarget
from daemon.errors import StateError
from daemon.models import Message, format_duration
from daemon.notify.channels import Channel, Failure, Outgoing
from daemon.notify.payload import message_payload
from daemon.notify.post import guard_httpx_logs
from daemon.notify.render import render_test
from daemon.notify.targets import ChannelFactory, TargetError
from daemon.notify.via_apprise import guard_library_logs
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.outbox import OutboxRow, new_owner

log = structlog.get_logger(__name__)

MAX_IDLE_S = 30.0
LEASE_GRACE = timedelta(seconds=30)
"""A claim outlives the delivery timeout by this much: time to record the outcome."""


def retry_delay(attempts: int, delivery: DeliverySettings) -> timedelta:
    """`retry_initial` after the first failure, doubling each time, capped at `retry_max`."""
    factor = 2 ** min(max(attempts - 1, 0), 32)
    delay: timedelta = min(delivery.retry_initial * factor, delivery.retry_max)
    return delay


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.delivered + other.delivered,
            self.retried + other.retried,
            self.failed + other.failed,
        )


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest class

    target: str
    ok: bool
    error: str | None = None


class Notifier:
    """Delivers outbox rows through one channel per target, built lazily (and afresh after a
    reload)."""

    def __init__(
        self,
        store: Store | None,
        targets: list[NotifyTarget],
        delivery: DeliverySettings,
        resolve_secret: Callable[[str], str],
        now: Callable[[], datetime],
        *,
        batch_size: int = 100,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`webhook_transport` replaces the network for the native HTTP channels (webhook,
        Slack, Teams) in tests of edge cases."""
        self._store = store
        self._targets = {t.name: t for t in targets}
        self._delivery = delivery
        self._now = now
        self._batch_size = batch_size
        self._factory = ChannelFactory(resolve_secret, webhook_transport)
        self._loaded: dict[str, Channel] = {}
        self._generation = 0
        self.owner = new_owner()
        self.totals = DeliveryReport()
        """Attempts this process made since it started (delivered, retried, failed): what
        /metrics exposes as counters, which reset with the process as Prometheus expects."""
        guard_library_logs()
        guard_httpx_logs()

    @property
    def _db(self) -> Store:
        """The outbox; only `send_test` works without one."""
        if self._store is None:
            raise RuntimeError("this Notifier was built without a store (send_test only)")
        return self._store

    def apply(self, targets: list[NotifyTarget], delivery: DeliverySettings) -> None:
        """A reload: new targets and delivery settings; URLs (and secrets) are resolved afresh
        on next use."""
        self._targets = {t.name: t for t in targets}
        self._delivery = delivery
        self._loaded.clear()
        self._generation += 1

    @property
    def _lease(self) -> timedelta:
        return self._delivery.timeout + LEASE_GRACE

    async def run(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """Deliver due rows until `stop`; sleep until `wake`, the next due row or 30 s."""
        while not stop.is_set():
            wake.clear()
            try:
                await self.deliver_due()
                delay = await self._idle_seconds()
            except StateError as exc:
                log.error("notify.pass_failed", why=str(exc))
                delay = MAX_IDLE_S
            except Exception:
                log.exception("notify.pass_failed")
                delay = MAX_IDLE_S
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _idle_seconds(self) -> float:
        due = await store_io(self._db.outbox.next_due_at)
        if due is None:
            return MAX_IDLE_S
        # a small floor keeps a clock that stands still (tests) from spinning the loop
        return min(max((due - self._now()).total_seconds(), 0.1), MAX_IDLE_S)

    async def deliver_due(self) -> DeliveryReport:
        """Claim the due rows nobody else holds and attempt each once: targets concurrently,
        each target's rows in order. Rows still claimed when this is cancelled are given back."""
        outbox = self._db.outbox
        rows = await store_io(
            outbox.claim_due, self.owner, self._now(), self._lease, self._batch_size
        )
        by_target: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_target.setdefault(row.target, []).append(row)
        try:
            reports = await asyncio.gather(*(self._deliver_target(r) for r in by_target.values()))
        except BaseException:
            await asyncio.shield(store_io(outbox.release, [r.id for r in rows], self.owner))
            raise
        report = sum(reports, DeliveryReport())
        self.totals += report
        return report

    async def _deliver_target(self, rows: list[OutboxRow]) -> DeliveryReport:
        report = DeliveryReport()
        outbox = self._db.outbox
        for index, row in enumerate(rows):
            if self._now() - row.created_at >= self._delivery.max_age:
                await self._give_up(row, f"undelivered after {_age(self._delivery.max_age)}")
                report += DeliveryReport(failed=1)
                continue
            held = await store_io(outbox.renew, row.id, self.owner, self._now() + self._lease)
            if not held:  # our lease ran out and another process took the row: theirs now
                log.warning("notify.claim_lost", target=row.target, row_id=row.id)
                continue
            failure = await self._send_row(row)
            now = self._now()
            if failure is None:
                await store_io(outbox.mark_delivered, row.id, now, self.owner)
                log.info(
                    "notify.delivered", target=row.target, row_id=row.id, event_id=row.event_id
                )
                report += DeliveryReport(delivered=1)
                continue
            error = failure.reason
            if failure.permanent:
                await self._give_up(row, error)
                report += DeliveryReport(failed=1)
                continue
            delay = retry_delay(row.attempts + 1, self._delivery)
            retry_at = now + max(delay, failure.retry_after or delay)
            await store_io(outbox.mark_retry, row.id, now, error, retry_at, self.owner)
            log.warning(
                "notify.retry", target=row.target, row_id=row.id, error=error, retry_at=retry_at
            )
            later = [r.id for r in rows[index + 1 :]]
            if later:
                await store_io(outbox.defer, later, retry_at, self.owner)
            return report + DeliveryReport(retried=1)
        return report

    async def _give_up(self, row: OutboxRow, reason: str) -> None:
        error = f"{reason}; last error: {row.last_error}" if row.last_error else reason
        await store_io(self._db.outbox.mark_failed, row.id, self._now(), error, self.owner)
        log.error(
            "notify.failed", target=row.target, row_id=row.id, event_id=row.event_id, error=error
        )

    async def _send_row(self, row: OutboxRow) -> Failure | None:
        try:
            channel = await self._load(row.target)
        except TargetError as exc:
            return Failure(str(exc), permanent=exc.permanent)
        reference = _reference(row)
        outgoing = Outgoing(
            title=row.title,
            body=f"{row.body}\n{reference}",
            notify_type=row.notify_type,
            payload=_row_payload(row),
            delivery_id=str(row.id),
            sent_at=self._now(),
            # a report removed since it was queued: send the text, which names its path
            attach=row.attach if row.attach and await _exists(row.attach) else None,
            reference=reference,
        )
        return await self._send(channel, outgoing)

    async def send_test(self, name: str | None = None) -> list[TestOutcome]:
        """Send `render_test` now (no outbox) to one target or all; report each outcome."""
        if name is not None and name not in self._targets:
            return [TestOutcome(name, False, f"no notify target named {name!r}")]
        names = [name] if name is not None else list(self._targets)
        return list(await asyncio.gather(*(self._test_one(n) for n in names)))

    async def _test_one(self, name: str) -> TestOutcome:
        try:
            channel = await self._load(name)
        except TargetError as exc:
            return TestOutcome(name, False, str(exc))
        message = render_test(name)
        outgoing = Outgoing(
            title=message.title,
            body=message.body,
            notify_type=message.notify_type,
            payload=message_payload(message, "test"),
            delivery_id=f"test-{uuid.uuid4().hex[:16]}",  # unique: receivers must not drop it
            sent_at=self._now(),
        )
        failure = await self._send(channel, outgoing)
        error = None if failure is None else failure.reason
        log.info("notify.test", target=name, url=channel.safe_url, ok=error is None, error=error)
        return TestOutcome(name, error is None, error)

    async def _load(self, name: str) -> Channel:
        """The target's channel; built off the loop (keyring lookups and CA loading block)."""
        cached = self._loaded.get(name)
        if cached is None:
            generation = self._generation
            cached = await asyncio.to_thread(self._build, name)
            if generation == self._generation:  # not reloaded meanwhile
                self._loaded[name] = cached
        return cached

    def _build(self, name: str) -> Channel:
        return self._factory.build(self._targets.get(name), name)

    async def _send(self, channel: Channel, outgoing: Outgoing) -> Failure | None:
        """None on success, else why, built from masked URLs only."""
        timeout = self._delivery.timeout
        try:
            return await asyncio.wait_for(
                channel.send(outgoing, timeout), timeout=timeout.total_seconds()
            )
        except TimeoutError:
            return Failure(f"{channel.safe_url} timed out after {_age(timeout)}")
        except Exception as exc:  # channels should not raise; never let one row stop delivery
            return Failure(f"{channel.safe_url} raised {type(exc).__name__}")


def _row_payload(row: OutboxRow) -> dict[str, Any]:
    """The row's payload with its event id; rows queued before payloads existed get a
    message payload built from their title and body."""
    if row.payload is None:
        message = Message(row.title, row.body, row.notify_type)
        return message_payload(message, "message")
    payload = dict(row.payload)
    if "event_id" in payload:
        payload["event_id"] = row.event_id
    return payload


def _reference(row: OutboxRow) -> str:
    parts = []
    if row.incident_id is not None:
        parts.append(f"incident #{row.incident_id}")
    if row.event_id is not None:
        parts.append(f"event {row.event_id}")
    return "ref: " + (" · ".join(parts) or f"message {row.id}")


def _age(value: timedelta) -> str:
    return format_duration(value) if value >= timedelta(seconds=1) else f"{value.total_seconds()}s"


async def _exists(path: str) -> bool:
    return await store_io(os.path.isfile, path)
