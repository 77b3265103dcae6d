"""Where notifications land in tests: a webhook receiver and an SMTP sink, real protocol peers
on loopback in background threads (so they serve apprise from the event loop or its worker
threads). Their fixtures are registered for every test by tests/conftest.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    """What the receiver answered; 0 while it is held open by `hang_next`."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Records every request; `fail_next(n)` answers the next n with 500, `hang_next(n)`
    holds the next n open until the test ends (or `release()`); `delay_s` makes every answer
    that slow (a receiver under load)."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    _fail: list[int] = field(default_factory=list)
    _hang: int = 0
    delay_s: float = 0.0
    reply: bytes = b""
    """The body of every 2xx answer (Slack's incoming webhooks answer `ok`)."""
    _released: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "hook", scheme: str = "json") -> str:
        """An apprise URL pointing here, e.g. `json://127.0.0.1:PORT/hook`."""
        return f"{scheme}://{self.host}:{self.port}/{path.lstrip('/')}"

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._cond:
            self._fail.extend([status] * count)

    def hang_next(self, count: int = 1) -> None:
        with self._cond:
            self._hang += count

    def release(self) -> None:
        self._released.set()

    @property
    def messages(self) -> list[Any]:
        """JSON bodies of the requests answered 2xx, in arrival order."""
        with self._cond:
            return [r.json() for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least `count` requests arrived (any answer)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def _handle(self, request: ReceivedRequest) -> tuple[int, bool]:
        """Returns (status, hang) for one request and records it."""
        with self._cond:
            hang = self._hang > 0
            self._hang -= 1 if hang else 0
            status = self._fail.pop(0) if self._fail and not hang else 200
            request.status = 0 if hang else status
            self.requests.append(request)
            self._cond.notify_all()
        return status, hang


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = ReceivedRequest(
                self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            status, hang = receiver._handle(request)
            if hang:
                receiver._released.wait(30)
                return
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            body = receiver.reply if 200 <= status < 300 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def make_webhook_receiver() -> Iterator[Callable[[], WebhookReceiver]]:
    """Factory for tests that need several independent receivers; all stop at teardown."""
    stops: list[Callable[[], None]] = []

    def start() -> WebhookReceiver:
        receiver = WebhookReceiver()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
        server.daemon_threads = True
        receiver.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()

        def stop() -> None:
            receiver.release()
            server.shutdown()
            server.server_close()
            thread.join(5)

        stops.append(stop)
        return receiver

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def webhook_receiver(make_webhook_receiver: Callable[[], WebhookReceiver]) -> WebhookReceiver:
    """A JSON webhook endpoint for apprise `json://127.0.0.1:PORT/path` URLs."""
    return make_webhook_receiver()


@dataclass
class SmtpSink:
    """Captures every message delivered over plain SMTP (no TLS, no auth)."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)

    def url(self, sender: str = "wk@example.com", to: str = "oncall@example.com") -> str:
        """An apprise mailto URL for this sink."""
        return f"mailto://{self.host}:{self.port}?from={sender}&to={to}&mode=insecure"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.messages)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(host="127.0.0.1", port=_free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()
