"""`watchkeeper ack` and `silence add|list|expire`: telling watchkeeper "I'm on it" and "this
is planned work".

These commands write the acknowledgements and silences tables; a running daemon reads them
every cycle and reminder tick (within a minute), and never overwrites them. An acknowledgement
notice is queued in the same transaction and delivered at once by this process (the outbox's
claims keep a running daemon from sending it twice).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from datetime import datetime
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
from daemon.cli._complete import complete_checks, complete_incidents, complete_tags

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.models import Silence

NAME_CHARS = 64


def _who(by: str | None) -> str:
    """The name an operator gives (`--by`), else the OS user: one short printable line."""
    name = by if by is not None else getpass.getuser()
    name = " ".join(name.split())
    if not name or len(name) > NAME_CHARS or not name.isprintable():
        raise click.BadParameter(
            f"give a printable name of at most {NAME_CHARS} characters", param_hint="--by"
        )
    return name


@click.command()
@click.argument("incident_id", type=int, shell_complete=complete_incidents)
@click.option("--note", default="", help="What you are doing about it (shown in the notice).")
@click.option("--by", "by_name", help="Who is on it. Default: your user name.")
@config_option
@json_option
@handle_errors
def ack(
    incident_id: int, note: str, by_name: str | None, config_path: Path | None, as_json: bool
) -> None:
    """Acknowledge an incident: reminders stop; changes and resolution still notify."""
    from daemon.engine.incidents import event_for
    from daemon.engine.quiet import Quietness
    from daemon.models import Acknowledgement
    from daemon.notify.render import render_event
    from daemon.notify.routing import route
    from daemon.util.text import one_line
    from daemon.util.time import utcnow

    _, settings = load(config_path)
    who = _who(by_name)
    note = one_line(note)[:300]
    now = utcnow()
    with open_store(settings) as store:
        found = store.incidents.get(incident_id)
        if found is None:
            echo(f"watchkeeper: no incident #{incident_id}", err=True)
            sys.exit(1)
        incident = found[0]
        if incident.status != "open":
            echo(
                f"watchkeeper: incident #{incident_id} is resolved: nothing to acknowledge",
                err=True,
            )
            sys.exit(1)
        detail = f"Acknowledged by {who}" + (f": {note}" if note else ".")
        event = event_for(incident, "acknowledged", now, detail)
        event.acknowledged_by = who
        tags = {spec.name: spec.tags for spec in settings.checks}
        quiet = Quietness(store.controls.silences(active_at=now), settings.maintenance, tags, now)
        held = quiet.of(incident.check)
        event.held = held.reason if held else None
        outbox = (
            route([event], settings.notify, tags, messages=[render_event(event)])
            if settings.incidents.notify_acknowledged
            else []
        )
        ack_record = Acknowledgement(incident_id, who, now, note)
        earlier = store.controls.acknowledge(ack_record, event, outbox)
    if earlier is not None:
        if as_json:
            emit_json(_ack_json(earlier, already=True))
        else:
            echo(
                f"incident #{incident_id} was already acknowledged by {earlier.by} at "
                f"{earlier.at:%Y-%m-%d %H:%M} UTC"
            )
        return
    delivered = asyncio.run(_deliver(settings)) if outbox else 0
    if as_json:
        emit_json({**_ack_json(ack_record, already=False), "notified": len(outbox)})
        return
    echo(
        f"acknowledged incident #{incident_id} ({incident.check}) as {who}: reminders stop; "
        "a change of severity and the resolution are still notified."
    )
    if held is not None:
        echo(f"the notice is held: {held.reason}")
    elif outbox:
        echo(f"notice sent to {delivered} of {len(outbox)} target(s); the rest are retried.")


def _ack_json(ack: Any, *, already: bool) -> dict[str, Any]:
    return {
        "incident_id": ack.incident_id,
        "acknowledged_by": ack.by,
        "at": ack.at.isoformat(),
        "note": ack.note,
        "already_acknowledged": already,
    }


async def _deliver(settings: Settings) -> int:
    from daemon.runtime import open_runtime

    async with open_runtime(settings) as rt:
        return (await rt.notifier.deliver_due()).delivered


# -- silences -----------------------------------------------------------------------------------


@click.group()
def silence() -> None:
    """Hold notifications of some checks for a while (checks keep running and recording)."""


@silence.command("add")
@click.option("--check", "check_name", shell_complete=complete_checks, help="One check.")
@click.option("--tag", shell_complete=complete_tags, help="Every check with this tag.")
@click.option("--match", "glob", help="Check names matching a glob, e.g. 'db-*'.")
@click.option("--for", "for_", required=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--reason", required=True, help="Why (shown with the held notices).")
@click.option("--start", "start", help="When it begins (ISO 8601). Default: now.")
@click.option("--by", "by_name", help="Who asked. Default: your user name.")
@config_option
@json_option
@handle_errors
def silence_add(
    check_name: str | None,
    tag: str | None,
    glob: str | None,
    for_: str,
    reason: str,
    start: str | None,
    by_name: str | None,
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Hold the notifications of a check, a tag or a glob of checks."""
    from daemon.models import parse_duration
    from daemon.util.text import one_line
    from daemon.util.time import utcnow

    given = [(k, v) for k, v in (("check", check_name), ("tag", tag), ("match", glob)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --check, --tag or --match")
    matcher, pattern = given[0]
    _, settings = load(config_path)
    if matcher == "check" and pattern not in {c.name for c in settings.checks}:
        raise click.BadParameter(f"no check named {pattern!r} in the config", param_hint="--check")
    try:
        length = parse_duration(for_)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None
    if length.total_seconds() <= 0:
        raise click.BadParameter("must be longer than 0", param_hint="--for")
    now = utcnow()
    begins = _instant(start) if start else now
    reason = one_line(reason)[:300]
    if not reason:
        raise click.BadParameter("say why", param_hint="--reason")
    with open_store(settings) as store:
        created = store.controls.add_silence(
            matcher,  # type: ignore[arg-type]
            pattern,
            starts_at=begins,
            ends_at=begins + length,
            reason=reason,
            by=_who(by_name),
            now=now,
        )
    if as_json:
        emit_json(_silence_json(created, now))
        return
    echo(
        f"silence #{created.id} holds notifications of --{matcher} {pattern} from "
        f"{_clock(created.starts_at)} until {_clock(created.ends_at)}: {reason}"
    )
    echo("An incident still open when it ends is notified once then.")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include silences that have ended.")
@config_option
@json_option
@handle_errors
def silence_list(show_all: bool, config_path: Path | None, as_json: bool) -> None:
    """Silences in force and to come (with --all: every one)."""
    from daemon.util.tables import table
    from daemon.util.time import utcnow

    _, settings = load(config_path)
    now = utcnow()
    with open_store(settings) as store:
        found = store.controls.silences() if show_all else store.controls.silences(since=now)
    if as_json:
        emit_json([_silence_json(s, now) for s in found])
        return
    if not found:
        echo("no silences" if show_all else "no silences in force or to come")
        return
    rows = [
        [
            f"#{s.id}",
            _state(s, now),
            f"--{s.matcher} {s.pattern}",
            _clock(s.starts_at),
            _clock(s.until),
            s.created_by,
            s.reason,
        ]
        for s in found
    ]
    echo(table(["ID", "STATE", "HOLDS", "FROM", "UNTIL", "BY", "REASON"], rows))


@silence.command("expire")
@click.argument("silence_id", type=int)
@config_option
@json_option
@handle_errors
def silence_expire(silence_id: int, config_path: Path | None, as_json: bool) -> None:
    """End a silence now; held incidents still open are notified at the next cycle."""
    from daemon.util.time import utcnow

    _, settings = load(config_path)
    now = utcnow()
    with open_store(settings) as store:
        found = store.controls.expire(silence_id, now)
    if found is None:
        echo(f"watchkeeper: no silence #{silence_id}", err=True)
        sys.exit(1)
    if as_json:
        emit_json(_silence_json(found, now))
        return
    if found.expired_at == now:
        echo(
            f"silence #{silence_id} expired; incidents it held that are still open are notified "
            "within a minute (the daemon's next tick)"
        )
    else:
        echo(f"silence #{silence_id} had already ended at {_clock(found.until)}")


def _state(s: Silence, now: datetime) -> str:
    if s.expired_at is not None and s.expired_at <= now:
        return "expired"
    if s.until <= now:
        return "ended"
    return "active" if s.starts_at <= now else "pending"


def _silence_json(s: Silence, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "state": _state(s, now),
        "matcher": s.matcher,
        "pattern": s.pattern,
        "starts_at": s.starts_at.isoformat(),
        "ends_at": s.ends_at.isoformat(),
        "expired_at": None if s.expired_at is None else s.expired_at.isoformat(),
        "reason": s.reason,
        "created_by": s.created_by,
        "created_at": s.created_at.isoformat(),
    }


def _instant(text: str) -> datetime:
    from daemon.util.time import as_utc

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-12-24T22:00Z", param_hint="--start"
        ) from None
    if value.tzinfo is None:
        raise click.BadParameter("give a timezone, e.g. 2026-12-24T22:00Z", param_hint="--start")
    return as_utc(value)


def _clock(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"
