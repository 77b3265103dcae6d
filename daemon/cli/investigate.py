"""`watchkeeper investigate ID` and `digest`: a root-cause analysis now, with any model, and
the daily digest now."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._blocks import BLANK, Markdown, line
from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    load,
    model_option,
    reported,
)
from daemon.cli._complete import complete_incidents, complete_models
from daemon.cli._output import show

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.engine.investigator import Outcome
    from daemon.models import Message


@click.command()
@click.argument("incident_id", type=int, shell_complete=complete_incidents)
@click.option(
    "--model", help="provider/model instead of the `rca` route.", shell_complete=complete_models
)
@click.option("--notify", "send", is_flag=True, help="Also send the result to the targets.")
@click.option(
    "--ask",
    "question",
    help="A follow-up question, answered from the stored context and the last investigation's "
    "trail (with --model, another model takes over); the answer is stored on the incident.",
)
@config_option
@json_option
@handle_errors
def investigate(
    incident_id: int,
    model: str | None,
    send: bool,
    question: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Run root-cause analysis of an incident now, with any model you name."""

    from daemon.ai.reports import row_json
    from daemon.cli.views import ledger_json

    _, settings = load(config_path)
    reported("no model answered", "model call failed")  # the message below says why
    if model is not None:
        model_option(settings, model)
    if question is not None and not question.strip():
        echo("watchkeeper: --ask needs a question", err=True)
        sys.exit(2)
    outcome = asyncio.run(investigate_now(settings, incident_id, model, send, question))
    if outcome is None:
        echo(f"watchkeeper: no incident #{incident_id}", err=True)
        sys.exit(1)
    record = outcome.investigation
    if as_json:
        emit_json(
            {
                "incident_id": incident_id,
                "model": record.model,
                "rca": record.rca,
                "skipped": record.skipped,
                "question": record.question,
                "trail": [step.model_dump(mode="json") for step in record.trail],
                "limit": record.limit,
                "dropped": record.dropped,
                "calls": [row_json(row) for row in outcome.calls]
                if outcome.calls is not None
                else ledger_json(outcome.result)
                if outcome.result
                else [],
            }
        )
    else:
        show(line(outcome.message.title, style="bold"), BLANK, Markdown(outcome.message.body))
    if record.rca is None:
        sys.exit(1)


@click.command()
@click.option("--send", is_flag=True, help="Queue it for the targets that want `report`.")
@config_option
@handle_errors
def digest(send: bool, config_path: Path | None) -> None:
    """The daily digest of the last 24 h, now (the daemon sends it at [digest] cron)."""

    _, settings = load(config_path)
    reported("no model answered", "model call failed")  # the digest says why
    message = asyncio.run(digest_now(settings, send))
    show(line(message.title, style="bold"), BLANK, Markdown(message.body))


async def investigate_now(
    settings: Settings,
    incident_id: int,
    model: str | None,
    send: bool,
    question: str | None = None,
) -> Outcome | None:
    """`watchkeeper investigate`: the RCA now, stored on the incident, optionally sent."""
    from daemon.runtime import open_runtime
    from daemon.store.database import store_io

    async with open_runtime(settings) as rt:
        found = await store_io(rt.store.incidents.get, incident_id)
        if found is None:
            return None
        assert rt.investigator is not None
        why = "follow-up question" if question is not None else "requested on demand"
        outcome = await rt.investigator.investigate(
            found[0], why, model=model, notify_targets=send, question=question
        )
        if send:
            await rt.notifier.deliver_due()
        return outcome


async def digest_now(settings: Settings, send: bool) -> Message:
    from daemon.notify.digest import build_digest, queue_digest
    from daemon.runtime import open_runtime
    from daemon.util.time import utcnow

    async with open_runtime(settings) as rt:
        if not send:
            return await build_digest(settings, rt.store, rt.ai, utcnow())
        message = await queue_digest(settings, rt.store, rt.ai, utcnow())
        await rt.notifier.deliver_due()
        return message
