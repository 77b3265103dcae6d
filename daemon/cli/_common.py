"""What every command shares: the --config and --json options, loading the config, and
turning known errors into one line on stderr with the documented exit code. Printing is
`daemon.cli._output`'s (`echo` and `emit_json` here are its one-line and JSON forms).

Imports stay inside functions so `watchkeeper --help` loads neither pydantic nor httpx; this
module never imports the command modules or the app.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.models import ModelRef
    from daemon.store import Store

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
            echo(str(exc), err=True)
            sys.exit(2)
        except StateError as exc:
            echo(f"watchkeeper: {exc}", err=True)
            sys.exit(1)
        except SecretError as exc:
            echo(f"watchkeeper: {exc}", err=True)
            sys.exit(2)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # stdout's reader went away (`| head`): not an error of ours
            from daemon.cli._output import stdout_gone

            stdout_gone()
        except Exception as exc:
            if os.environ.get("WATCHKEEPER_DEBUG"):
                raise
            from daemon.logging import redact

            echo(
                redact(
                    f"watchkeeper: internal error: {type(exc).__name__}: {exc} "
                    "(set WATCHKEEPER_DEBUG=1 for a traceback, and please report it)"
                ),
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def load(config_path: Path | None, *, need_state: bool = True) -> tuple[Path, Settings]:
    from daemon.config.load import check_state_dir, find_config, load_settings
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


def open_store(settings: Settings) -> Store:
    """The state `settings` name: the SQLite file in daemon.state_dir, or `[store] url`."""
    from daemon.store import Store

    return Store.open(
        settings.daemon.state_dir, settings.store.url, settings.store.resolved_password()
    )


def reported(*events: str) -> None:
    """The command prints these failures itself (`no model could answer — why`): drop their
    log lines, so each failure reaches the user once. Call after `load`, which sets up the
    log stream; `events` are stable event names (`"no model answered"`)."""
    import logging

    class _Reported(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            event = record.msg.get("event") if isinstance(record.msg, dict) else None
            return event not in events

    for handler in logging.getLogger().handlers:
        if handler.get_name() == "watchkeeper":
            handler.addFilter(_Reported())


def emit_json(data: Any) -> None:
    """JSON for scripts: every control character arrives \\u-escaped (ensure_ascii)."""
    from daemon.cli._output import json

    json(data)


def echo(text: str, *, err: bool = False) -> None:
    """What a person reads in a terminal: evidence, labels and model output may carry escape
    sequences (window titles, colours, cursor moves, bidi overrides); they are shown, never
    run."""
    from daemon.cli._output import text as show_text

    show_text(text, err=err)


def known_provider(settings: Settings, provider: str) -> None:
    """A usage error (exit 2) naming the known providers when PROVIDER is not one."""
    from daemon.config.ai import known_providers, provider_api

    if provider_api(provider, settings.providers) is None:
        known = known_providers(settings.providers)
        raise click.UsageError(f"unknown provider {provider!r}; known: {', '.join(known)}")


def model_option(settings: Settings, model: str) -> ModelRef:
    """`--model provider/model`, checked: a usage error (exit 2) when malformed or unknown."""
    from daemon.models import ModelRef

    try:
        ref = ModelRef.parse(model)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    known_provider(settings, ref.provider)
    return ref
