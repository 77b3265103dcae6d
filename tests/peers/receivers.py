"""Where notifications land in tests: a webhook receiver and an SMTP sink, real protocol peers
on loopback in background threads (so they serve apprise from the event loop or its worker
threads). Their fixtures are registered for every test by tests/conftest.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from apprise.plugins.email.base import NotifyEmail

from tests.peers.loopback import free_port, serve_in_thread


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    """What the receiver answered; 0 while it is held open (`hang_next`), or was never answered."""
    at: float = 0.0
    """When the receiver decided its answer (`time.monotonic()`), before writing it."""
    answered: bool = False
    """The whole answer was written: the sender had it (even if it died right after)."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Records every request; `fail_next(n)` answers the next n with 500, `hang_next(n)`
    holds the next n open until the test ends (or `release()`, or `hold_s` passed), then
    closes them unanswered; `delay_s` makes every answer that slow (a receiver under load),
    `reply` is the body of every 2xx answer. Subclasses may decide other answers (`answer`)
    and act once an answer was written (`on_answered`)."""

    host: str = "127.0.0.1"
    port: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    hold_s: float = 30.0
    """How long a held request stays open at most."""
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

    def forget_scripted(self) -> None:
        """Drop what `fail_next` and `hang_next` asked for and no request has used yet."""
        with self._cond:
            self._fail.clear()
            self._hang = 0

    def release(self) -> None:
        self._released.set()

    @property
    def lock(self) -> threading.Condition:
        """The lock every change to the receiver's state is made under."""
        return self._cond

    @property
    def messages(self) -> list[Any]:
        """JSON bodies of the requests answered 2xx, in arrival order."""
        with self._cond:
            return [r.json() for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least `count` requests arrived (any answer)."""
        self.wait_until(lambda requests: len(requests) >= count, timeout)
        with self._cond:
            return list(self.requests)

    def wait_until(
        self, predicate: Callable[[list[ReceivedRequest]], bool], timeout: float = 5.0
    ) -> bool:
        """Block until `predicate(requests so far)` holds; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.requests), timeout)

    def answer(self, request: ReceivedRequest) -> int:
        """The status for a request `fail_next`/`hang_next` did not script; 0 holds it open.
        Called with the receiver's lock held."""
        return 200

    def on_answered(self, request: ReceivedRequest) -> None:
        """Called (from the request's thread) once the whole answer to `request` was written."""

    def _handle(self, request: ReceivedRequest) -> int:
        """Decides and records the status of one request (0: hold it open)."""
        with self._cond:
            if self._hang > 0:
                self._hang -= 1
                status = 0
            elif self._fail:
                status = self._fail.pop(0)
            else:
                status = self.answer(request)
            request.status, request.at = status, time.monotonic()
            self.requests.append(request)
            self._cond.notify_all()
        return status

    def _answered(self, request: ReceivedRequest) -> None:
        with self._cond:
            request.answered = True
            self._cond.notify_all()
        self.on_answered(request)


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: there is nothing to answer
                self.close_connection = True
                return
            request = ReceivedRequest(self.command, self.path, dict(self.headers.items()), body)
            status = receiver._handle(request)
            if status == 0:
                receiver._released.wait(receiver.hold_s)
                self.close_connection = True
                return  # closed unanswered
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            answer = receiver.reply if 200 <= status < 300 else b""
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.wfile.flush()
            except OSError:
                return  # the sender is gone: it never had the answer
            receiver._answered(request)

        do_POST = do_PUT = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(receiver: WebhookReceiver | None = None) -> Iterator[WebhookReceiver]:
    """Serve `receiver` (a new WebhookReceiver by default) on a free loopback port."""
    receiver = receiver if receiver is not None else WebhookReceiver()
    server = ThreadingHTTPServer((receiver.host, 0), _handler_for(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    stop = serve_in_thread(server)
    try:
        yield receiver
    finally:
        receiver.release()
        stop()


@pytest.fixture
def make_webhook_receiver() -> Iterator[Callable[[], WebhookReceiver]]:
    """Factory for tests that need several independent receivers; all stop at teardown."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(receiving())


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


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    # apprise spaces two sends of one email target 5.5 s apart, to be polite to real mail
    # servers; a loopback sink needs no such courtesy (it cost every two-message test 5.5 s).
    monkeypatch.setattr(NotifyEmail, "request_rate_per_sec", 0)
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    yield sink
    controller.stop()
