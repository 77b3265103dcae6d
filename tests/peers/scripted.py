"""A scripted loopback HTTP server for provider fakes: records requests, plays responses.

Each fake (fake_ollama.py, fake_anthropic.py, …) supplies a handler that speaks that
provider's real JSON; tests can also queue one-off responses (errors, HTML, hangs).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.peers.loopback import serve_in_thread


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    truncate: bool = False
    """Send a Content-Length larger than the body, then close (a cut-off response)."""

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/html; charset=utf-8"
        return self.body, "application/json"


Handler = Callable[[Recorded], Scripted]


class FakeServer:
    """Serves `handler(request)` unless a queued response is waiting."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []
        self.queued: list[Scripted] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._stop: Callable[[], None] = lambda: None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, *responses: Scripted) -> None:
        with self._lock:
            self.queued.extend(responses)

    def _respond(self, request: Recorded) -> Scripted:
        with self._lock:
            self.requests.append(request)
            if self.queued:
                return self.queued.pop(0)
        return self.handler(request)

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                scripted = fake._respond(recorded)
                if scripted.delay_s:
                    time.sleep(scripted.delay_s)
                payload, content_type = scripted.encoded()
                self.send_response(scripted.status)
                headers = {"Content-Type": content_type, **scripted.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                length_sent = len(payload) + (100 if scripted.truncate else 0)
                self.send_header("Content-Length", str(length_sent))
                if scripted.truncate:
                    self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if scripted.truncate:
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._stop = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stop()
            self._server = None


@contextmanager
def serving(handler: Handler) -> Iterator[FakeServer]:
    server = FakeServer(handler).start()
    try:
        yield server
    finally:
        server.stop()
