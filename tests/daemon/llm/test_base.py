"""The shared Provider behaviour — retries, deadline, error mapping, key scrubbing — driven
through the OpenAI provider against its loopback fake."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from daemon.llm.base import EXCERPT_CHARS
from daemon.llm.openai import OpenAIProvider
from daemon.llm.types import (
    ModelRequest,
    ProviderAuthError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
)
from tests.daemon.llm.conftest import Sleeps, build
from tests.peers.loopback import free_port
from tests.peers.providers.openai import (
    DEFAULT_KEY,
    FakeOpenAI,
    openai_error,
    rate_limited,
    server_error,
)
from tests.peers.scripted import Scripted

CANARY = "sk-canary-5a1f0c"
ASK = ModelRequest.ask("Is the cache healthy?")
NGINX_502 = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx/1.27.4</center>
</body>
</html>
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def provider(
    client: httpx.AsyncClient,
    base_url: str,
    sleeps: Sleeps,
    *,
    key: str = DEFAULT_KEY,
    timeout_s: float = 60.0,
    max_retries: int = 3,
) -> OpenAIProvider:
    return build(
        OpenAIProvider,
        base_url,
        client,
        key,
        sleep=sleeps,
        timeout_s=timeout_s,
        max_retries=max_retries,
    )


# -- retries ----------------------------------------------------------------------------------


async def test_429_waits_for_retry_after_then_succeeds(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(retry_after="2"))
    response = await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert response.text == "OK"
    assert response.attempts == 2
    assert response.request_bytes == 2 * len(fake.requests[0].body)
    assert sleeps.delays == [2.0]
    assert len(fake.requests) == 2


async def test_429_honours_retry_after_ms(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(retry_after=None, retry_after_ms="1500"))
    await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert sleeps.delays == [1.5]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_back_off_exponentially(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps, status: int
) -> None:
    fake.server.queue(server_error(status), server_error(status), server_error(status))
    response = await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert response.attempts == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]


async def test_retries_end_after_max_retries(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(*[server_error(503)] * 5)
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url, sleeps, max_retries=2).complete("gpt-4.1", ASK)
    error = caught.value
    assert (error.status, error.attempts, error.outcome) == (503, 3, "http_error")
    assert "The engine is currently overloaded" in error.message
    assert sleeps.delays == [0.5, 1.0]


async def test_retries_stop_when_the_next_delay_would_pass_the_deadline(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(retry_after="30"))
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url, sleeps, timeout_s=5).complete("gpt-4.1", ASK)
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert caught.value.outcome == "rate_limited"
    assert sleeps.delays == []
    assert len(fake.requests) == 1


# -- errors that are final --------------------------------------------------------------------


async def test_rejected_key_is_an_auth_error_and_not_retried(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    with pytest.raises(ProviderAuthError) as caught:
        await provider(client, fake.url, sleeps, key="sk-wrong-key-0000000").complete(
            "gpt-4.1", ASK
        )
    error = caught.value
    assert str(error).startswith("openai: key for openai rejected by 127.0.0.1 (HTTP 401)")
    assert "Incorrect API key provided" in error.message
    assert "watchkeeper keys test openai" in error.message
    assert (error.status, error.outcome, error.attempts) == (401, "auth", 1)
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "answer",
    [
        openai_error(
            400, "Invalid 'messages[1].content': string too long.", code="string_above_max_length"
        ),
        openai_error(404, "The model `gpt-9` does not exist or you do not have access to it."),
    ],
)
async def test_client_errors_are_not_retried(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps, answer: Scripted
) -> None:
    fake.server.queue(answer)
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert caught.value.status == answer.status
    assert not isinstance(caught.value, ProviderAuthError)
    assert len(fake.requests) == 1 and sleeps.delays == []


async def test_html_error_page_becomes_a_one_line_excerpt(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(502, NGINX_502))
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url, sleeps, max_retries=0).complete("gpt-4.1", ASK)
    excerpt = caught.value.body_excerpt
    assert "502 Bad Gateway" in excerpt
    assert "\n" not in excerpt and "\n" not in caught.value.message


async def test_long_error_page_is_cut(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(503, "<html>" + "<p>Service Unavailable</p>" * 500 + "</html>"))
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url, sleeps, max_retries=0).complete("gpt-4.1", ASK)
    assert len(caught.value.body_excerpt) <= EXCERPT_CHARS + 1
    assert caught.value.body_excerpt.endswith("…")


# -- malformed answers ------------------------------------------------------------------------


async def test_connection_cut_mid_body_is_handled(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(
        Scripted(200, {"id": "chatcmpl-1", "object": "chat.completion"}, truncate=True)
    )
    with pytest.raises(ProviderError) as caught:
        await provider(client, fake.url, sleeps, max_retries=0).complete("gpt-4.1", ASK)
    assert isinstance(caught.value, ProviderUnavailable | ProviderResponseError)


async def test_connection_cut_mid_body_is_retried(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(200, {"id": "chatcmpl-1"}, truncate=True))
    response = await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert (response.text, response.attempts) == ("OK", 2)


async def test_cut_off_json_is_a_response_error(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(200, b'{"id": "chatcmpl-1", "object": "chat.comp'))
    with pytest.raises(ProviderResponseError, match="non-JSON") as caught:
        await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert caught.value.outcome == "bad_response"
    assert len(fake.requests) == 1


async def test_200_of_the_wrong_shape_is_a_response_error(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(
        Scripted(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": "x"})
    )
    with pytest.raises(ProviderResponseError, match="choices: Field required") as caught:
        await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)
    assert caught.value.message.startswith("unexpected response shape from 127.0.0.1")


async def test_empty_choices_is_a_response_error(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    body = {
        "model": "gpt-4.1",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 0},
    }
    fake.server.queue(Scripted(200, body))
    with pytest.raises(ProviderResponseError, match="no choices"):
        await provider(client, fake.url, sleeps).complete("gpt-4.1", ASK)


# -- transport --------------------------------------------------------------------------------


async def test_hang_past_the_deadline_is_a_timeout(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(200, {}, delay_s=1.5))
    with pytest.raises(ProviderTimeout) as caught:
        await provider(client, fake.url, sleeps, timeout_s=0.3).complete("gpt-4.1", ASK)
    assert caught.value.outcome == "timeout"
    assert caught.value.attempts == 1
    assert sleeps.delays == []  # a 0.5 s back-off would pass the 0.3 s deadline


async def test_connection_refused_is_unavailable(client: httpx.AsyncClient, sleeps: Sleeps) -> None:
    port = free_port()
    with pytest.raises(ProviderUnavailable) as caught:
        await provider(client, f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2).complete(
            "gpt-4.1", ASK
        )
    error = caught.value
    assert error.message.startswith("cannot reach 127.0.0.1")
    assert (error.outcome, error.attempts, error.host) == ("unreachable", 3, "127.0.0.1")
    assert error.request_bytes == 0  # nothing left the machine: not "bytes sent" in the audit
    assert sleeps.delays == [0.5, 1.0]


async def test_a_connection_that_breaks_after_the_request_counts_its_bytes(
    fake: FakeOpenAI, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(Scripted(200, {"id": "chatcmpl-1"}, truncate=True))
    fake.server.queue(Scripted(200, {"id": "chatcmpl-1"}, truncate=True))
    with pytest.raises(ProviderError) as caught:
        await provider(client, fake.url, sleeps, max_retries=1).complete("gpt-4.1", ASK)
    assert len(fake.requests) == 2
    assert caught.value.request_bytes == 2 * len(fake.requests[0].body)


# -- the key never leaks ----------------------------------------------------------------------


async def test_key_echoed_in_an_error_body_is_scrubbed(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(key="sk-the-real-one-0000", echo_key=True) as fake:
        with pytest.raises(ProviderAuthError) as caught:
            await provider(client, fake.url, Sleeps(), key=CANARY).complete("gpt-4.1", ASK)
        raw = await client.post(
            fake.url + "/chat/completions",
            json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]},
            headers={"authorization": f"Bearer {CANARY}"},
        )
    assert CANARY in raw.text  # the fake really does echo it
    error = caught.value
    for shown in (str(error), repr(error), error.message, error.body_excerpt, str(error.args)):
        assert CANARY not in shown
    assert "Incorrect API key provided: ***" in error.body_excerpt
