"""How a message leaves: the channel protocol, what one attempt carries, how it fails, and
masked URLs.

A channel never raises into delivery and never returns, logs or stores a raw URL or a secret:
errors are built from masked URLs (`scheme://host:port/...`) and status words only. The
channels are apprise (`daemon.notify.via_apprise`), the signed JSON webhook
(`daemon.notify.webhook`), Slack (`daemon.notify.slack`) and Teams (`daemon.notify.teams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

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
    reference: str = ""
    """`ref: incident #42 · event 17` (or `ref: message 9`): what receivers de-duplicate on;
    the Markdown body already ends with it, native cards show it in their footer."""


@dataclass(frozen=True)
class Failure:
    """Why an attempt did not deliver, safe to store and show (masked URL, status words).

    `permanent`: sending the same message again cannot succeed (the target refused its
    content, or no longer exists): the row is failed at once instead of retried for
    `delivery.max_age`. `retry_after`: the target asked to be left alone this long (HTTP 429
    Retry-After); the next attempt waits at least that.
    """

    reason: str
    permanent: bool = False
    retry_after: timedelta | None = None


class Channel(Protocol):
    """A target ready to send. `send` returns None on success, else a Failure; TimeoutError
    and any other exception are turned into one by the Notifier."""

    @property
    def safe_url(self) -> str: ...

    async def send(self, outgoing: Outgoing, limit: timedelta) -> Failure | None: ...
