"""`watchkeeper check`, `status` and `incidents [show]`: run checks now, read the state."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    load,
    open_store,
)
from daemon.cli._complete import complete_checks, complete_incidents
from daemon.cli._output import show, wide_option

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.models import CheckResult, IncidentEvent


@click.command()
@config_option
@click.argument("names", nargs=-1, shell_complete=complete_checks)
@click.option("--record", is_flag=True, help="Also record results and update incidents.")
@json_option
@wide_option
@handle_errors
def check(config_path: Path | None, names: tuple[str, ...], record: bool, as_json: bool) -> None:
    """Run checks now and print their results (all enabled checks unless NAMES are given).

    Exits 1 when any check is failing or could not run, 0 otherwise.
    """
    import daemon.cli.views as output

    _, settings = load(config_path, need_state=record)
    known = {c.name for c in settings.checks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(
            f"no check named {', '.join(map(repr, unknown))}; configured: "
            + (", ".join(sorted(known)) or "none")
        )
    results, events = asyncio.run(run_named(settings, list(names), record=record))
    if as_json:
        emit_json(
            {
                "results": [r.model_dump(mode="json") for r in results],
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
    else:
        show(output.results_table(results), output.event_lines(events))
    if any(r.status in ("failing", "error") for r in results):
        sys.exit(1)


@click.command()
@config_option
@json_option
@wide_option
@handle_errors
def status(config_path: Path | None, as_json: bool) -> None:
    """Whether a daemon is running (pid, last cycle), the last result of every check (and
    which are flapping), open incidents and the notification outbox."""
    import daemon.cli.views as output
    from daemon.report.status import load_status
    from daemon.store.lock import lock_holder
    from daemon.util.time import utcnow

    _, settings = load(config_path)
    store = open_store(settings)
    now = utcnow()
    try:
        view = load_status(store, settings, lock_holder(settings.daemon.state_dir), now)
    finally:
        store.close()
    if as_json:
        emit_json(output.status_json(view))
    else:
        show(*output.status_blocks(view))


@click.group(invoke_without_command=True)
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@json_option
@wide_option
@click.pass_context
@handle_errors
def incidents(ctx: click.Context, config_path: Path | None, show_all: bool, as_json: bool) -> None:
    """List open incidents (newest first); with --all, resolved ones too, each with the
    failure that opened it."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    if ctx.invoked_subcommand is not None:
        return
    import daemon.cli.views as output

    _, settings = load(config_path)
    store = open_store(settings)
    try:
        rows = store.incidents.recent(include_resolved=show_all)
    finally:
        store.close()
    if as_json:
        emit_json([i.model_dump(mode="json") for i in rows])
    else:
        show(output.incidents_table(rows))


@incidents.command("show")
@click.argument("incident_id", type=int, shell_complete=complete_incidents)
@config_option
@json_option
@wide_option
@click.pass_context
@handle_errors
def incidents_show(
    ctx: click.Context, incident_id: int, config_path: Path | None, as_json: bool
) -> None:
    """One incident with its events and every stored investigation in full."""
    import daemon.cli.views as output

    _, settings = load(config_path or (ctx.obj or {}).get("config_path"))
    store = open_store(settings)
    try:
        found = store.incidents.get(incident_id)
        investigations = store.incidents.investigations(incident_id)
    finally:
        store.close()
    if found is None:
        echo(f"watchkeeper: no incident #{incident_id}", err=True)
        sys.exit(1)
    incident, events = found
    if as_json:
        from daemon.report.status import incident_json

        emit_json(incident_json(incident, events, investigations))
    else:
        show(*output.incident_detail(incident, events, investigations))


async def run_named(
    settings: Settings, names: list[str], *, record: bool
) -> tuple[list[CheckResult], list[IncidentEvent]]:
    """Run the named checks (all enabled ones when empty); record them only when asked."""
    import httpx

    from daemon import USER_AGENT
    from daemon.engine.pipeline import run_check
    from daemon.runtime import open_runtime, ping_reader, secret_resolver
    from daemon.service.leader import lease_for_one_run
    from daemon.store.lock import StateLock
    from daemon.util.time import utcnow
    from jobs.base import CheckContext

    specs = [settings.check(n) for n in names] if names else settings.enabled_checks
    if record:
        with StateLock(settings.daemon.state_dir):
            async with open_runtime(settings) as rt, lease_for_one_run(rt):
                results, events = await rt.pipeline.cycle(specs)
                await rt.pipeline.wait_background(settings.escalation.timeout.total_seconds() + 10)
                await rt.notifier.deliver_due()
                return results, events
    store = None
    if any(spec.type == "heartbeat" for spec in specs):  # they judge the pings it holds
        store = open_store(settings)
    try:
        async with httpx.AsyncClient(headers={"User-Agent": USER_AGENT}, timeout=30.0) as client:
            ctx = CheckContext(
                http=client,
                now=utcnow,
                resolve_secret=secret_resolver(),
                pings=None if store is None else ping_reader(store),
            )
            batches = await asyncio.gather(*(run_check(spec, ctx) for spec in specs))
    finally:
        if store is not None:
            store.close()
    return [r for batch in batches for r in batch], []
