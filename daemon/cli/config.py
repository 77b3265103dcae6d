"""`watchkeeper config validate|schema`."""

from __future__ import annotations

from pathlib import Path

import click

from daemon.cli._common import config_option, echo, emit_json, handle_errors, load


@click.group()
def config() -> None:
    """Validate the configuration, or print its JSON Schema."""


@config.command("validate")
@config_option
@handle_errors
def config_validate(config_path: Path | None) -> None:
    """Print `ok`, or every problem as `file: key: what is wrong, what to do` (exit 2)."""
    load(config_path)
    echo("ok")


@config.command("schema")
@config_option
@handle_errors
def config_schema(config_path: Path | None) -> None:
    """Print the JSON Schema of the config file (for editor completion).

    The schema is the same for every file; --config is accepted (and not read) so that every
    command takes the same options."""
    from daemon.config.load import json_schema

    emit_json(json_schema())
