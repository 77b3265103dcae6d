"""The apprise channel (every target that is not watchkeeper's own webhook, Slack or Teams),
and the guard that keeps apprise's and urllib3's logs free of raw URLs.

apprise reports only success or failure; the reason (refused, timed out, HTTP 404) is in its
log lines, which carry raw URLs. While a send is in flight the guard reads those lines and
keeps only a fixed phrase ("connection refused", "HTTP 404 Not Found"): no text of a log line
is ever stored, shown or passed on.
"""

from __future__ import annotations

import http
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

import apprise

from daemon.logging import redact
from daemon.notify.channels import Failure, Outgoing, mask_url


@dataclass
class Reasons:
    """What apprise's log lines said went wrong during one send, as fixed phrases only."""

    status: int | None = None
    """The HTTP status the service answered."""
    word: str | None = None
    """The answer's body when it was one snake_case word, like Slack's `no_service`."""
    transport: str | None = None
    """`connection refused`, `timed out`, …"""

    def read(self, text: str) -> None:
        """Note what one log line says, if it is one of apprise's failure lines."""
        if not text.startswith(_FAILURE_LINES):
            return
        status = _HTTP_STATUS.search(text)
        if status is not None and self.status is None:
            self.status = int(status.group(1))
        word = _BODY_WORD.search(text)
        if word is not None and self.word is None:
            self.word = word.group(1)
        if self.transport is None:
            bare = _URLISH.sub("", text)  # a path like /timeout-hook must not read as a cause
            self.transport = next((p for rx, p in _TRANSPORT if rx.search(bare)), None)

    def summary(self) -> str | None:
        """`HTTP 404 no_service`, `HTTP 500 Internal Server Error`, `connection refused`."""
        if self.status is None:
            return self.transport
        try:
            phrase = self.word or http.HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "(no reason given)"
        return f"HTTP {self.status} {phrase}"


_REASONS: ContextVar[Reasons | None] = ContextVar("apprise_reasons", default=None)
"""What the send in this context has heard so far (apprise copies the caller's context into
its worker threads, so their log lines land here too)."""

# apprise's lines about a failed attempt; any other line (the URL it posts to, its payload)
# is never read.
_FAILURE_LINES = (
    "Socket Exception",
    "Response Details",
    "Failed to send",
    "A Connection error",
    "Notification Exception",
)
_URLISH = re.compile(r"(?:url: |[a-z][a-z0-9+.-]*://)\S+|host='[^']*'", re.I)
_TRANSPORT = (
    (re.compile(r"Connection refused|ECONNREFUSED", re.I), "connection refused"),
    (re.compile(r"timed out|ConnectTimeout|ReadTimeout", re.I), "timed out"),
    (
        re.compile(
            r"Name or service not known|nodename nor servname|Temporary failure in name "
            r"resolution|getaddrinfo failed|NameResolutionError|No address associated",
            re.I,
        ),
        "host name not resolved",
    ),
    (re.compile(r"CERTIFICATE_VERIFY_FAILED", re.I), "TLS certificate not trusted"),
    (re.compile(r"SSLError|SSL:", re.I), "TLS handshake failed"),
    (re.compile(r"Connection reset|ECONNRESET", re.I), "connection reset"),
    (re.compile(r"Network is unreachable|No route to host", re.I), "network unreachable"),
    (re.compile(r"Connection aborted|RemoteDisconnected", re.I), "connection closed early"),
)
_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")
_BODY_WORD = re.compile(r"Response Details:\s*b?['\"]([a-z][a-z0-9_]{2,40})['\"]\s*$")


@dataclass(frozen=True)
class AppriseChannel:
    apobj: apprise.Apprise
    safe_url: str

    async def send(self, outgoing: Outgoing, limit: timedelta) -> Failure | None:
        with _reading_reasons() as reasons:
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
        why = reasons.summary()
        failures = [
            f"{mask_url(r.url)} failed: {why}"
            if why
            else f"{mask_url(r.url)} returned {r.status.name.lower()}"
            for r in result
            if not r
        ]
        return Failure(
            "; ".join(failures) or f"{self.safe_url}: nothing sent ({result.status.name})"
        )


_LEVEL_LOCK = threading.Lock()
_active_sends = 0
_saved_level = logging.NOTSET


@contextmanager
def _reading_reasons() -> Iterator[Reasons]:
    """Collect why a send failed while apprise sends. apprise logs the cause (`[Errno 111]
    Connection refused`) at DEBUG, which the daemon's log level normally suppresses before a
    record exists: the apprise logger is opened to DEBUG meanwhile — the guard still drops
    every such record after reading it, so no handler sees more than before."""
    global _active_sends, _saved_level
    reasons = Reasons()
    token = _REASONS.set(reasons)
    logger = logging.getLogger("apprise")
    with _LEVEL_LOCK:
        if _active_sends == 0:
            _saved_level = logger.level
            logger.setLevel(logging.DEBUG)
        _active_sends += 1
    try:
        yield reasons
    finally:
        _REASONS.reset(token)
        with _LEVEL_LOCK:
            _active_sends -= 1
            if _active_sends == 0:
                logger.setLevel(_saved_level)


class _LibraryLogGuard(logging.Filter):
    """apprise logs raw URLs (tokens in paths) below WARNING, and a URL it cannot use verbatim
    at ERROR; urllib3 logs request paths at DEBUG. Drop the former and redact the rest here,
    on the logger, so no handler (journald, a test's caplog) ever sees them. During a send,
    note first what a failure line says (as fixed phrases)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break the caller
            text = str(record.msg)
        reasons = _REASONS.get()
        if reasons is not None:
            reasons.read(text)
        if record.levelno < logging.WARNING:
            return False
        record.msg, record.args = redact(text), None
        return True


def guard_library_logs() -> None:
    """Attach the guards (once per process) to the loggers that print raw URLs."""
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LibraryLogGuard) for f in logger.filters):
            logger.addFilter(_LibraryLogGuard())
