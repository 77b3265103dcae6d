"""The web console: pages, `/api/…`, `/metrics` and `/status`, served read-only from the
daemon's own store.

Every page is rendered on the server by Jinja2 with autoescaping, so it works without
JavaScript; one small same-origin script (static/live.js) refreshes the overview in place.
Evidence, labels and model text are untrusted: they are escaped, their control and bidi
characters shown (`printable`), and the Content-Security-Policy forbids inline scripts, so a
`<script>` in evidence stays text. The JSON API returns exactly what the CLI's `--json` does.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import __version__
from daemon.store.database import store_io
from daemon.web import data
from daemon.web.auth import Auth, security_headers
from daemon.web.health import json_response, not_found

if TYPE_CHECKING:
    from jinja2 import Environment
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from daemon.config.settings import Settings
    from daemon.notify.delivery import DeliveryReport
    from daemon.store import Store
    from daemon.web.mcp import Investigate

HERE = Path(__file__).parent
LIVE_S = 10
"""Seconds between live.js refreshes of the overview (without JavaScript: a reload at 3x)."""


@dataclass
class Console:
    """What the pages read: the settings in force, the store, the daemon's own state."""

    settings: Callable[[], Settings]
    open_store: Callable[[], Store | None]
    """The daemon's store once its runtime is open (None while it starts: 503)."""
    config_path: Path
    last_cycle: Callable[[], datetime | None]
    resolve: Callable[[str], str]
    cycle_seconds: Callable[[], float | None] = lambda: None
    """How long the daemon's last cycle took (for /metrics)."""
    deliveries: Callable[[], DeliveryReport | None] = lambda: None
    """The daemon's delivery attempts since it started (for /metrics counters)."""
    cluster: Callable[[], tuple[str, str] | None] = lambda: None
    """This node's name and role (active, standby) when processes share a database."""
    investigate: Investigate | None = None
    """The daemon's own investigator, for the MCP tool (offered only when allowed)."""
    pid: int = field(default_factory=os.getpid)

    def __post_init__(self) -> None:
        from daemon.web.mcp import LazyMCP

        self.env = _environment()
        self.auth = Auth(lambda: self.settings().web, self.resolve)
        self.mcp = LazyMCP(lambda: self.store, self.settings, self.investigate)

    async def aclose(self) -> None:
        """On the listener's shutdown: stop the MCP session manager if it ever started."""
        await self.mcp.aclose()

    @property
    def store(self) -> Store:
        store = self.open_store()
        if store is None:
            raise Starting
        return store

    def routes(self) -> list[BaseRoute]:
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        page = _get
        return [
            Route("/", page(self.overview)),
            Route("/incidents/{incident_id:int}", page(self.incident)),
            Route("/spend", page(self.spend)),
            Route("/spend.csv", page(self.spend_csv)),
            Route("/audit", page(self.audit)),
            Route("/sweeps", page(self.sweeps)),
            Route("/sweeps/{sweep}/latest.{ext}", page(self.sweep_report)),
            Route("/status", page(self.status_page)),
            Route("/metrics", page(self.metrics)),
            Route("/api/status", page(self.api_status)),
            Route("/api/incidents", page(self.api_incidents)),
            Route("/api/incidents/{incident_id:int}", page(self.api_incident)),
            Route("/api/costs", page(self.api_costs)),
            Route("/api/audit", page(self.api_audit)),
            Route("/api/sweeps", page(self.api_sweeps)),
            Route("/mcp", self.mcp, methods=["GET", "POST", "DELETE"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]

    def middleware(self) -> list[Any]:
        from starlette.middleware import Middleware

        return [Middleware(security_headers), Middleware(self.auth.middleware)]

    # -- pages ------------------------------------------------------------------------------

    def _page(self, name: str, status: int = 200, **context: Any) -> Response:
        from starlette.responses import HTMLResponse

        html = self.env.get_template(name).render(version=__version__, now=data.now(), **context)
        return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})

    async def overview(self, request: Request) -> Response:
        view = await store_io(data.overview, self.store, self.settings(), self.pid)
        return self._page(
            "overview.html",
            view=view,
            config_path=str(self.config_path),
            last_cycle=self.last_cycle(),
            live_s=LIVE_S,  # live.js refreshes in place; without JavaScript, <noscript> reloads
        )

    async def incident(self, request: Request) -> Response:
        incident_id = int(request.path_params["incident_id"])
        view = await store_io(data.incident, self.store, incident_id)
        if view is None:
            return self._page("missing.html", 404, what=f"incident #{incident_id}")
        return self._page("incident.html", view=view)

    async def spend(self, request: Request) -> Response:
        since = request.query_params.get("since", "30d")
        view = await store_io(data.spend, self.store, self.settings(), since)
        if view is None:
            return self._page("missing.html", 400, what=f"a period {since!r} (try 7d, 30d)")
        return self._page("spend.html", view=view)

    async def spend_csv(self, request: Request) -> Response:
        from starlette.responses import Response

        rows = await store_io(data.ledger_rows, self.store, request.query_params.get("since"))
        if rows is None:
            return json_response(400, {"error": "since: a duration such as 7d or 30d"})
        out = io.StringIO()
        writer = csv.writer(out)
        columns = list(data.CSV_COLUMNS)
        writer.writerow(columns)
        for row in rows[1]:
            writer.writerow([_csv_cell(row.get(c)) for c in columns])
        return Response(
            out.getvalue(),
            headers={"Content-Disposition": 'attachment; filename="watchkeeper-costs.csv"'},
            media_type="text/csv",
        )

    async def audit(self, request: Request) -> Response:
        since = request.query_params.get("since", "30d")
        view = await store_io(data.audit, self.store, since)
        if view is None:
            return self._page("missing.html", 400, what=f"a period {since!r} (try 7d, 30d)")
        return self._page("audit.html", view=view)

    async def sweeps(self, request: Request) -> Response:
        runs = await store_io(data.sweeps, self.store)
        return self._page("sweeps.html", runs=runs)

    async def sweep_report(self, request: Request) -> Response:
        """The latest run's report file, as the daemon wrote it (Markdown as plain text: it
        holds resource names and evidence, which stay text)."""
        from starlette.responses import Response

        ext = request.path_params["ext"]
        path = await store_io(
            data.report_path, self.store, self.settings(), request.path_params["sweep"], ext
        )
        if path is None:
            return not_found()
        body = await store_io(path.read_bytes)
        kind = "text/plain; charset=utf-8" if ext == "md" else "application/json"
        return Response(body, media_type=kind, headers={"Cache-Control": "no-store"})

    async def status_page(self, request: Request) -> Response:
        settings = self.settings()
        if not settings.web.status.enabled:
            return not_found()
        view = await store_io(data.public_status, self.store, settings)
        return self._page("status.html", view=view, page=settings.web.status)

    async def metrics(self, request: Request) -> Response:
        from starlette.responses import Response

        from daemon.web.metrics import CONTENT_TYPE, exposition

        body = await store_io(
            exposition,
            self.store,
            self.settings(),
            self.last_cycle(),
            self.cycle_seconds(),
            self.deliveries(),
            self.cluster(),
        )
        return Response(body, media_type=CONTENT_TYPE)

    # -- the JSON API: the CLI's --json shapes ------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        return json_response(200, await store_io(data.status_json, self.store, self.settings()))

    async def api_incidents(self, request: Request) -> Response:
        every = request.query_params.get("all") in ("1", "true")
        return json_response(200, await store_io(data.incidents_json, self.store, every))

    async def api_incident(self, request: Request) -> Response:
        from daemon.report.status import load_incident

        incident_id = int(request.path_params["incident_id"])
        found = await store_io(load_incident, self.store, incident_id)
        if found is None:
            return json_response(404, {"error": f"no incident #{incident_id}"})
        return json_response(200, found)

    async def api_costs(self, request: Request) -> Response:
        found = await store_io(data.costs_json, self.store, request.query_params.get("since"))
        if found is None:
            return json_response(400, {"error": "since: a duration such as 7d or 30d"})
        return json_response(200, found)

    async def api_audit(self, request: Request) -> Response:
        found = await store_io(data.audit_json, self.store, request.query_params.get("since"))
        if found is None:
            return json_response(400, {"error": "since: a duration such as 7d or 30d"})
        return json_response(200, found)

    async def api_sweeps(self, request: Request) -> Response:
        return json_response(200, await store_io(data.sweeps_json, self.store))


class Starting(Exception):
    """The runtime (and so the store) is not open yet."""


def _get(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Read-only: GET and HEAD; anything else is the listener's usual 404."""

    async def endpoint(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return json_response(405, {"error": "read-only: use GET"}, {"Allow": "GET, HEAD"})
        try:
            return await handler(request)
        except Starting:
            return json_response(503, {"error": "the daemon is starting"}, {"Retry-After": "2"})

    return endpoint


def _csv_cell(value: object) -> str:
    """A spreadsheet must not run a model name as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from daemon.util.money import format_usd
    from daemon.util.text import printable

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["text"] = lambda value: printable(str(value))
    env.filters["usd"] = format_usd
    env.filters["when"] = lambda value: (
        "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    return env
