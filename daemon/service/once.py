"""`watchkeeper run --once`: every enabled check once through the whole pipeline, the health
endpoint served meanwhile (so a check of it sees the real thing), then delivery, then exit.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from daemon.config.settings import Settings
from daemon.errors import ConfigError, ConfigProblem
from daemon.models import CheckResult, IncidentEvent
from daemon.notify.delivery import DeliveryReport
from daemon.runtime import Runtime, open_runtime
from daemon.service.health import HealthReport, Listener, listen_problem, serve_health
from daemon.service.leader import lease_for_one_run
from daemon.store.database import store_io
from daemon.util.net import parse_listen
from daemon.util.time import utcnow

log = structlog.get_logger(__name__)


@dataclass
class OnceReport:
    results: list[CheckResult]
    events: list[IncidentEvent]
    delivery: DeliveryReport


async def run_once(settings: Settings) -> OnceReport:
    """Every enabled check once, the whole pipeline, then deliver what is due."""
    async with open_runtime(settings) as rt, lease_for_one_run(rt):
        server = await _serve_health(rt)
        try:
            results, events = await rt.pipeline.cycle(settings.enabled_checks)
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()
        await rt.pipeline.wait_background(settings.escalation.timeout.total_seconds() + 10)
        daemon = settings.daemon
        keep = (daemon.retention, daemon.minute_rollups, daemon.hour_rollups)
        await store_io(rt.store.maintain, utcnow(), *keep)
        delivery = await rt.notifier.deliver_due()
    return OnceReport(results, events, delivery)


async def _serve_health(rt: Runtime) -> Listener | None:
    listen = rt.settings.daemon.health_listen
    if not listen:
        return None

    def probe() -> HealthReport:
        return HealthReport(
            healthy=True,
            detail={
                "mode": "once",
                "checks": len(rt.settings.enabled_checks),
                "cycles": rt.pipeline.cycles,
            },
        )

    host, port = parse_listen(listen)
    try:
        return await serve_health(host, port, probe)
    except OSError as exc:  # before any check ran: a self-check would watch another process
        raise ConfigError(
            "watchkeeper", [ConfigProblem("daemon.health_listen", listen_problem(listen, exc))]
        ) from None
