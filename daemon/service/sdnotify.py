"""Tell systemd how the daemon is doing: the sd_notify datagram protocol, spoken directly.

A no-op when `$NOTIFY_SOCKET` is unset (launchd, a terminal); it must never raise into the
daemon, because a lost status message is better than a crashed service.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# systemd drains its notify socket promptly; a full queue should not lose READY=1, but it
# must not stall the event loop forever either.
_SEND_TIMEOUT_S = 1.0


class SdNotifier:
    """Sends `READY=1`, `STATUS=…`, `WATCHDOG=1`, … to the socket systemd gave us."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._socket_path = env.get("NOTIFY_SOCKET") or None
        self._watchdog_usec = env.get("WATCHDOG_USEC")
        self._watchdog_pid = env.get("WATCHDOG_PID")
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when systemd asked for notifications (`$NOTIFY_SOCKET` is set)."""
        return self._socket_path is not None

    def ready(self) -> bool:
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        # A newline would start a new field: STATUS is one line.
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def reloading(self) -> bool:
        """`RELOADING=1` with the monotonic timestamp systemd ≥ 253 requires; send READY after."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def notify(self, *fields: str) -> bool:
        """Send `fields` as one datagram; True when it was sent, False when off or failed."""
        if self._socket_path is None or not fields:
            return False
        address = _address(self._socket_path)
        if address is None:
            self._warn_once("unsupported NOTIFY_SOCKET address %r; notifications are off")
            return False
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.settimeout(_SEND_TIMEOUT_S)
                self._sock = sock
            self._sock.sendto("\n".join(fields).encode("utf-8"), address)
        except OSError as exc:
            self._warn_once("sd_notify to %r failed (%s); further failures are not logged", exc)
            return False
        return True

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half of `$WATCHDOG_USEC`), or None when not asked."""
        if not self._watchdog_usec:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None  # the watchdog is meant for another process (e.g. our parent)
            except ValueError:
                return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 2 / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _warn_once(self, message: str, *args: object) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message, self._socket_path, *args)


def _address(path: str) -> str | None:
    """`@name` → abstract namespace (`\\0name`); `/path` → filesystem; anything else unsupported."""
    if path.startswith("@"):
        if not sys.platform.startswith("linux"):
            return None
        return "\0" + path[1:]
    if path.startswith("/"):
        return path
    return None  # e.g. systemd ≥ 254 `vsock:CID:PORT`, which a host service never gets
