"""How a message leaves: the channel protocol, the apprise channel, and masked URLs.

A channel never raises into delivery and never returns, logs or stores a raw URL or a secret:
errors are built from masked URLs (`scheme://host:port/...`) and status words only. The
signed JSON webhook is the other channel (`daemon.notify.webhook`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import apprise

from daemon.logging import redact
from daemon.models import NotifyType


def mask_url(privacy_url: str) -> str:
    """`json://127.0.0.1:8080/...` from apprise's privacy URL (or a plain webhook URL): apprise
    masks passwords but keeps paths and query values, where webhook tokens often live."""
    parts = urlsplit(privacy_url)
    netloc = parts.netloc.rpartition("@")[2]
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{rest}"


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


class Channel(Protocol):
    """A target ready to send: apprise, or a webhook. `send` returns None on success, else an
    error made of `safe_url` and status words only; TimeoutError and any other exception are
    turned into such an error by the Notifier."""

    @property
    def safe_url(self) -> str: ...

    async def send(self, outgoing: Outgoing, limit: timedelta) -> str | None: ...


@dataclass(frozen=True)
class AppriseChannel:
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
