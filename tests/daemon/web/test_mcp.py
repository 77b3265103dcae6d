"""The MCP server, tested with the SDK's own client: `watchkeeper mcp` over stdio (a real
child process) and streamable HTTP at /mcp on the real listener, behind its authentication."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config.load import load_settings
from daemon.service.health import HealthReport, serve_health
from daemon.store import Store
from daemon.web.console import Console
from tests.daemon.web.seed import RCA_COST, ROOT_CAUSE, seed
from tests.daemon.web.test_console import LOOPBACK, OFF_LOOPBACK, TOKEN, write_config

TOOLS = {"status", "incidents", "incident", "costs", "audit", "findings"}


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


async def _exercise(client: Any) -> None:
    listed = await client.list_tools()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert "Free:" in (tool.description or "")  # each says what it costs
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
    shown = _structured(await client.call_tool("incident", {"incident_id": 1}))
    assert shown["incident"]["check"] == "api"
    rca = shown["investigations"][0]
    assert rca["rca"]["root_cause"] == ROOT_CAUSE
    assert rca["cost_usd"] == float(RCA_COST)
    costs = _structured(await client.call_tool("costs", {"since": "7d"}))
    assert costs["total_usd"] == float(RCA_COST) and costs["unknown_cost_calls"] == 1
    forecast = costs["forecast"]
    assert forecast["so_far_usd"] <= costs["total_usd"] <= forecast["projected_usd"]
    assert forecast["method"].startswith("linear")
    status = _structured(await client.call_tool("status", {}))
    assert [i["id"] for i in status["open_incidents"]] == [1]
    audit = _structured(await client.call_tool("audit", {}))
    assert {h["host"] for h in audit["hosts"]} >= {"api.anthropic.com"}
    missing = await client.call_tool("incident", {"incident_id": 404})
    assert missing.is_error and "no incident #404" in json.dumps(
        [c.model_dump() for c in missing.content]
    )
    bad = await client.call_tool("costs", {"since": "lately"})
    assert bad.is_error


async def test_stdio_server_answers_the_sdk_client(tmp_path: Path) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    path = write_config(tmp_path, "")
    seed(tmp_path / "state")
    env = {"PYTHONPATH": str(Path(__file__).parents[3]), "NO_COLOR": "1"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "daemon", "mcp", "--config", str(path)],
        env={**env, "PATH": os.environ.get("PATH", "")},
    )
    async with Client(params) as client:
        await _exercise(client)


async def _listener(tmp_path: Path, web: str) -> AsyncIterator[str]:
    path = write_config(tmp_path, web)
    settings = load_settings(path)
    seed(settings.daemon.state_dir)
    store = Store.open(settings.daemon.state_dir)
    console = Console(
        settings=lambda: settings,
        open_store=lambda: store,
        config_path=path,
        last_cycle=lambda: None,
        resolve=lambda ref: TOKEN,
    )
    listener = await serve_health("127.0.0.1", 0, lambda: HealthReport(True), console=console)
    try:
        yield f"http://127.0.0.1:{listener.port}"
    finally:
        listener.close()
        await listener.wait_closed()
        store.close()


async def test_streamable_http_on_the_listener(tmp_path: Path) -> None:
    from mcp import Client

    async for base in _listener(tmp_path, LOOPBACK):
        async with Client(base + "/mcp") as client:
            await _exercise(client)


async def test_streamable_http_needs_the_token_off_loopback(tmp_path: Path) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async for base in _listener(tmp_path, OFF_LOOPBACK):
        async with httpx.AsyncClient() as plain:
            refused = await plain.post(
                base + "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
        assert refused.status_code == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        http = httpx2.AsyncClient(headers=headers, timeout=30)
        async with http, Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == TOOLS


@pytest.mark.parametrize("host", ["evil.example", "192.0.2.7:8787"])
async def test_loopback_console_refuses_other_host_names(tmp_path: Path, host: str) -> None:
    """DNS rebinding: a page on evil.example resolved to 127.0.0.1 must not read the console."""
    async for base in _listener(tmp_path, LOOPBACK):
        async with httpx.AsyncClient() as client:
            for path in ("/api/status", "/mcp", "/"):
                response = await client.get(base + path, headers={"Host": host})
                assert response.status_code == 421, path
            healthz = await client.get(base + "/healthz", headers={"Host": host})
            assert healthz.status_code == 200


RCA = {
    "root_cause": "db-main ran out of connections",
    "confidence": "high",
    "evidence": ["pool wait 30 s"],
    "blast_radius": ["checkout"],
    "next_steps": ["kill the batch job"],
}


async def test_investigate_is_offered_only_when_allowed_and_spends_within_the_budget(
    tmp_path: Path,
) -> None:
    """With [web] mcp_investigate the agent can ask for an RCA now: the model is called (a
    loopback Ollama here), the analysis is stored on the incident and the call is in the
    ledger; the tool's description says it costs money."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    from tests.peers.providers.ollama import FakeOllama

    with FakeOllama(reply=json.dumps(RCA), prompt_eval_count=900, eval_count=120) as ollama:
        web = f"""
[providers.ollama]
base_url = "{ollama.url}"
[routing]
triage = ["ollama/gemma4:27b"]
rca = ["ollama/gemma4:27b"]
[web]
mcp_investigate = true
"""
        path = write_config(tmp_path, web)
        seed(tmp_path / "state")
        env = {"PYTHONPATH": str(Path(__file__).parents[3]), "PATH": os.environ.get("PATH", "")}
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "daemon", "mcp", "--config", str(path)], env=env
        )
        async with Client(params) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert set(tools) == {*TOOLS, "investigate"}
            assert "Costs money" in (tools["investigate"].description or "")
            assert tools["investigate"].annotations.read_only_hint is False
            done = _structured(await client.call_tool("investigate", {"incident_id": 1}))
            assert done["rca"]["root_cause"] == RCA["root_cause"]
            assert done["model"] == "ollama/gemma4:27b"
            assert [c["input_tokens"] for c in done["calls"]] == [900]
            shown = _structured(await client.call_tool("incident", {"incident_id": 1}))
            assert shown["investigations"][-1]["rca"]["root_cause"] == RCA["root_cause"]
        assert len(ollama.bodies()) == 1
