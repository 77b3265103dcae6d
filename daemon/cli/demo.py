"""`watchkeeper demo`: a simulated estate on loopback, watched by the real pipeline.

checkout-api depends on session-cache and orders-postgres; session-cache slows down, fails,
then recovers. Notifications go through the real outbox and apprise to a receiver in this
process, which prints them. Nothing leaves loopback unless the user has a provider configured
(Ollama answering at its URL, or a cloud key on this machine).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._blocks import BLANK, Column, Framed, Lines, Markdown, Table, line
from daemon.cli._common import config_option, handle_errors, load
from daemon.cli._output import show

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.models import CheckResult

Printer = Callable[..., None]
"""`show`: prints the blocks it is given."""

SCRIPT: list[tuple[str, str]] = [
    ("healthy", "All services healthy."),
    ("healthy", "Still healthy: baselines warming up."),
    ("slow", "session-cache slows down (evictions push reads to orders-postgres)."),
    ("down", "session-cache stops answering; checkout-api returns 502."),
    ("down", "Still down."),
    ("healthy", "session-cache recovers."),
    ("healthy", "All services healthy again."),
]


@dataclass
class Estate:
    """Three loopback services whose behaviour the script changes between cycles."""

    mode: str = "healthy"
    ports: dict[str, int] = field(default_factory=dict)
    servers: list[asyncio.Server] = field(default_factory=list)

    async def start(self) -> None:
        for name in ("checkout-api", "session-cache"):
            server = await asyncio.start_server(self._http(name), "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        pg = await asyncio.start_server(self._postgres, "127.0.0.1", 0)
        self.servers.append(pg)
        self.ports["orders-postgres"] = pg.sockets[0].getsockname()[1]

    def _http(
        self, name: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                status, body, delay = self._answer(name)
                await asyncio.sleep(delay)
                payload = json.dumps(body).encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        return handle

    def _answer(self, name: str) -> tuple[str, dict[str, str], float]:
        if name == "session-cache":
            if self.mode == "slow":
                return "200 OK", {"status": "ok", "evictions_per_s": "4100"}, 1.5
            if self.mode == "down":
                return (
                    "503 Service Unavailable",
                    {
                        "status": "down",
                        "error": "OOM command not allowed when used memory > 'maxmemory'",
                    },
                    0.0,
                )
        if name == "checkout-api" and self.mode == "down":
            return "502 Bad Gateway", {"status": "error", "error": "session store timeout"}, 0.0
        return "200 OK", {"status": "ok"}, 0.005

    async def _postgres(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    def close(self) -> None:
        for server in self.servers:
            server.close()


def demo_config(estate: Estate, state_dir: Path, sink_port: int, ollama_url: str) -> str:
    p = estate.ports
    return f"""
[daemon]
state_dir = "{state_dir}"
cycle_window = "0s"

[providers.ollama]
base_url = "{ollama_url}"
timeout = "45s"
max_retries = 0

[triage]
timeout = "45s"

[escalation]
min_severity = "high"
timeout = "60s"

[[notify]]
name = "terminal"
url = "json://127.0.0.1:{sink_port}/demo"

[[checks]]
name = "orders-postgres"
type = "tcp"
host = "127.0.0.1"
port = {p["orders-postgres"]}
timeout = "2s"
severity = "critical"
failure_threshold = 1

[[checks]]
name = "session-cache"
type = "http"
url = "http://127.0.0.1:{p["session-cache"]}/health"
json_path = "status"
json_equals = "ok"
max_latency = "1s"
timeout = "3s"
severity = "high"
failure_threshold = 1

[[checks]]
name = "checkout-api"
type = "http"
url = "http://127.0.0.1:{p["checkout-api"]}/health"
timeout = "3s"
severity = "high"
failure_threshold = 1
depends_on = ["session-cache", "orders-postgres"]
"""


async def _sink(printer: Printer) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = json.loads(await reader.readexactly(length))
            printer(
                BLANK,
                Framed(
                    f"notification: {body.get('title', '')}",
                    Markdown(str(body.get("message", ""))),
                ),
            )
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, StopIteration, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def cycle_table(results: list[CheckResult]) -> Table:
    """One cycle's results, indented under its heading: evidence wraps, never cut."""
    columns = [Column("CHECK"), Column("STATUS", coloured=True), Column("EVIDENCE", free=True)]
    rows = [[r.check, r.status.upper(), r.evidence] for r in results]
    return Table(columns, rows, indent=3, header=False)


def with_models(demo: Settings, user: Settings) -> Settings:
    """The demo's estate, with the user's models: providers (theirs win), routing, prices,
    budget and redaction."""
    return demo.model_copy(
        update={
            "providers": {**demo.providers, **user.providers},
            "routing": user.routing,
            "prices": user.prices,
            "budget": user.budget,
            "redaction": user.redaction,
        }
    )


async def run_demo(
    ollama_url: str, pause_s: float, printer: Printer, models_from: Settings | None = None
) -> int:
    from daemon.ai.bill import bill_text, make_bill
    from daemon.ai.runner import AIResult
    from daemon.config.load import load_settings
    from daemon.engine.triage import every_cycle_request
    from daemon.llm.types import ModelRequest
    from daemon.runtime import open_runtime
    from daemon.store.database import store_io
    from daemon.util.time import utcnow

    started = time.monotonic()
    asked: dict[str, ModelRequest] = {}

    def keep_first_request(result: AIResult) -> None:
        if result.request is not None:
            asked.setdefault(result.task, result.request)

    estate = Estate()
    await estate.start()
    sink = await _sink(printer)
    sink_port = sink.sockets[0].getsockname()[1]
    delivered = 0
    with tempfile.TemporaryDirectory(prefix="watchkeeper-demo-") as tmp:
        path = Path(tmp) / "demo.toml"
        path.write_text(demo_config(estate, Path(tmp) / "state", sink_port, ollama_url))
        settings = load_settings(path)
        if models_from is not None:
            settings = with_models(settings, models_from)
        async with open_runtime(settings) as rt:
            began = utcnow()
            rt.ai.observers.append(keep_first_request)
            every_cycle: ModelRequest | None = None
            triage_model, why = await rt.ai.preflight("triage")
            rca_model, why_rca = await rt.ai.preflight("rca")
            printer(
                line(f"triage: {triage_model or 'deterministic (' + why + ')'}"),
                line(f"rca:    {rca_model or 'deterministic (' + why_rca + ')'}"),
            )
            for number, (mode, story) in enumerate(SCRIPT, 1):
                estate.mode = mode
                printer(BLANK, line(f"== cycle {number}: {story}", style="bold"))
                results, _ = await rt.pipeline.cycle(settings.enabled_checks)
                every_cycle = every_cycle or every_cycle_request(results)
                printer(cycle_table(results))
                await rt.pipeline.wait_background(settings.escalation.timeout.total_seconds())
                delivered += (await rt.notifier.deliver_due()).delivered
                await asyncio.sleep(pause_s)
            calls = await store_io(rt.store.ledger.calls, began)
            rca = asked.get("rca")
            found = await store_io(rt.store.incidents.get, 1)
            if rca is None and found is not None and rt.investigator is not None:
                # No model could take it, so it was never built: build it as it would have been.
                rca, _ = await rt.investigator.request(found[0])
            bill = make_bill(
                settings,
                calls=calls,
                triage=asked.get("triage"),
                rca=rca,
                every_cycle=every_cycle,
            )
            printer(BLANK, Lines(bill_text(bill).split("\n")))
    sink.close()
    estate.close()
    printer(
        BLANK,
        line(
            f"demo finished in {time.monotonic() - started:.1f} s: {delivered} notifications "
            "delivered through the real outbox. Next: `watchkeeper init` writes a starter config "
            "(checks of this machine); point it at your own services, then "
            "`watchkeeper run --once`."
        ),
    )
    return 0


@click.command()
@click.option(
    "--ollama-url",
    default="http://127.0.0.1:11434",
    show_default=True,
    envvar="OLLAMA_HOST",
    help="Where to look for a local model (used only if it answers).",
)
@click.option("--pause", default=0.5, show_default=True, help="Seconds between cycles.")
@config_option
@handle_errors
def demo(ollama_url: str, pause: float, config_path: Path | None) -> None:
    """A simulated estate on loopback: an incident opens, is investigated, resolves.

    With --config, the demo uses that file's models — [providers], [routing], [prices],
    [budget], [redaction] — and prices its bill on them; its checks and state stay the
    demo's own (a temporary directory). Without it, the default chains."""
    from daemon.logging import configure

    models_from = load(config_path, need_state=False)[1] if config_path is not None else None
    configure("error", "console")
    if not ollama_url.startswith("http"):
        ollama_url = f"http://{ollama_url}"
    asyncio.run(run_demo(ollama_url, pause, show, models_from))
