"""Shared test guard: any connection to a non-loopback address fails the test."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

# The SMTP sink and webhook receivers serve tests in every folder, not only tests/daemon.
from tests.peers.postgres import postgres_server, postgres_url  # noqa: F401
from tests.peers.providers import key_variables
from tests.peers.receivers import (  # noqa: F401
    make_webhook_receiver,
    smtp_sink,
    webhook_receiver,
)
from tests.peers.vantage import vantage_target  # noqa: F401

# aiosmtpd logs every connection at INFO from its own thread, after a test's captured stream
# may already be closed: keep it to warnings.
logging.getLogger("mail.log").setLevel(logging.WARNING)
# Client threads (urllib3 retries in boto3/kubernetes, aiosmtpd) may log after pytest closed
# the stream a test configured logging with; that is not the code under test failing.
logging.raiseExceptions = False

PROVIDER_KEY_VARIABLES = key_variables()
"""Cleared for every test: a developer's real keys must never reach a test (or a fake)."""

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise AssertionError(f"test tried to reach a non-loopback address: {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise AssertionError(f"test tried to reach a non-loopback address: {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def _no_real_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never read or write the developer's real keyring; tests opt into a fake one."""
    import keyring.core

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    for var in (*PROVIDER_KEY_VARIABLES, "CREDENTIALS_DIRECTORY", "WATCHKEEPER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    yield
