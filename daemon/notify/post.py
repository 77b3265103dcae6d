"""One HTTP POST for the native channels (webhook, Slack, Teams): no redirects followed, a
bounded read of the answer, and every failure said in words — never with the URL.

httpx logs each request's full URL at INFO (tokens live in webhook paths and queries): while a
POST is in flight here its logger sees the masked URL instead.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

import httpx

from daemon.llm.base import parse_retry_after
from daemon.notify.channels import Failure

# (the URL as httpx prints it, the raw URL, the masked URL) while a POST is in flight here
_SENDING: ContextVar[tuple[str, str, str] | None] = ContextVar("notify_sending", default=None)

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ETIMEDOUT: "timed out",
}


@dataclass(frozen=True)
class Answer:
    """What the receiver said: its status, headers and the first bytes of its body."""

    status: int
    headers: httpx.Headers
    body: bytes

    def retry_after(self) -> timedelta | None:
        """The Retry-After the receiver asked for (seconds or an HTTP date), if any."""
        seconds = parse_retry_after(self.headers)
        return None if seconds is None else timedelta(seconds=min(seconds, 3600.0))

    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()


async def post(
    url: str,
    safe_url: str,
    content: bytes,
    headers: Mapping[str, str],
    *,
    limit: timedelta,
    ssl_context: ssl.SSLContext | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    read: int = 0,
) -> Answer | Failure:
    """POST `content` to `url` and return the answer (its first `read` bytes of body), or a
    Failure when no answer came. Raises TimeoutError when the attempt timed out."""
    client = httpx.AsyncClient(
        follow_redirects=False,
        timeout=limit.total_seconds(),
        verify=ssl_context or True,
        transport=transport,
    )
    token = _SENDING.set((str(httpx.URL(url)), url, safe_url))
    try:
        async with (
            client,
            # streamed: the receiver's body is read only as far as `read`, however large
            client.stream("POST", url, content=content, headers=dict(headers)) as response,
        ):
            body = bytearray()
            if read > 0:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= read:
                        break
            return Answer(response.status_code, response.headers, bytes(body[:read]))
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as exc:  # str(exc) may quote the URL: only words are kept
        return Failure(f"{safe_url} could not be reached: {transport_reason(exc)}")
    finally:
        _SENDING.reset(token)


def transport_reason(exc: BaseException) -> str:
    """`connection refused`, `host name not resolved`, `TLS certificate not trusted`… from
    the chain of causes of an httpx error; its type name when nothing more is known."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return "TLS certificate not trusted"
        if isinstance(seen, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(seen, socket.gaierror):
            return "host name not resolved"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed without an answer"
    return type(exc).__name__


def redirect_reason(safe_url: str, status: int) -> str:
    return (
        f"{safe_url} answered HTTP {status} (a redirect), which watchkeeper does not follow: "
        "it could carry the payload to another host; set the target's url to the final "
        "address"
    )


class _HttpxUrlMask(logging.Filter):
    """httpx logs every request's full URL (tokens in paths) at INFO; while a POST is in
    flight here, replace that URL with the masked one, on the logger, before any handler (a
    journald stream, a test's caplog) sees the record. Other httpx requests are untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        sending = _SENDING.get()
        if sending is None:
            return True
        printed, raw, safe = sending
        try:
            text = record.getMessage()
        except Exception:  # a malformed record must not break the caller
            text = str(record.msg)
        record.msg, record.args = text.replace(printed, safe).replace(raw, safe), None
        return True


def guard_httpx_logs() -> None:
    """Attach the mask (once per process) to the logger httpx writes request lines to."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HttpxUrlMask) for f in logger.filters):
        logger.addFilter(_HttpxUrlMask())
