"""`watchkeeper keys set|list|delete|test PROVIDER`: provider API keys on this machine."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daemon.cli._blocks import BLANK, Block, Column, Table, line
from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    known_provider,
    load,
    model_option,
    reported,
)
from daemon.cli._complete import complete_models, complete_providers
from daemon.cli._output import show

if TYPE_CHECKING:
    from daemon.ai.runner import AIResult
    from daemon.config.settings import Settings


@click.group()
def keys() -> None:
    """Provider API keys on this machine — never in the config file.

    A provider's key is looked up in this order; the first one found wins:

    \b
    1. a systemd credential PROVIDER_api_key, from the unit's
       LoadCredentialEncrypted=anthropic_api_key:/etc/watchkeeper/anthropic_api_key.cred
       (made with `systemd-creds encrypt`) or LoadCredential= with a 0600 file
    2. the OS keyring, service "watchkeeper", user PROVIDER (`keys set` stores it there;
       headless Linux usually has no keyring: use 1 or 3)
    3. the environment: ANTHROPIC_API_KEY, OPENAI_API_KEY, GEMINI_API_KEY or
       GOOGLE_API_KEY, COHERE_API_KEY or CO_API_KEY (for a service: Environment= or
       EnvironmentFile= in the unit)

    A provider you declare ([providers.NAME]) names its key with key = "secret:NAME",
    resolved the same way.
    """


@keys.command("list")
@config_option
@json_option
@handle_errors
def keys_list(config_path: Path | None, as_json: bool) -> None:
    """Where each provider's key comes from — never the value."""
    from daemon.ai.keys import keyring_status, resolve_key
    from daemon.config.ai import BUILTIN_PROVIDERS

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
    blocks: list[Block] = [
        Table(
            [Column("PROVIDER"), Column("KEY"), Column("FROM", free=True)],
            [[str(row["provider"]), str(row["source"]), str(row["where"] or "")] for row in rows],
        )
    ]
    if not status.usable:
        blocks += [
            BLANK,
            line(
                f"no usable OS keyring here ({status.backend}): use systemd credentials or "
                "environment variables (`watchkeeper keys --help` shows both)"
            ),
        ]
    show(*blocks)


@keys.command("set")
@click.argument("provider", shell_complete=complete_providers)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the key from standard input.")
@config_option
@handle_errors
def keys_set(provider: str, from_stdin: bool, config_path: Path | None) -> None:
    """Store PROVIDER's key in the OS keyring (hidden prompt, or --stdin)."""
    from daemon.ai.keys import keyring_status, no_keyring_message, store_key

    _, settings = load(config_path, need_state=False)
    known_provider(settings, provider)
    status = keyring_status()
    if not status.usable:
        echo(f"watchkeeper: {no_keyring_message(provider, status.backend)}", err=True)
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
    echo(f"stored the {provider} key in the keyring (service watchkeeper, user {provider})")


@keys.command("delete")
@click.argument("provider", shell_complete=complete_providers)
@config_option
@handle_errors
def keys_delete(provider: str, config_path: Path | None) -> None:
    """Remove PROVIDER's key from the OS keyring."""
    from daemon.ai.keys import delete_key, keyring_status, no_keyring_message

    _, settings = load(config_path, need_state=False)
    known_provider(settings, provider)
    status = keyring_status()
    if not status.usable:
        echo(f"watchkeeper: {no_keyring_message(provider, status.backend)}", err=True)
        sys.exit(1)
    if delete_key(provider):
        echo(f"deleted the {provider} key from the keyring")
    else:
        echo(f"no {provider} key in the keyring")


@keys.command("test")
@click.argument("provider", shell_complete=complete_providers)
@click.option(
    "--model",
    help="provider/model to call (default: the provider's cheapest).",
    shell_complete=complete_models,
)
@config_option
@json_option
@handle_errors
def keys_test(provider: str, model: str | None, config_path: Path | None, as_json: bool) -> None:
    """The smallest real call to PROVIDER: prints latency and cost."""

    from daemon.cli.views import cost_line, ledger_json

    _, settings = load(config_path)
    reported("no model answered", "model call failed")  # FAILED — why, below
    known_provider(settings, provider)
    if model is not None and model_option(settings, model).provider != provider:
        raise click.UsageError(f"--model {model} is not a {provider} model")
    try:
        result = asyncio.run(test_key(settings, provider, model))
    except LookupError as exc:
        raise click.UsageError(str(exc).strip("'\"")) from None
    if as_json:
        emit_json({"ok": result.ok, "calls": ledger_json(result)})
    elif result.ok and result.response is not None:
        row = result.calls[-1]
        echo(
            f"{provider}: ok — {row.provider}/{row.model} at {row.host} answered in "
            f"{result.response.latency_ms:.0f} ms (key from {row.key_source})"
        )
        echo(cost_line(result))
    else:
        echo(f"{provider}: FAILED — {result.reason}", err=True)
    if not result.ok:
        sys.exit(1)


async def test_key(settings: Settings, provider: str, model: str | None) -> AIResult:
    from daemon.llm import PROVIDERS, provider_info
    from daemon.llm.types import ModelRequest

    test_model = provider_info(provider).test_model if provider in PROVIDERS else None
    ref = model or f"{provider}/{test_model or _first_model(settings, provider)}"
    request = ModelRequest.ask(
        "Reply with the single word: ok", max_output_tokens=16, temperature=0.0
    )
    from daemon.runtime import open_runtime

    async with open_runtime(settings) as rt:
        return await rt.ai.run("test", request, models=[ref])


def _first_model(settings: Settings, provider: str) -> str:
    from daemon.config.ai import TASKS

    for task in TASKS:
        for ref in settings.routing.chain(task):
            if ref.startswith(provider + "/"):
                return ref.split("/", 1)[1]
    raise LookupError(
        f"no model of {provider} in [routing]; name one with --model {provider}/MODEL"
    )
