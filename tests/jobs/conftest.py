"""Fixtures for the check types: an HTTP client context, asyncio servers and an `HttpPeer`
(tests/peers/targets.py), a test CA, closed ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme

from jobs.base import CheckContext, CheckSpec
from tests.peers.loopback import free_port
from tests.peers.targets import HttpPeer, StartServer, asyncio_servers

__all__ = ["StartServer", "assert_options_described"]
"""StartServer stays importable from here for the modules that annotate with it."""


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    async with httpx.AsyncClient() as client:
        yield CheckContext(http=client)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start an asyncio server on 127.0.0.1 (optionally TLS); returns its port. Stopped after."""
    async with asyncio_servers() as start:
        yield start


@pytest.fixture
async def http_peer(start_server: StartServer) -> HttpPeer:
    peer = HttpPeer()
    peer.port = await start_server(peer.handle)
    return peer


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def closed_port() -> int:
    """A loopback port that was just bound and released: connecting to it is refused."""
    return free_port()


def assert_options_described(cls: type[CheckSpec]) -> None:
    """Every option a check type adds has a description (it feeds editor completion)."""
    properties = cls.model_json_schema()["properties"]
    own = set(cls.model_fields) - set(CheckSpec.model_fields)
    assert own
    undescribed = sorted(name for name in own if not properties[name].get("description"))
    assert undescribed == []
