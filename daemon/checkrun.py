"""The one-shot commands behind `watchkeeper check` and `watchkeeper notify test`."""

from __future__ import annotations

import asyncio

import httpx

from daemon import USER_AGENT
from daemon.config import Settings
from daemon.lock import StateLock
from daemon.models import CheckResult, IncidentEvent
from daemon.notify import Notifier, TestOutcome
from daemon.pipeline import run_check
from daemon.service import open_runtime, secret_resolver, utcnow
from jobs.base import CheckContext


async def run_named(
    settings: Settings, names: list[str], *, record: bool
) -> tuple[list[CheckResult], list[IncidentEvent]]:
    """Run the named checks (all enabled ones when empty); record them only when asked."""
    specs = [settings.check(n) for n in names] if names else settings.enabled_checks
    if record:
        with StateLock(settings.daemon.state_dir):
            async with open_runtime(settings) as rt:
                results, events = await rt.pipeline.cycle(specs)
                await rt.pipeline.wait_background(settings.escalation.timeout.total_seconds() + 10)
                await rt.notifier.deliver_due()
                return results, events
    async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, timeout=30.0) as client:
        ctx = CheckContext(http=client, now=utcnow, resolve_secret=secret_resolver())
        batches = await asyncio.gather(*(run_check(spec, ctx) for spec in specs))
    return [r for batch in batches for r in batch], []


async def send_test(settings: Settings, name: str | None) -> list[TestOutcome]:
    notifier = Notifier(None, settings.notify, settings.delivery, secret_resolver(), utcnow)
    return await notifier.send_test(name)
