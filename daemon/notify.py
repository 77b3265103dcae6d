"""Route incident events to notify targets and deliver the durable outbox: through apprise,
or as watchkeeper's own signed JSON webhook (`daemon.webhook`).

Never log, store or return a target's raw URL or a secret: only its name and a masked URL.

Delivery is at-least-once. A row is marked delivered only after the target reports success; if
the process dies between the target accepting a message and that commit, the message is sent
again after restart. Every apprise body therefore ends with `ref: incident #42 · event 17` (or
`ref: message 9` for rows without an event), and every webhook POST carries the row id in
X-Watchkeeper-Delivery, so receivers can drop duplicates.

Rows of one target are sent in order; when one fails, the rest of that target's due rows wait
for the same retry time (one probe per backoff step while a target is down), and other
targets carry on concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import apprise
import httpx
import structlog

from daemon.errors import SecretError
from daemon.logging import add_known_secret, redact
from daemon.models import IncidentEvent, format_duration
from daemon.render import Message, event_payload, render_event, render_test
from daemon.secrets import is_secret_ref
from daemon.store import NotifyType, OutboxItem, OutboxRow, Store
from daemon.webhook import WebhookChannel, guard_httpx_logs, message_payload, url_problem

if TYPE_CHECKING:
    from daemon.config import DeliverySettings, NotifyTarget

log = structlog.get_logger(__name__)

MAX_IDLE_S = 30.0
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}$")


def route(
    events: list[IncidentEvent],
    targets: list[NotifyTarget],
    tags_by_check: Mapping[str, list[str]],
    *,
    messages: Sequence[Message] | None = None,
    extras: Sequence[Mapping[str, Any]] | None = None,
) -> list[OutboxItem]:
    """One rendered item per (event, target) the target asked for: its `events` include the
    kind, the event's severity reaches `min_severity`, and its `tags` (if any) meet the
    check's tags. `messages[i]`, when given, is event i's composed message (triage, RCA and
    cost lines added to the rules' own); `extras[i]` fills the payload's triage/rca/costs."""
    items: list[OutboxItem] = []
    for index, event in enumerate(events):
        message: Message | None = messages[index] if messages is not None else None
        payload: dict[str, Any] | None = None
        if message is not None:
            payload = {**event_payload(event), "title": message.title, "text": message.body}
            payload.update(extras[index] if extras is not None else {})
        check_tags = set(tags_by_check.get(event.check, []))
        for target in targets:
            if event.kind not in target.events or event.severity < target.min_severity:
                continue
            if target.tags and not check_tags.intersection(target.tags):
                continue
            message = message or render_event(event)
            payload = payload or event_payload(event)
            items.append(_item(target.name, message, payload, index))
    return items


def route_message(message: Message, targets: list[NotifyTarget], kind: str) -> list[OutboxItem]:
    """Items for a message outside a cycle (e.g. kind "report") to every target wanting it."""
    payload = message_payload(message, kind)
    return [_item(t.name, message, payload, None) for t in targets if kind in t.events]


def _item(
    target: str, message: Message, payload: dict[str, Any], event_index: int | None
) -> OutboxItem:
    # every target kind gets the payload: a reload may turn an apprise target into a webhook
    return OutboxItem(
        target, message.title, message.body, message.notify_type, event_index, payload
    )


def retry_delay(attempts: int, delivery: DeliverySettings) -> timedelta:
    """`retry_initial` after the first failure, doubling each time, capped at `retry_max`."""
    factor = 2 ** min(max(attempts - 1, 0), 32)
    delay: timedelta = min(delivery.retry_initial * factor, delivery.retry_max)
    return delay


def mask_url(privacy_url: str) -> str:
    """`json://127.0.0.1:8080/...` from apprise's privacy URL (or a plain webhook URL): apprise
    masks passwords but keeps paths and query values, where webhook tokens often live."""
    parts = urlsplit(privacy_url)
    netloc = parts.netloc.rpartition("@")[2]
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{rest}"


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


@dataclass(frozen=True)
class Outgoing:
    """One delivery attempt of one message, in every form a channel may need."""

    title: str
    body: str
    """Markdown; for outbox rows it ends with the `ref:` line."""
    notify_type: NotifyType
    payload: dict[str, Any]
    """The structured form (`event_id` filled in, `sent_at` not yet)."""
    delivery_id: str
    """Stable across retries: the outbox row id (`test-…` for `send_test`)."""
    sent_at: datetime
    attach: str | None = None
    """A report file to attach where the target supports it (email); Slack webhooks and
    the like send the text alone, which always names the report's path."""


class _Channel(Protocol):
    """A target ready to send: apprise, or a webhook. `send` returns None on success, else an
    error made of `safe_url` and status words only; TimeoutError and any other exception are
    turned into such an error by the Notifier."""

    @property
    def safe_url(self) -> str: ...

    async def send(self, outgoing: Outgoing, limit: timedelta) -> str | None: ...


@dataclass(frozen=True)
class _AppriseChannel:
    apobj: apprise.Apprise
    safe_url: str

    async def send(self, outgoing: Outgoing, limit: timedelta) -> str | None:
        result = await self.apobj.async_notify(
            body=outgoing.body,
            title=outgoing.title,
            body_format=apprise.NotifyFormat.MARKDOWN,
            notify_type=apprise.NotifyType(outgoing.notify_type),
            timeout=limit.total_seconds(),
            attach=outgoing.attach,
        )
        if result:
            return None
        failures = [f"{mask_url(r.url)} returned {r.status.name.lower()}" for r in result if not r]
        return "; ".join(failures) or f"{self.safe_url}: nothing sent ({result.status.name})"


class _TargetError(Exception):
    """A target cannot be used right now; the message is safe to store and show."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Notifier:
    """Delivers outbox rows, one apprise object per target, built lazily."""

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
        self._store = store
        self._targets = {t.name: t for t in targets}
        self._delivery = delivery
        self._resolve = resolve_secret
        self._now = now
        self._batch_size = batch_size
        self._webhook_transport = webhook_transport
        self._loaded: dict[str, _Channel] = {}
        self._generation = 0
        guard_library_logs()

    @property
    def _db(self) -> Store:
        """The outbox; only `send_test` works without one."""
        if self._store is None:
            raise RuntimeError("this Notifier was built without a store (send_test only)")
        return self._store

    def update_targets(self, targets: list[NotifyTarget]) -> None:
        """Config reload: new targets, and URLs (and secrets) resolved afresh on next use."""
        self._targets = {t.name: t for t in targets}
        self._loaded.clear()
        self._generation += 1

    async def run(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """Deliver due rows until `stop`; sleep until `wake`, the next due row or 30 s."""
        while not stop.is_set():
            wake.clear()
            try:
                await self.deliver_due()
                delay = await self._idle_seconds()
            except Exception:
                log.exception("notify.pass_failed")
                delay = MAX_IDLE_S
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _idle_seconds(self) -> float:
        due = await asyncio.to_thread(self._db.next_due_at)
        if due is None:
            return MAX_IDLE_S
        # a small floor keeps a clock that stands still (tests) from spinning the loop
        return min(max((due - self._now()).total_seconds(), 0.1), MAX_IDLE_S)

    async def deliver_due(self) -> DeliveryReport:
        """Attempt every due row once: targets concurrently, each target's rows in order."""
        rows = await asyncio.to_thread(self._db.due_outbox, self._now(), self._batch_size)
        by_target: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_target.setdefault(row.target, []).append(row)
        reports = await asyncio.gather(*(self._deliver_target(r) for r in by_target.values()))
        return sum(reports, DeliveryReport())

    async def _deliver_target(self, rows: list[OutboxRow]) -> DeliveryReport:
        report = DeliveryReport()
        for index, row in enumerate(rows):
            if self._now() - row.created_at >= self._delivery.max_age:
                await self._give_up(row, f"undelivered after {_age(self._delivery.max_age)}")
                report += DeliveryReport(failed=1)
                continue
            error, permanent = await self._send_row(row)
            now = self._now()
            if error is None:
                await asyncio.to_thread(self._db.mark_delivered, row.id, now)
                log.info(
                    "notify.delivered", target=row.target, row_id=row.id, event_id=row.event_id
                )
                report += DeliveryReport(delivered=1)
                continue
            if permanent:
                await self._give_up(row, error)
                report += DeliveryReport(failed=1)
                continue
            retry_at = now + retry_delay(row.attempts + 1, self._delivery)
            await asyncio.to_thread(self._db.mark_retry, row.id, now, error, retry_at)
            log.warning(
                "notify.retry", target=row.target, row_id=row.id, error=error, retry_at=retry_at
            )
            later = [r.id for r in rows[index + 1 :]]
            if later:
                await asyncio.to_thread(self._db.defer, later, retry_at)
            return report + DeliveryReport(retried=1)
        return report

    async def _give_up(self, row: OutboxRow, reason: str) -> None:
        error = f"{reason}; last error: {row.last_error}" if row.last_error else reason
        await asyncio.to_thread(self._db.mark_failed, row.id, self._now(), error)
        log.error(
            "notify.failed", target=row.target, row_id=row.id, event_id=row.event_id, error=error
        )

    async def _send_row(self, row: OutboxRow) -> tuple[str | None, bool]:
        try:
            channel = await self._load(row.target)
        except _TargetError as exc:
            return str(exc), exc.permanent
        outgoing = Outgoing(
            title=row.title,
            body=f"{row.body}\n{_reference(row)}",
            notify_type=row.notify_type,
            payload=_row_payload(row),
            delivery_id=str(row.id),
            sent_at=self._now(),
            # a report removed since it was queued: send the text, which names its path
            attach=row.attach if row.attach and await _exists(row.attach) else None,
        )
        return await self._send(channel, outgoing), False

    async def send_test(self, name: str | None = None) -> list[TestOutcome]:
        """Send `render_test` now (no outbox) to one target or all; report each outcome."""
        if name is not None and name not in self._targets:
            return [TestOutcome(name, False, f"no notify target named {name!r}")]
        names = [name] if name is not None else list(self._targets)
        return list(await asyncio.gather(*(self._test_one(n) for n in names)))

    async def _test_one(self, name: str) -> TestOutcome:
        try:
            channel = await self._load(name)
        except _TargetError as exc:
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
        error = await self._send(channel, outgoing)
        log.info("notify.test", target=name, url=channel.safe_url, ok=error is None, error=error)
        return TestOutcome(name, error is None, error)

    async def _load(self, name: str) -> _Channel:
        """The target's channel; built off the loop (keyring lookups and CA loading block)."""
        cached = self._loaded.get(name)
        if cached is None:
            generation = self._generation
            cached = await asyncio.to_thread(self._build, name)
            if generation == self._generation:  # not reloaded meanwhile
                self._loaded[name] = cached
        return cached

    def _build(self, name: str) -> _Channel:
        target = self._targets.get(name)
        if target is None:
            raise _TargetError(f"target {name!r} is no longer configured", permanent=True)
        url = self._secret(name, target.url)
        if target.kind == "webhook":
            return self._build_webhook(target, url)
        return self._build_apprise(name, url)

    def _secret(self, name: str, value: str) -> str:
        """`value`, or the secret it refers to — registered so every log line masks it."""
        try:
            resolved = self._resolve(value)
        except SecretError as exc:
            raise _TargetError(f"target {name}: {exc}") from None
        if is_secret_ref(value):
            add_known_secret(resolved)
        return resolved

    def _build_webhook(self, target: NotifyTarget, url: str) -> WebhookChannel:
        problem = url_problem(url)
        if problem is not None:
            raise _TargetError(f"target {target.name}: {problem}")
        signing = target.signing_secret
        headers = {key: self._secret(target.name, value) for key, value in target.headers.items()}
        for key, value in headers.items():
            if any(c in value for c in "\r\n\0"):
                raise _TargetError(
                    f"target {target.name}: header {key!r} contains a line break or NUL"
                )
        channel = WebhookChannel(
            url=url.strip(),
            safe_url=mask_url(url.strip()),
            signing_secret=None if signing is None else self._secret(target.name, signing),
            headers=headers,
            ssl_context=httpx.create_ssl_context(),
            transport=self._webhook_transport,
        )
        log.debug("notify.target_loaded", target=target.name, url=channel.safe_url)
        return channel

    def _build_apprise(self, name: str, url: str) -> _AppriseChannel:
        apobj = apprise.Apprise()
        if not apobj.add(url):
            scheme = url.split("://", 1)[0] if "://" in url else ""
            shown = repr(scheme) if _SCHEME.match(scheme) else "unrecognised"
            raise _TargetError(f"target {name}: apprise cannot use its URL (scheme {shown})")
        plugins: list[Any] = list(apobj)  # apprise's url() is unannotated
        channel = _AppriseChannel(apobj, ", ".join(mask_url(p.url(privacy=True)) for p in plugins))
        log.debug("notify.target_loaded", target=name, url=channel.safe_url)
        return channel

    async def _send(self, channel: _Channel, outgoing: Outgoing) -> str | None:
        """None on success, else a storable error built from masked URLs only."""
        timeout = self._delivery.timeout
        try:
            return await asyncio.wait_for(
                channel.send(outgoing, timeout), timeout=timeout.total_seconds()
            )
        except TimeoutError:
            return f"{channel.safe_url} timed out after {_age(timeout)}"
        except Exception as exc:  # channels should not raise; never let one row stop delivery
            return f"{channel.safe_url} raised {type(exc).__name__}"


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


class _LibraryLogGuard(logging.Filter):
    """apprise logs raw URLs (tokens in paths) below WARNING, and a URL it cannot use verbatim
    at ERROR; urllib3 logs request paths at DEBUG. Drop the former and redact the rest here,
    on the logger, so no handler (journald, a test's caplog) ever sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break the caller
            text = str(record.msg)
        record.msg, record.args = redact(text), None
        return True


def guard_library_logs() -> None:
    """Attach the guards (once per process) to the loggers that print raw URLs."""
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LibraryLogGuard) for f in logger.filters):
            logger.addFilter(_LibraryLogGuard())
    guard_httpx_logs()


async def _exists(path: str) -> bool:
    return await asyncio.to_thread(os.path.isfile, path)
