"""What the provider tests share: one HTTP client for the loopback fakes, a sleep that records
instead of waiting, building a provider as the runtime does, and the key-canary check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import pytest

from daemon.llm.base import Provider, ProviderOptions
from daemon.llm.types import ProviderHTTPError

P = TypeVar("P", bound=Provider)


class Sleeps:
    """Records the delays a provider asks for instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The provider's HTTP client; proxy variables ignored (every peer is on loopback)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def build(
    cls: type[P],
    base_url: str,
    client: httpx.AsyncClient,
    key: str | None,
    *,
    sleep: Sleeps | None = None,
    **options: Any,
) -> P:
    """`cls` speaking to `base_url` with `key`, named after its API as a built-in provider
    is; `options` are further ProviderOptions. Back-offs are recorded, never slept."""
    return cls(
        ProviderOptions(name=cls.info.api, base_url=base_url, **options),
        key,
        client,
        sleep=Sleeps() if sleep is None else sleep,
    )


def assert_key_never_shown(error: ProviderHTTPError, key: str) -> None:
    """A rejected key appears in nothing a user, a log line or the ledger gets from the error:
    its message, its repr, the provider's body excerpt."""
    assert key not in str(error) + repr(error) + error.body_excerpt
