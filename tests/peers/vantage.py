"""A loopback HTTP target that sees where its callers look from: watchkeeper's HTTP checks name
their node and location in the User-Agent (`watchkeeper/… (node a; location eu-1)`), as real
uptime services do. It records every request (path, node, location, when) and answers 503 to
callers from the locations listed in `failing`, so per-location outages can be played on one
machine."""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.peers.loopback import serve_in_thread

_AGENT = re.compile(r"\(node (?P<node>[^;)]+)(?:; location (?P<location>[^)]+))?\)")


@dataclass(frozen=True)
class Hit:
    path: str
    node: str | None
    location: str | None
    at: float
    """time.monotonic() when it arrived."""


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    """Many checks connect at the same instant; socketserver's backlog of 5 would drop SYNs
    and add a 1 s retransmit to most requests."""

    def handle_error(self, request: object, client_address: object) -> None:
        """A node killed with -9 mid-request leaves a broken pipe: expected here, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class VantageTarget:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = _AGENT.search(self.headers.get("User-Agent", ""))
                node = found["node"] if found else None
                location = found["location"] if found else None
                with target._lock:
                    target.hits.append(Hit(self.path, node, location, time.monotonic()))
                    down = location in target.failing
                body = b"down from here\n" if down else b"ok\n"
                self.send_response(503 if down else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._stop = serve_in_thread(self.server)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_from(self, *locations: str) -> None:
        with self._lock:
            self.failing = set(locations)

    def since(self, moment: float) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.at >= moment]

    def runners(self, moment: float) -> dict[str, set[str]]:
        """path → the nodes that requested it since `moment`."""
        found: dict[str, set[str]] = {}
        for hit in self.since(moment):
            found.setdefault(hit.path, set()).add(hit.node or "?")
        return found

    def close(self) -> None:
        self._stop()


@pytest.fixture
def vantage_target() -> Iterator[VantageTarget]:
    target = VantageTarget()
    try:
        yield target
    finally:
        target.close()
