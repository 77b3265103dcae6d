"""SdNotifier against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service.sdnotify import SdNotifier


class Listener:
    def __init__(self, sock: socket.socket, notify_socket: str) -> None:
        self.sock = sock
        self.notify_socket = notify_socket

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def assert_empty(self) -> None:
        self.sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096)


@pytest.fixture
def listener() -> Iterator[Listener]:
    # tmp_path can exceed the 108-byte AF_UNIX path limit; use a short directory.
    with tempfile.TemporaryDirectory(prefix="wk-") as directory:
        path = str(Path(directory) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(2)
        try:
            yield Listener(sock, path)
        finally:
            sock.close()


@pytest.fixture
def notifier(listener: Listener) -> Iterator[SdNotifier]:
    n = SdNotifier({"NOTIFY_SOCKET": listener.notify_socket})
    yield n
    n.close()


def test_ready_sends_ready_1(notifier: SdNotifier, listener: Listener) -> None:
    assert notifier.ready() is True
    assert listener.recv() == b"READY=1"


def test_status_sends_one_line(notifier: SdNotifier, listener: Listener) -> None:
    notifier.status("12 checks, 1 failing\nsecond line")
    assert listener.recv() == b"STATUS=12 checks, 1 failing second line"


def test_watchdog_and_stopping(notifier: SdNotifier, listener: Listener) -> None:
    notifier.watchdog()
    notifier.stopping()
    assert listener.recv() == b"WATCHDOG=1"
    assert listener.recv() == b"STOPPING=1"


def test_reloading_carries_monotonic_usec(notifier: SdNotifier, listener: Listener) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = listener.recv().split(b"\n")
    assert first == b"RELOADING=1"
    key, _, value = second.partition(b"=")
    assert key == b"MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_notify_joins_fields_in_one_datagram(notifier: SdNotifier, listener: Listener) -> None:
    notifier.notify("READY=1", "STATUS=up")
    assert listener.recv() == b"READY=1\nSTATUS=up"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_namespace_socket() -> None:
    name = f"watchkeeper-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        notifier = SdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready() is True
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_no_socket_is_a_silent_no_op() -> None:
    notifier = SdNotifier({})
    assert notifier.enabled is False
    assert notifier.ready() is False
    assert notifier.reloading() is False
    assert notifier.watchdog_interval() is None


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch, listener: Listener) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener.notify_socket)
    notifier = SdNotifier()
    notifier.ready()
    assert listener.recv() == b"READY=1"
    notifier.close()


def test_send_failure_never_raises_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.WARNING, logger="daemon.service.sdnotify"):
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    warnings = [r for r in caplog.records if r.name == "daemon.service.sdnotify"]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()
    notifier.close()


def test_unsupported_address_is_a_warned_no_op(caplog: pytest.LogCaptureFixture) -> None:
    notifier = SdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    with caplog.at_level(logging.WARNING, logger="daemon.service.sdnotify"):
        assert notifier.ready() is False
    assert "unsupported" in caplog.text


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert SdNotifier({"WATCHDOG_USEC": "60000000"}).watchdog_interval() == 30.0


def test_watchdog_interval_for_our_pid() -> None:
    env = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    assert SdNotifier(env).watchdog_interval() == 5.0


def test_watchdog_interval_ignores_foreign_pid() -> None:
    env = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SdNotifier(env).watchdog_interval() is None


@pytest.mark.parametrize("usec", ["", "0", "-5", "soon"])
def test_watchdog_interval_rejects_unusable_values(usec: str) -> None:
    assert SdNotifier({"WATCHDOG_USEC": usec}).watchdog_interval() is None


def test_nothing_is_sent_before_a_call(listener: Listener) -> None:
    SdNotifier({"NOTIFY_SOCKET": listener.notify_socket})
    listener.assert_empty()
