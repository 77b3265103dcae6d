"""The MCP server for agents (coding assistants, IDEs, chat clients), on the official `mcp`
SDK: `watchkeeper mcp` over stdio, and the same tools over streamable HTTP at `/mcp` on the
listener, behind the console's authentication.

Read-only tools over the JSON API's data — the same builders as `/api/…` and the CLI's
`--json`. None of them calls a model, so none costs anything; each description says so.
`investigate` — which does call a model, on the `rca` route and within the budget — is offered
only with `[web] mcp_investigate = true`, and its description says what it costs.

The SDK is heavy to import (seconds, tens of MB), so the listener builds the server on the
first `/mcp` request, not at start: a daemon whose MCP endpoint is never used never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from daemon import __version__
from daemon.store.database import store_io
from daemon.web import data

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

    from daemon.config.settings import Settings
    from daemon.engine.investigator import Outcome
    from daemon.store import Store

Investigate = Callable[[int], Awaitable["Outcome | None"]]
"""Runs a root-cause analysis of incident N now (None: no such incident)."""
FREE = "Free: reads watchkeeper's local state; no model is called, nothing is changed."
INSTRUCTIONS = (
    "watchkeeper watches services with scheduled checks, opens incidents and analyses them "
    "with local and cloud models. These tools read its state: what is failing now, incidents "
    "with their root-cause analyses, what AI calls cost and where prompts went, and the "
    "findings of the nightly AWS/Kubernetes sweeps. All are read-only and free."
)


COSTS = (
    "Costs money: asks the `rca` route's model (by default a cloud model, with your key) for "
    "a root-cause analysis, within the configured AI budget — a call the budget cannot cover "
    "is skipped, not made. The cost is recorded in the ledger and returned in `calls`. The "
    "analysis is stored on the incident; nobody is notified."
)


def outcome_json(incident_id: int, outcome: Outcome) -> dict[str, Any]:
    """The `watchkeeper investigate --json` document."""
    from daemon.ai.reports import row_json

    record = outcome.investigation
    return {
        "incident_id": incident_id,
        "model": record.model,
        "rca": record.rca,
        "skipped": record.skipped,
        "dropped": record.dropped,
        "calls": [row_json(r) for r in outcome.result.calls] if outcome.result else [],
    }


def build_server(
    store: Callable[[], Store],
    settings: Callable[[], Settings],
    investigate_now: Investigate | None = None,
) -> Any:
    """An `MCPServer` with watchkeeper's read-only tools (and `investigate`, when allowed)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError as Unusable
    from mcp_types import ToolAnnotations

    server = MCPServer(name="watchkeeper", version=__version__, instructions=INSTRUCTIONS)
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)

    def tool(description: str) -> Callable[[Any], Any]:
        return server.tool(description=f"{description} {FREE}", annotations=read_only)

    @tool("The daemon's current status: every check's latest result, open incidents, outbox.")
    async def status() -> dict[str, Any]:
        return await store_io(data.status_json, store(), settings())

    @tool("Incidents, newest first: open ones, or with include_resolved also resolved ones.")
    async def incidents(include_resolved: bool = False) -> dict[str, Any]:
        found = await store_io(data.incidents_json, store(), include_resolved)
        return {"incidents": found}

    @tool(
        "One incident in full: its events, and every stored investigation (root cause, "
        "confidence, evidence, next steps, model, tokens and cost)."
    )
    async def incident(incident_id: int) -> dict[str, Any]:
        from daemon.report.status import load_incident

        found = await store_io(load_incident, store(), incident_id)
        if found is None:
            raise Unusable(f"no incident #{incident_id}")
        return found

    @tool(
        "What AI calls cost since a duration ago (e.g. 24h, 7d, 30d): every call, totals, by "
        "model; unknown prices are null, never 0. With `forecast`: this month's cloud spend so "
        "far, where it ends at the month's pace, and the monthly budget."
    )
    async def costs(since: str = "7d") -> dict[str, Any]:
        found = await store_io(data.costs_json, store(), since)
        if found is None:
            raise Unusable(f"since: {since!r} is not a duration such as 24h, 7d or 30d")
        found["forecast"] = await store_io(data.month_pace_json, store(), settings())
        return found

    @tool("Every host that received model prompts since a duration ago: calls, bytes, keys.")
    async def audit(since: str = "30d") -> dict[str, Any]:
        found = await store_io(data.audit_json, store(), since)
        if found is None:
            raise Unusable(f"since: {since!r} is not a duration such as 24h, 7d or 30d")
        return found

    @tool(
        "The latest findings of every sweep (security and cost) with severity, new/resolved "
        "since the run before, and estimated monthly savings."
    )
    async def findings() -> dict[str, Any]:
        return {"sweeps": await store_io(data.sweeps_json, store())}

    if investigate_now is not None and settings().web.mcp_investigate:
        spends = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True)

        @server.tool(
            description="A root-cause analysis of an incident now, stored on it: root cause, "
            f"confidence, evidence, next steps. {COSTS}",
            annotations=spends,
        )
        async def investigate(incident_id: int) -> dict[str, Any]:
            if not settings().web.mcp_investigate:  # turned off by a reload since
                raise Unusable("investigate is turned off ([web] mcp_investigate)")
            outcome = await investigate_now(incident_id)
            if outcome is None:
                raise Unusable(f"no incident #{incident_id}")
            return outcome_json(incident_id, outcome)

    return server


class LazyMCP:
    """The `/mcp` endpoint: builds the server (importing the SDK off the event loop) on the
    first request and keeps its session manager running until `aclose`."""

    def __init__(
        self,
        store: Callable[[], Store],
        settings: Callable[[], Settings],
        investigate_now: Investigate | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.investigate_now = investigate_now
        self.app: ASGIApp | None = None
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None
        self.stop = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            async with self.lock:
                if self.app is None:
                    self.app = await self._start()
        await self.app(scope, receive, send)

    async def _start(self) -> ASGIApp:
        server = await asyncio.to_thread(
            build_server, self.store, self.settings, self.investigate_now
        )
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
        from mcp.server.transport_security import TransportSecuritySettings

        # Host/Origin checks are the console's job (loopback by default, else a token), so
        # the SDK's own DNS-rebinding guard, which knows only its default host, stays off.
        server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            max_request_body_size=256 * 1024,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = server.session_manager
        ready = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                ready.set()
                await self.stop.wait()

        self.task = asyncio.create_task(run())
        await ready.wait()
        app: ASGIApp = StreamableHTTPASGIApp(manager)
        return app

    async def aclose(self) -> None:
        self.stop.set()
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.task, 5)


async def serve_stdio(
    store: Callable[[], Store],
    settings: Callable[[], Settings],
    investigate_now: Investigate | None = None,
) -> None:
    """`watchkeeper mcp`: the tools over this process's stdin/stdout."""
    await build_server(store, settings, investigate_now).run_stdio_async()
