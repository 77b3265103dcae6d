"""`watchkeeper run [--once]`: the daemon in the foreground, or one full cycle for cron and CI."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._blocks import line
from daemon.cli._common import config_option, emit_json, handle_errors, json_option, load
from daemon.cli._output import show, wide_option

if TYPE_CHECKING:
    from daemon.config.settings import Settings


@click.command()
@config_option
@click.option("--once", is_flag=True, help="Run every enabled check once, notify, and exit.")
@json_option
@wide_option
@handle_errors
def run(config_path: Path | None, once: bool, as_json: bool) -> None:
    """Run the daemon in the foreground (systemd/launchd run this)."""
    from daemon.logging import configure
    from daemon.store.lock import StateLock

    path, settings = load(config_path)
    configure(
        settings.daemon.log_level,
        settings.daemon.log_format,
        stream=sys.stderr if once else sys.stdout,
    )
    with StateLock(settings.daemon.state_dir):
        if once:
            _run_once(settings, as_json)
            return
        from daemon.service.daemon import Service

        code = asyncio.run(Service(path, settings).serve())
    sys.exit(code)


def _run_once(settings: Settings, as_json: bool) -> None:
    import daemon.cli.views as output
    from daemon.service.once import run_once

    report = asyncio.run(run_once(settings))
    if as_json:
        emit_json(output.once_json(report))
        return
    show(
        output.results_table(report.results),
        output.event_lines(report.events),
        output.delivery_lines(report.delivery),
        line(output.once_summary(report, settings.daemon.state_dir)),
    )
