"""The `watchkeeper` command line. Imports stay inside commands so `--help` is fast.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error — always with a one-line
message on stderr, never a traceback (set WATCHKEEPER_DEBUG=1 to see one for a bug).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from daemon import __version__

if TYPE_CHECKING:
    from daemon.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = (
    "Config file. Default: $WATCHKEEPER_CONFIG, ~/.config/watchkeeper/config.toml, "
    "/etc/watchkeeper/config.toml."
)


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=CONFIG_HELP,
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(fn)


def handle_errors(fn: F) -> F:
    """Turn known errors into one line on stderr and the documented exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from daemon.errors import ConfigError, SecretError, StateError

        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        except StateError as exc:
            click.echo(f"watchkeeper: {exc}", err=True)
            sys.exit(1)
        except SecretError as exc:
            click.echo(f"watchkeeper: {exc}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("WATCHKEEPER_DEBUG"):
                raise
            from daemon.logging import redact

            click.echo(
                redact(
                    f"watchkeeper: internal error: {type(exc).__name__}: {exc} "
                    "(set WATCHKEEPER_DEBUG=1 for a traceback, and please report it)"
                ),
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def load(config_path: Path | None, *, need_state: bool = True) -> tuple[Path, Settings]:
    from daemon.config import check_state_dir, find_config, load_settings
    from daemon.errors import ConfigError
    from daemon.logging import configure

    # Commands other than `run` log only warnings, to stderr, so stdout stays parseable.
    configure("warning", "auto", stream=sys.stderr)
    path = find_config(config_path)
    settings = load_settings(path)
    if need_state:
        problems = check_state_dir(settings.daemon.state_dir)
        if problems:
            raise ConfigError(str(path), problems)
    return path, settings


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="watchkeeper")
def main() -> None:
    """watchkeeper stands watch over your infrastructure: scheduled health checks, incidents
    notified once, and (with models configured) local triage and cloud root-cause analysis.

    Start with `watchkeeper run --once --config config.example.toml`.
    Shell completion: eval "$(_WATCHKEEPER_COMPLETE=bash_source watchkeeper)".
    """


# -- run --------------------------------------------------------------------------------------


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Run every enabled check once, notify, and exit.")
@json_option
@handle_errors
def run(config_path: Path | None, once: bool, as_json: bool) -> None:
    """Run the daemon in the foreground (systemd/launchd run this)."""
    from daemon.lock import StateLock
    from daemon.logging import configure

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
        from daemon.service import Service

        code = asyncio.run(Service(path, settings).serve())
    sys.exit(code)


def _run_once(settings: Settings, as_json: bool) -> None:
    from daemon import output
    from daemon.service import run_once

    report = asyncio.run(run_once(settings))
    if as_json:
        emit_json(output.once_json(report))
        return
    click.echo(output.results_table(report.results))
    for line in output.event_lines(report.events):
        click.echo(line)
    for line in output.delivery_lines(report.delivery):
        click.echo(line)
    click.echo(output.once_summary(report, settings.daemon.state_dir))


# -- check, status, incidents -----------------------------------------------------------------


@main.command()
@config_option
@click.argument("names", nargs=-1)
@click.option("--record", is_flag=True, help="Also record results and update incidents.")
@json_option
@handle_errors
def check(config_path: Path | None, names: tuple[str, ...], record: bool, as_json: bool) -> None:
    """Run checks now and print their results (all enabled checks unless NAMES are given).

    Exits 1 when any check is failing or could not run, 0 otherwise.
    """
    from daemon import output
    from daemon.checkrun import run_named

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
        click.echo(output.results_table(results))
        for line in output.event_lines(events):
            click.echo(line)
    if any(r.status in ("failing", "error") for r in results):
        sys.exit(1)


@main.command()
@config_option
@json_option
@handle_errors
def status(config_path: Path | None, as_json: bool) -> None:
    """The last result of every check, and open incidents."""
    from daemon import output
    from daemon.store import Store

    _, settings = load(config_path)
    store = Store.open(settings.daemon.state_dir)
    try:
        last = store.last_results()
        open_incidents = store.list_incidents(include_resolved=False)
        outbox = store.outbox_counts()
    finally:
        store.close()
    configured = [c.name for c in settings.checks]
    if as_json:
        emit_json(output.status_json(configured, last, open_incidents, outbox))
    else:
        click.echo(output.status_text(configured, last, open_incidents, outbox))


@main.group(invoke_without_command=True)
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@json_option
@click.pass_context
@handle_errors
def incidents(ctx: click.Context, config_path: Path | None, show_all: bool, as_json: bool) -> None:
    """List open incidents (newest first)."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    if ctx.invoked_subcommand is not None:
        return
    from daemon import output
    from daemon.store import Store

    _, settings = load(config_path)
    store = Store.open(settings.daemon.state_dir)
    try:
        rows = store.list_incidents(include_resolved=show_all)
    finally:
        store.close()
    if as_json:
        emit_json([i.model_dump(mode="json") for i in rows])
    else:
        click.echo(output.incidents_table(rows))


@incidents.command("show")
@click.argument("incident_id", type=int)
@config_option
@json_option
@click.pass_context
@handle_errors
def incidents_show(
    ctx: click.Context, incident_id: int, config_path: Path | None, as_json: bool
) -> None:
    """One incident with its events."""
    from daemon import output
    from daemon.store import Store

    _, settings = load(config_path or (ctx.obj or {}).get("config_path"))
    store = Store.open(settings.daemon.state_dir)
    try:
        found = store.get_incident(incident_id)
    finally:
        store.close()
    if found is None:
        click.echo(f"watchkeeper: no incident #{incident_id}", err=True)
        sys.exit(1)
    incident, events = found
    if as_json:
        emit_json(
            {
                "incident": incident.model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
    else:
        click.echo(output.incident_detail(incident, events))


# -- config -----------------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Validate the configuration, or print its JSON Schema."""


@config.command("validate")
@config_option
@handle_errors
def config_validate(config_path: Path | None) -> None:
    """Print `ok`, or every problem as `file: key: what is wrong, what to do` (exit 2)."""
    load(config_path)
    click.echo("ok")


@config.command("schema")
@handle_errors
def config_schema() -> None:
    """Print the JSON Schema of the config file (for editor completion)."""
    from daemon.config import json_schema

    emit_json(json_schema())


# -- notify -----------------------------------------------------------------------------------


@main.group()
def notify() -> None:
    """Notification targets."""


@notify.command("test")
@click.argument("name", required=False)
@config_option
@json_option
@handle_errors
def notify_test(name: str | None, config_path: Path | None, as_json: bool) -> None:
    """Send a test message to every target (or NAME) and report each outcome."""
    from daemon.checkrun import send_test

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
            click.echo(f"{o.target}: " + ("ok" if o.ok else f"FAILED — {o.error}"))
    if not all(o.ok for o in outcomes):
        sys.exit(1)


def _register_model_commands() -> None:
    from daemon.cli_ai import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


def _register_sweep_commands() -> None:
    from daemon.cli_sweeps import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_model_commands()
_register_sweep_commands()

if __name__ == "__main__":
    main()
