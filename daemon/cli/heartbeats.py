"""`watchkeeper ping NAME` and `heartbeat token NAME`: jobs checking in on `heartbeat` checks.

`ping` writes to the state database directly (a job on this machine needs no token); with a
command after `--` it runs it, pings `start` first and the exit code after. `heartbeat token`
generates a ping token for the listener's `/ping/<token>`, shows it once and stores only its
SHA-256.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from daemon.cli._complete import complete_heartbeats

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.models import Ping, PingKind

TAIL_CHARS = 200


def _heartbeat(settings: Settings, name: str) -> None:
    """A usage error unless NAME is a configured heartbeat check."""
    names = [c.name for c in settings.checks if c.type == "heartbeat"]
    if name not in names:
        known = ", ".join(names) or "none configured"
        raise click.BadParameter(f"no heartbeat check named {name!r} (heartbeat checks: {known})")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", shell_complete=complete_heartbeats)
@click.option("--start", "kind", flag_value="start", help="The job is starting.")
@click.option("--fail", "kind", flag_value="fail", help="The job failed.")
@click.option("--exit-code", type=click.IntRange(0, 255), help="The job's exit code (0: ok).")
@click.option("--message", "-m", default="", help="A short note (the first 200 characters).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@config_option
@json_option
@handle_errors
def ping(
    name: str,
    kind: str | None,
    exit_code: int | None,
    message: str,
    command: tuple[str, ...],
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Check in on a heartbeat check — or run `-- COMMAND…` and report how it went.

    \b
    backup.sh && watchkeeper ping nightly-backup
    watchkeeper ping nightly-backup -- /usr/local/bin/backup.sh --full
    """

    _, settings = load(config_path)
    _heartbeat(settings, name)
    if command and (kind or exit_code is not None):
        raise click.UsageError("give a command after --, or --start/--fail/--exit-code, not both")
    with open_store(settings) as store:
        if not command:
            recorded = _record(store, name, _kind(kind, exit_code), exit_code, message)
            if as_json:
                emit_json(_ping_json(recorded))
            else:
                echo(f"{name}: {recorded.kind} recorded")
            return
        _record(store, name, "start", None, message or " ".join(command))
        code, tail = _run(command)
        recorded = _record(store, name, _kind(None, code), code, tail)
    if as_json:
        emit_json(_ping_json(recorded))
    else:
        echo(f"{name}: `{' '.join(command)}` exited {code}; {recorded.kind} recorded")
    sys.exit(code)


def _kind(kind: str | None, exit_code: int | None) -> PingKind:
    if kind == "start":
        return "start"
    if kind == "fail" or (exit_code is not None and exit_code != 0):
        return "fail"
    return "success"


def _record(store: Any, name: str, kind: PingKind, exit_code: int | None, message: str) -> Ping:
    import getpass

    from daemon.models import Ping
    from daemon.util.text import clip, one_line
    from daemon.util.time import utcnow

    recorded = Ping(
        name,
        utcnow(),
        kind,
        exit_code,
        clip(one_line(message), TAIL_CHARS),
        f"cli {getpass.getuser()}",
    )
    store.heartbeats.record(recorded)
    return recorded


def _run(command: tuple[str, ...]) -> tuple[int, str]:
    """Run the job with its own stdin/stdout; keep the tail of its stderr for the ping."""
    try:
        proc = subprocess.run(command, stderr=subprocess.PIPE, check=False)
    except OSError as exc:
        return 127, f"could not start {command[0]}: {exc.strerror or exc}"
    sys.stderr.buffer.write(proc.stderr)
    tail = proc.stderr.decode("utf-8", errors="replace").strip().splitlines()
    return (proc.returncode if proc.returncode >= 0 else 128 - proc.returncode), (
        tail[-1] if tail else ""
    )


def _ping_json(p: Ping) -> dict[str, Any]:
    return {
        "check": p.check,
        "at": p.at.isoformat(),
        "kind": p.kind,
        "exit_code": p.exit_code,
        "message": p.message,
    }


@click.group()
def heartbeat() -> None:
    """Heartbeat checks: ping tokens for jobs that check in over HTTP."""


@heartbeat.command("token")
@click.argument("name", shell_complete=complete_heartbeats)
@config_option
@json_option
@handle_errors
def heartbeat_token(name: str, config_path: Path | None, as_json: bool) -> None:
    """Generate (or replace) NAME's ping token and show its URL once."""
    import secrets

    from daemon.service.pings import digest
    from daemon.util.time import utcnow

    _, settings = load(config_path)
    _heartbeat(settings, name)
    spec = settings.check(name)
    configured = getattr(spec, "token", None)
    if configured:
        raise click.UsageError(
            f"{name} has a configured token ({configured}); change that secret "
            "instead, or remove `token` to use a generated one"
        )
    token = secrets.token_urlsafe(24)
    with open_store(settings) as store:
        store.heartbeats.set_token(name, digest(token), utcnow())
    listen = settings.daemon.health_listen or "HOST:PORT"
    url = f"http://{listen}/ping/{token}"
    if as_json:
        emit_json({"check": name, "token": token, "url": url})
        return
    echo(url)
    echo(
        "Shown once: only its SHA-256 is stored. Jobs append /start, /fail or /<exit code> "
        "as they need; a new token replaces the old one at once.",
        err=True,
    )
