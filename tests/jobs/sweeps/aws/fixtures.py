"""Fixtures for the AWS sweep rule tests, on top of the moto server of `tests.peers.aws_fixtures`.

Test modules load both: `pytest_plugins = ["tests.peers.aws_fixtures",
"tests.jobs.sweeps.aws.fixtures"]`. Plugins are session-wide: nothing here is autouse.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from jobs.base import CheckContext
from jobs.sweeps.base import AwsScope, SweepContext
from tests.peers.aws import ACCOUNT, REGION, Aws


@pytest.fixture
async def aws_sweep(aws: Aws, account_hosts: None) -> AsyncIterator[SweepContext]:
    """A sweep over moto's `eu-west-1`, now (`judge` looks at it later)."""
    async with httpx.AsyncClient() as client:
        scope = AwsScope(regions=(REGION,))
        yield SweepContext(check=CheckContext(http=client), now=datetime.now(UTC), aws=scope)


@pytest.fixture
def account_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """s3control puts the account id in front of the endpoint's host
    (`123456789012.127.0.0.1`): resolve those names to the moto server on loopback."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.startswith(f"{ACCOUNT}."):
            host = host.removeprefix(f"{ACCOUNT}.")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
