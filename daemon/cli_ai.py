"""Model-layer commands: keys, models, route, costs, audit, ask. Registered by daemon.cli.

Imports stay inside commands so `watchkeeper --help` does not load httpx or pydantic.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from daemon.cli import config_option, emit_json, handle_errors, json_option, load

if TYPE_CHECKING:
    from daemon.ai import AIResult
    from daemon.config import Settings
    from daemon.costs import GroupBy
    from daemon.llm.types import ModelRef

TASK_NAMES = ("triage", "rca", "security", "cost", "digest", "ask")
SINCE_HELP = "How far back, e.g. 24h, 7d, 30d."


def cost_line(result: AIResult) -> str:
    """`ollama/gemma4:27b (local) · 1,204 in / 151 out · $0.00`, plus skipped models."""
    from daemon.costs import format_usd

    parts = []
    for row in result.calls:
        ref = f"{row.provider}/{row.model}"
        if row.outcome == "ok":
            where = "local" if row.local else row.host
            parts.append(
                f"{ref} ({where}) · {row.input_tokens:,} in / {row.output_tokens:,} out · "
                f"{format_usd(row.cost_usd)}"
            )
        else:
            parts.append(f"{ref} skipped ({row.outcome}): {row.detail}")
    total = result.cost_usd
    return "\n".join(parts) + f"\nAI cost: {format_usd(total)}"


def ledger_json(result: AIResult) -> list[dict[str, Any]]:
    from daemon.ledger import row_json

    return [row_json(row) for row in result.calls]


def known_provider(settings: Settings, provider: str) -> None:
    from daemon.aiconfig import provider_api

    if provider_api(provider, settings.providers) is None:
        known = sorted({"anthropic", "openai", "google", "cohere", "ollama", *settings.providers})
        raise click.UsageError(f"unknown provider {provider!r}; known: {', '.join(known)}")


def model_option(settings: Settings, model: str) -> ModelRef:
    """`--model provider/model`, checked: a usage error (exit 2) when malformed or unknown."""
    from daemon.llm.types import ModelRef

    try:
        ref = ModelRef.parse(model)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    known_provider(settings, ref.provider)
    return ref


# -- keys -------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Provider API keys on this machine (systemd credential, keyring, environment)."""


@keys.command("list")
@config_option
@json_option
@handle_errors
def keys_list(config_path: Path | None, as_json: bool) -> None:
    """Where each provider's key comes from — never the value."""
    from daemon.aiconfig import BUILTIN_PROVIDERS
    from daemon.keys import keyring_status, resolve_key

    _, settings = load(config_path, need_state=False)
    names = [*BUILTIN_PROVIDERS, *(n for n in settings.providers if n not in BUILTIN_PROVIDERS)]
    rows = []
    for name in names:
        _, info = resolve_key(name, settings.providers)
        rows.append(
            {"provider": name, "source": info.source, "where": info.where, "needed": info.needed}
        )
    status = keyring_status()
    if as_json:
        emit_json({"keys": rows, "keyring": {"usable": status.usable, "backend": status.backend}})
        return
    for row in rows:
        where = f"  ({row['where']})" if row["where"] else ""
        click.echo(f"{row['provider']:<12} {row['source']}{where}")
    if not status.usable:
        click.echo(
            f"\nno usable OS keyring here ({status.backend}): use systemd credentials "
            "or environment variables (see `watchkeeper keys set --help`)"
        )


@keys.command("set")
@click.argument("provider")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the key from standard input.")
@config_option
@handle_errors
def keys_set(provider: str, from_stdin: bool, config_path: Path | None) -> None:
    """Store PROVIDER's key in the OS keyring (hidden prompt, or --stdin)."""
    from daemon.keys import keyring_status, no_keyring_message, store_key

    _, settings = load(config_path, need_state=False)
    known_provider(settings, provider)
    status = keyring_status()
    if not status.usable:
        click.echo(f"watchkeeper: {no_keyring_message(provider, status.backend)}", err=True)
        sys.exit(1)
    value = (
        sys.stdin.readline()
        if from_stdin
        else click.prompt(f"{provider} API key", hide_input=True, prompt_suffix=": ")
    )
    value = value.strip()
    if not value:
        raise click.UsageError("empty key: nothing stored")
    store_key(provider, value)
    click.echo(f"stored the {provider} key in the keyring (service watchkeeper, user {provider})")


@keys.command("delete")
@click.argument("provider")
@config_option
@handle_errors
def keys_delete(provider: str, config_path: Path | None) -> None:
    """Remove PROVIDER's key from the OS keyring."""
    from daemon.keys import delete_key, keyring_status, no_keyring_message

    _, settings = load(config_path, need_state=False)
    known_provider(settings, provider)
    status = keyring_status()
    if not status.usable:
        click.echo(f"watchkeeper: {no_keyring_message(provider, status.backend)}", err=True)
        sys.exit(1)
    if delete_key(provider):
        click.echo(f"deleted the {provider} key from the keyring")
    else:
        click.echo(f"no {provider} key in the keyring")


@keys.command("test")
@click.argument("provider")
@click.option("--model", help="provider/model to call (default: the provider's cheapest).")
@config_option
@json_option
@handle_errors
def keys_test(provider: str, model: str | None, config_path: Path | None, as_json: bool) -> None:
    """The smallest real call to PROVIDER: prints latency and cost."""
    from daemon.airun import keys_test as run_test

    _, settings = load(config_path)
    known_provider(settings, provider)
    if model is not None and model_option(settings, model).provider != provider:
        raise click.UsageError(f"--model {model} is not a {provider} model")
    try:
        result = asyncio.run(run_test(settings, provider, model))
    except LookupError as exc:
        raise click.UsageError(str(exc).strip("'\"")) from None
    if as_json:
        emit_json({"ok": result.ok, "calls": ledger_json(result)})
    elif result.ok and result.response is not None:
        row = result.calls[-1]
        click.echo(
            f"{provider}: ok — {row.provider}/{row.model} at {row.host} answered in "
            f"{result.response.latency_ms:.0f} ms (key from {row.key_source})"
        )
        click.echo(cost_line(result))
    else:
        click.echo(f"{provider}: FAILED — {result.reason}", err=True)
    if not result.ok:
        sys.exit(1)


# -- models and routing -----------------------------------------------------------------------


@click.command()
@config_option
@json_option
@handle_errors
def models(config_path: Path | None, as_json: bool) -> None:
    """Every task's model chain, and per model: key, reachability, price."""
    from daemon.airun import models_overview
    from daemon.costs import format_rate

    _, settings = load(config_path)
    chains, overridden, infos = asyncio.run(models_overview(settings))
    if as_json:
        emit_json(
            {
                "routing": {
                    t: {"chain": c, "override": t in overridden} for t, c in chains.items()
                },
                "models": [i.as_json() for i in infos],
            }
        )
        return
    for task, chain in chains.items():
        mark = (
            "  (runtime override: `watchkeeper route reset " + task + "`)"
            if task in overridden
            else ""
        )
        click.echo(f"{task:<9} {' → '.join(chain)}{mark}")
    click.echo("")
    header = f"{'MODEL':<38} {'KEY':<19} {'REACHABLE':<32} PRICE /MTOK (IN / OUT)"
    click.echo(header)
    for info in infos:
        reach = {True: "yes", False: "no", None: "-"}[info.reachable]
        if info.reachable_detail and info.reachable is not True:
            reach += f" ({info.reachable_detail})"
        price = "$0 (local)" if info.local else format_rate(info.price)
        click.echo(f"{info.ref:<38} {info.key_source:<19} {reach[:32]:<32} {price}")


@click.group()
def route() -> None:
    """Runtime routing overrides, applied by a running daemon to its next job."""


@route.command("set")
@click.argument("task", type=click.Choice(TASK_NAMES))
@click.argument("refs")
@config_option
@handle_errors
def route_set(task: str, refs: str, config_path: Path | None) -> None:
    """Route TASK to REF[,REF…] (provider/model, first usable wins)."""
    from daemon.aiconfig import RoutingSettings, ai_problems
    from daemon.ledger import Ledger
    from daemon.store import Store

    _, settings = load(config_path)
    chain = [r.strip() for r in refs.split(",") if r.strip()]
    if not chain:
        raise click.UsageError("give at least one provider/model")
    routing = RoutingSettings(**{task: chain})
    problems = [
        p
        for p in ai_problems(settings.providers, routing, {}, settings.budget)
        if p.key.startswith(f"routing.{task}")
    ]
    if problems:
        raise click.UsageError(problems[0].message)
    store = Store.open(settings.daemon.state_dir)
    try:
        Ledger(store).set_route(task, chain)
    finally:
        store.close()
    click.echo(f"{task} → {' → '.join(chain)} (applies to the next {task} job)")


@route.command("reset")
@click.argument("task", type=click.Choice(TASK_NAMES))
@config_option
@handle_errors
def route_reset(task: str, config_path: Path | None) -> None:
    """Drop TASK's runtime override: back to [routing] in the config."""
    from daemon.ledger import Ledger
    from daemon.store import Store

    _, settings = load(config_path)
    store = Store.open(settings.daemon.state_dir)
    try:
        Ledger(store).reset_route(task)
    finally:
        store.close()
    click.echo(f"{task} → {' → '.join(settings.routing.chain(task))} (from the config)")


# -- costs and audit --------------------------------------------------------------------------


def _ledger_rows(settings: Settings, since: str) -> tuple[Any, list[Any]]:
    from daemon.airun import since_window
    from daemon.ledger import Ledger
    from daemon.store import Store

    try:
        start = since_window(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    store = Store.open(settings.daemon.state_dir)
    try:
        return start, Ledger(store).calls(start)
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
@config_option
@json_option
@handle_errors
def costs(since: str, group_by: str, config_path: Path | None, as_json: bool) -> None:
    """What the AI calls cost: every call is a ledger line (local ones at $0)."""
    from daemon.ledger import costs_json, costs_text

    _, settings = load(config_path)
    start, rows = _ledger_rows(settings, since)
    if as_json:
        emit_json(costs_json(rows, start))
    else:
        click.echo(costs_text(rows, start, cast("GroupBy", group_by)))


@click.command()
@click.option("--since", default="30d", show_default=True, help=SINCE_HELP)
@config_option
@json_option
@handle_errors
def audit(since: str, config_path: Path | None, as_json: bool) -> None:
    """Every host that received model requests: calls, bytes sent, key source."""
    from daemon.ledger import audit_json, audit_text

    _, settings = load(config_path)
    start, rows = _ledger_rows(settings, since)
    if as_json:
        emit_json(audit_json(rows, start))
    else:
        click.echo(audit_text(rows, start))


# -- ask --------------------------------------------------------------------------------------


@click.command()
@click.argument("question")
@click.option("--model", help="provider/model instead of the `ask` route.")
@config_option
@json_option
@handle_errors
def ask(question: str, model: str | None, config_path: Path | None, as_json: bool) -> None:
    """Ask about the estate's current state (local model by default)."""
    from daemon.airun import ask as run_ask

    _, settings = load(config_path)
    if model is not None:
        model_option(settings, model)
    result = asyncio.run(run_ask(settings, question, model))
    if as_json:
        emit_json(
            {
                "answer": result.response.text if result.response else None,
                "model": str(result.ref) if result.ref else None,
                "calls": ledger_json(result),
            }
        )
    elif result.response is not None:
        click.echo(result.response.text.strip())
        click.echo("")
        click.echo(cost_line(result))
    else:
        click.echo(f"watchkeeper: no model could answer — {result.reason}", err=True)
    if not result.ok:
        sys.exit(1)


# -- investigate and digest -------------------------------------------------------------------


@click.command()
@click.argument("incident_id", type=int)
@click.option("--model", help="provider/model instead of the `rca` route.")
@click.option("--notify", "send", is_flag=True, help="Also send the result to the targets.")
@config_option
@json_option
@handle_errors
def investigate(
    incident_id: int, model: str | None, send: bool, config_path: Path | None, as_json: bool
) -> None:
    """Run root-cause analysis of an incident now, with any model you name."""
    from daemon.airun import investigate_now

    _, settings = load(config_path)
    if model is not None:
        model_option(settings, model)
    outcome = asyncio.run(investigate_now(settings, incident_id, model, send))
    if outcome is None:
        click.echo(f"watchkeeper: no incident #{incident_id}", err=True)
        sys.exit(1)
    record = outcome.investigation
    if as_json:
        emit_json(
            {
                "incident_id": incident_id,
                "model": record.model,
                "rca": record.rca,
                "skipped": record.skipped,
                "dropped": record.dropped,
                "calls": ledger_json(outcome.result) if outcome.result else [],
            }
        )
    else:
        click.echo(outcome.message.title)
        click.echo("")
        click.echo(outcome.message.body)
    if record.rca is None:
        sys.exit(1)


@click.command()
@click.option("--send", is_flag=True, help="Queue it for the targets that want `report`.")
@config_option
@handle_errors
def digest(send: bool, config_path: Path | None) -> None:
    """The daily digest of the last 24 h, now (the daemon sends it at [digest] cron)."""
    from daemon.airun import digest_now

    _, settings = load(config_path)
    message = asyncio.run(digest_now(settings, send))
    click.echo(message.title)
    click.echo("")
    click.echo(message.body)


def _demo() -> click.Command:
    from daemon.demo import demo

    return demo


COMMANDS = [keys, models, route, costs, audit, ask, investigate, digest, _demo()]
