"""The daemon's HTTP side: one listener (uvicorn, hardened in `listener`) serving a Starlette
app — `/healthz` and heartbeat pings always; the console, `/status`, `/metrics`, `/api/…` and
MCP when `[web] enabled`. Imported only when a listener is configured, so `watchkeeper --help`
and listener-less daemons never load the stack.

Reads the state through `daemon.report` (the same builders the CLI's `--json` uses) and never
changes it: no endpoint here writes, except the heartbeat pings the listener always took.
"""
