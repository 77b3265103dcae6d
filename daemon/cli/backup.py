"""`watchkeeper backup PATH`: a consistent copy of the state database, taken while the daemon
runs (SQLite's online backup API), 0600, never over an existing file."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from daemon.cli._common import config_option, echo, handle_errors, load


@click.command()
@click.argument("destination", type=click.Path(path_type=Path))
@config_option
@handle_errors
def backup(destination: Path, config_path: Path | None) -> None:
    """Copy the state database to DESTINATION (a new file, or a directory to put a dated copy
    in), consistent even while the daemon writes. Restore: stop the daemon, copy it back."""
    from daemon.errors import ConfigError, ConfigProblem
    from daemon.store.backup import backup_database
    from daemon.store.database import DB_NAME
    from daemon.util.time import utcnow

    path, settings = load(config_path, need_state=False)
    if settings.store.url is not None:
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "store.url",
                    "the state lives in PostgreSQL: back it up with pg_dump (or the "
                    "database's own backups); `watchkeeper backup` copies the SQLite file",
                )
            ],
        )
    state_dir = settings.daemon.state_dir
    source = state_dir / DB_NAME
    if not source.is_file():
        raise ConfigError(
            str(path),
            [
                ConfigProblem(
                    "daemon.state_dir",
                    f"no state database {source}: watchkeeper has not run with this config "
                    "yet, or its state lives elsewhere (under systemd: /var/lib/watchkeeper)",
                )
            ],
        )
    target = destination.expanduser()
    if target.is_dir():
        target = target / f"watchkeeper-{utcnow():%Y%m%dT%H%M%SZ}.db"
    try:
        report = backup_database(source, target)
    except FileExistsError:
        echo(f"{target}: already exists; not overwritten (choose a new name)", err=True)
        sys.exit(2)
    except OSError as exc:
        echo(f"{target}: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(2)
    echo(
        f"backed up {source} to {report.destination} ({report.size_bytes:,} bytes, "
        f"schema version {report.schema_version}, mode 0600, integrity {report.integrity})"
    )
    if report.integrity != "ok":
        sys.exit(1)
