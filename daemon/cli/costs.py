"""`watchkeeper costs` and `audit`: what AI calls cost, and every host that received a
prompt — both read from the ledger."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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

if TYPE_CHECKING:
    from daemon.ai.reports import GroupBy
    from daemon.config.settings import Settings

SINCE_HELP = "How far back, e.g. 24h, 7d, 30d."


def since_window(text: str) -> datetime:
    """`7d` → the moment 7 days ago; ValueError for anything that is not a duration."""
    from daemon.models import parse_duration
    from daemon.util.time import utcnow

    start: datetime = utcnow() - parse_duration(text)
    return start


def _ledger_rows(settings: Settings, since: str) -> tuple[Any, list[Any]]:

    try:
        start = since_window(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    store = open_store(settings)
    try:
        return start, store.ledger.calls(start)
    finally:
        store.close()


@click.command()
@click.option("--since", default="7d", show_default=True, help=SINCE_HELP)
@click.option(
    "--by",
    "group_by",
    type=click.Choice(["day", "model", "task", "provider"]),
    default="model",
    show_default=True,
    help="Group the table by.",
)
@click.option(
    "--forecast",
    is_flag=True,
    help="The expected monthly spend per task and model, from this window's history, beside "
    "sending every cycle to the cloud.",
)
@config_option
@json_option
@handle_errors
def costs(
    since: str, group_by: str, forecast: bool, config_path: Path | None, as_json: bool
) -> None:
    """What the AI calls cost: every call is a ledger line (local ones at $0)."""
    from daemon.ai.reports import costs_json, costs_text

    _, settings = load(config_path)
    if forecast:
        _forecast(settings, since, as_json)
        return
    start, rows = _ledger_rows(settings, since)
    if as_json:
        emit_json(costs_json(rows, start))
    else:
        echo(costs_text(rows, start, cast("GroupBy", group_by)))


@click.command()
@click.option("--since", default="30d", show_default=True, help=SINCE_HELP)
@config_option
@json_option
@handle_errors
def audit(since: str, config_path: Path | None, as_json: bool) -> None:
    """Every host that received model requests: calls, bytes sent, key source."""
    from daemon.ai.reports import audit_json, audit_text

    _, settings = load(config_path)
    start, rows = _ledger_rows(settings, since)
    if as_json:
        emit_json(audit_json(rows, start))
    else:
        echo(audit_text(rows, start))


def _forecast(settings: Settings, since: str, as_json: bool) -> None:
    from decimal import Decimal

    from daemon.ai.bill import approx_input_tokens, runs_per_month
    from daemon.ai.forecast import forecast, forecast_json, forecast_text
    from daemon.engine.triage import every_cycle_request
    from daemon.store import Store
    from daemon.util.time import utcnow

    start, rows = _ledger_rows(settings, since)
    days = Decimal((utcnow() - start).total_seconds()) / Decimal(86400)
    with Store.open(settings.daemon.state_dir) as store:
        latest = [r for c in settings.enabled_checks for r in store.results.recent(c.name, 1)]
        routes = store.routes.all()
    tokens = approx_input_tokens(every_cycle_request(latest)) if latest else None
    chains = {
        t: routes.get(t) or settings.routing.chain(t) for t in ("triage", "rca", "digest", "ask")
    }
    result = forecast(
        settings,
        rows,
        days,
        every_cycle_tokens=tokens,
        cycles_per_month=runs_per_month(settings)[1],
        chains=chains,
    )
    if as_json:
        emit_json(forecast_json(result))
    else:
        echo(forecast_text(result))
