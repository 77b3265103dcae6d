"""Route incident events to notify targets and deliver the durable outbox through apprise.

Never log, store or return a target's raw URL or a secret: only its name and a masked URL.

Delivery is at-least-once. A row is marked delivered only after apprise reports success; if
the process dies between the target accepting a message and that commit, the message is sent
again after restart. Every body therefore ends with `ref: incident #42 · event 17` (or
`ref: message 9` for rows without an event) so receivers can drop duplicates.

Rows of one target are sent in order; when one fails, the rest of that target's due rows wait
for the same retry time (one probe per backoff step while a target is down), and other
targets carry on concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import apprise
import structlog

from daemon.errors import SecretError
from daemon.logging import add_known_secret, redact
from daemon.models import IncidentEvent, format_duration
from daemon.render import Message, render_event, render_test
from daemon.secrets import is_secret_ref
from daemon.store import OutboxItem, OutboxRow, Store

if TYPE_CHECKING:
    from daemon.config import DeliverySettings, NotifyTarget

log = structlog.get_logger(__name__)

MAX_IDLE_S = 30.0
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}$")


def route(
    events: list[IncidentEvent],
    targets: list[NotifyTarget],
    tags_by_check: Mapping[str, list[str]],
) -> list[OutboxItem]:
    """One rendered item per (event, target) the target asked for: its `events` include the
    kind, the event's severity reaches `min_severity`, and its `tags` (if any) meet the
    check's tags."""
    items: list[OutboxItem] = []
    for index, event in enumerate(events):
        message: Message | None = None
        check_tags = set(tags_by_check.get(event.check, []))
        for target in targets:
            if event.kind not in target.events or event.severity < target.min_severity:
                continue
            if target.tags and not check_tags.intersection(target.tags):
                continue
            message = message or render_event(event)
            items.append(_item(target.name, message, index))
    return items


def route_message(message: Message, targets: list[NotifyTarget], kind: str) -> list[OutboxItem]:
    """Items for a message outside a cycle (e.g. kind "report") to every target wanting it."""
    return [_item(t.name, message, None) for t in targets if kind in t.events]


def _item(target: str, message: Message, event_index: int | None) -> OutboxItem:
    return OutboxItem(target, message.title, message.body, message.notify_type, event_index)


def retry_delay(attempts: int, delivery: DeliverySettings) -> timedelta:
    """`retry_initial` after the first failure, doubling each time, capped at `retry_max`."""
    factor = 2 ** min(max(attempts - 1, 0), 32)
    delay: timedelta = min(delivery.retry_initial * factor, delivery.retry_max)
    return delay


def mask_url(privacy_url: str) -> str:
    """`json://127.0.0.1:8080/...` from apprise's privacy URL: apprise masks passwords but
    keeps paths and query values, where webhook tokens often live."""
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
class _Loaded:
    apobj: apprise.Apprise
    safe_url: str


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
    ) -> None:
        self._store = store
        self._targets = {t.name: t for t in targets}
        self._delivery = delivery
        self._resolve = resolve_secret
        self._now = now
        self._batch_size = batch_size
        self._loaded: dict[str, _Loaded] = {}
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
            loaded = await self._load(row.target)
        except _TargetError as exc:
            return str(exc), exc.permanent
        body = f"{row.body}\n{_reference(row)}"
        return await self._send(loaded, row.title, body, row.notify_type), False

    async def send_test(self, name: str | None = None) -> list[TestOutcome]:
        """Send `render_test` now (no outbox) to one target or all; report each outcome."""
        if name is not None and name not in self._targets:
            return [TestOutcome(name, False, f"no notify target named {name!r}")]
        names = [name] if name is not None else list(self._targets)
        return list(await asyncio.gather(*(self._test_one(n) for n in names)))

    async def _test_one(self, name: str) -> TestOutcome:
        try:
            loaded = await self._load(name)
        except _TargetError as exc:
            return TestOutcome(name, False, str(exc))
        message = render_test(name)
        error = await self._send(loaded, message.title, message.body, message.notify_type)
        log.info("notify.test", target=name, url=loaded.safe_url, ok=error is None, error=error)
        return TestOutcome(name, error is None, error)

    async def _load(self, name: str) -> _Loaded:
        """The target's apprise object; built off the loop (keyring lookups can block)."""
        cached = self._loaded.get(name)
        if cached is None:
            generation = self._generation
            cached = await asyncio.to_thread(self._build, name)
            if generation == self._generation:  # not reloaded meanwhile
                self._loaded[name] = cached
        return cached

    def _build(self, name: str) -> _Loaded:
        target = self._targets.get(name)
        if target is None:
            raise _TargetError(f"target {name!r} is no longer configured", permanent=True)
        try:
            url = self._resolve(target.url)
        except SecretError as exc:
            raise _TargetError(f"target {name}: {exc}") from None
        if is_secret_ref(target.url):
            add_known_secret(url)  # masked in every log line from now on
        apobj = apprise.Apprise()
        if not apobj.add(url):
            scheme = url.split("://", 1)[0] if "://" in url else ""
            shown = repr(scheme) if _SCHEME.match(scheme) else "unrecognised"
            raise _TargetError(f"target {name}: apprise cannot use its URL (scheme {shown})")
        plugins: list[Any] = list(apobj)  # apprise's url() is unannotated
        loaded = _Loaded(apobj, ", ".join(mask_url(p.url(privacy=True)) for p in plugins))
        log.debug("notify.target_loaded", target=name, url=loaded.safe_url)
        return loaded

    async def _send(self, loaded: _Loaded, title: str, body: str, notify_type: str) -> str | None:
        """None on success, else a storable error built from masked URLs only."""
        seconds = self._delivery.timeout.total_seconds()
        try:
            result = await asyncio.wait_for(
                loaded.apobj.async_notify(
                    body=body,
                    title=title,
                    body_format=apprise.NotifyFormat.MARKDOWN,
                    notify_type=apprise.NotifyType(notify_type),
                    timeout=seconds,
                ),
                timeout=seconds,
            )
        except TimeoutError:
            return f"{loaded.safe_url} timed out after {_age(self._delivery.timeout)}"
        except Exception as exc:  # apprise should not raise; never let one row stop delivery
            return f"{loaded.safe_url} raised {type(exc).__name__}"
        if result:
            return None
        failures = [f"{mask_url(r.url)} returned {r.status.name.lower()}" for r in result if not r]
        return "; ".join(failures) or f"{loaded.safe_url}: nothing sent ({result.status.name})"


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
    """Attach the guard (once per process) to the loggers that print raw URLs."""
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LibraryLogGuard) for f in logger.filters):
            logger.addFilter(_LibraryLogGuard())
