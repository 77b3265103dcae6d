"""`watchkeeper mcp`: the MCP server over stdio, for agents that start it themselves."""

from __future__ import annotations

from pathlib import Path

import click

from daemon.cli._common import config_option, handle_errors, load


@click.command()
@config_option
@handle_errors
def mcp(config_path: Path | None) -> None:
    """Serve watchkeeper's read-only MCP tools on stdin/stdout (status, incidents with their
    investigations, costs, audit, findings). None calls a model; nothing is changed.

    Add it to a client as the command `watchkeeper mcp --config PATH`. A running daemon with
    [web] enabled serves the same tools over HTTP at /mcp."""
    import asyncio

    from daemon.store import Store
    from daemon.web.mcp import serve_stdio

    _, settings = load(config_path)
    store = Store.open(settings.daemon.state_dir)
    try:
        asyncio.run(serve_stdio(lambda: store, lambda: settings))
    finally:
        store.close()
