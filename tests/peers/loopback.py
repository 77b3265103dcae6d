"""What every threaded loopback peer shares: a port nothing listens on, and a server thread
that stops promptly. Nothing here binds anything but 127.0.0.1."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable

POLL_S = 0.01
"""How often a peer's `serve_forever` looks for a shutdown request: a teardown waits at most
this long per peer (socketserver's 0.5 s default cost every test with peers a quarter second)."""


def free_port() -> int:
    """A loopback TCP port nothing listens on (now): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


_REFUSING: list[socket.socket] = []


def refused_port() -> int:
    """A loopback TCP port that refuses connections for as long as the tests run: bound by this
    process and never listened on, so no other test (or xdist worker) can take it. Use it for
    a target that must stay down; `free_port()` is only free until someone binds it."""
    if not _REFUSING:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        _REFUSING.append(sock)
    port: int = _REFUSING[0].getsockname()[1]
    return port


def serve_in_thread(server: socketserver.BaseServer) -> Callable[[], None]:
    """Serve `server` from a daemon thread; returns the function that stops and closes it."""
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,), daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop
