"""`watchkeeper notify test [NAME]`: a test message to every target, with each outcome."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._common import config_option, echo, emit_json, handle_errors, json_option, load

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.notify.delivery import TestOutcome


@click.group()
def notify() -> None:
    """Notification targets."""


@notify.command("test")
@click.argument("name", required=False)
@config_option
@json_option
@handle_errors
def notify_test(name: str | None, config_path: Path | None, as_json: bool) -> None:
    """Send a test message to every target (or NAME) and report each outcome."""

    _, settings = load(config_path, need_state=False)
    names = [t.name for t in settings.notify]
    if not names:
        raise click.UsageError("no [[notify]] targets are configured")
    if name is not None and name not in names:
        raise click.UsageError(f"no notify target named {name!r}; configured: {', '.join(names)}")
    outcomes = asyncio.run(send_test(settings, name))
    if as_json:
        emit_json([{"target": o.target, "ok": o.ok, "error": o.error} for o in outcomes])
    else:
        for o in outcomes:
            echo(f"{o.target}: " + ("ok" if o.ok else f"FAILED — {o.error}"))
    if not all(o.ok for o in outcomes):
        sys.exit(1)


async def send_test(settings: Settings, name: str | None) -> list[TestOutcome]:
    from daemon.notify.delivery import Notifier
    from daemon.runtime import secret_resolver
    from daemon.util.time import utcnow

    notifier = Notifier(None, settings.notify, settings.delivery, secret_resolver(), utcnow)
    return await notifier.send_test(name)
