"""`watchkeeper mcp`: the MCP server over stdio, for agents that start it themselves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._common import config_option, handle_errors, load, open_store

if TYPE_CHECKING:
    from daemon.engine.investigator import Outcome


@click.command()
@config_option
@handle_errors
def mcp(config_path: Path | None) -> None:
    """Serve watchkeeper's read-only MCP tools on stdin/stdout (status, incidents with their
    investigations, costs, audit, findings). None calls a model; nothing is changed — except
    `investigate` (an RCA now, within the budget), offered only with [web] mcp_investigate.

    Add it to a client as the command `watchkeeper mcp --config PATH`. A running daemon with
    [web] enabled serves the same tools over HTTP at /mcp."""
    import asyncio

    from daemon.cli.investigate import investigate_now
    from daemon.web.mcp import serve_stdio

    _, settings = load(config_path)

    async def investigate(incident_id: int) -> Outcome | None:
        return await investigate_now(settings, incident_id, None, False)

    store = open_store(settings)
    try:
        asyncio.run(serve_stdio(lambda: store, lambda: settings, investigate))
    finally:
        store.close()
