"""`watchkeeper init [--path PATH]`: write the commented starter config where the daemon will
look for it, and say what to do next. It never overwrites a file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from daemon.cli._common import echo, handle_errors


def default_config_path() -> Path:
    """Where `watchkeeper run` without --config would read: $WATCHKEEPER_CONFIG; as root the
    system path the systemd unit uses; otherwise the user's own (~/.config/watchkeeper)."""
    from daemon.config.paths import default_config_paths

    env = os.environ.get("WATCHKEEPER_CONFIG")
    if env:
        return Path(env).expanduser()
    user, system = default_config_paths()
    return system if hasattr(os, "geteuid") and os.geteuid() == 0 else user


@click.command()
@click.option(
    "--path",
    "--config",
    "-c",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write it. Default: where the daemon reads it — $WATCHKEEPER_CONFIG, else "
    "/etc/watchkeeper/config.toml as root, else ~/.config/watchkeeper/config.toml.",
)
@handle_errors
def init(path: Path | None) -> None:
    """Write a commented starter config (the documented example: checks of this machine only,
    no notification target active) and print the next steps. Never overwrites a file."""
    from daemon.data import starter_config, write_new_file

    target = Path(os.path.abspath((path or default_config_path()).expanduser()))
    exists = f"{target}: already exists; not overwritten (edit it, or move it away first)"
    if target.exists() or target.is_symlink():
        echo(exists, err=True)
        sys.exit(2)
    try:
        created = write_new_file(target, starter_config(target).encode(), mode=0o644)
    except FileExistsError:  # created meanwhile
        echo(exists, err=True)
        sys.exit(2)
    except OSError as exc:
        echo(f"{target}: cannot write: {exc.strerror or exc}", err=True)
        sys.exit(2)
    for directory in created:
        echo(f"created {directory}/ (mode 0755)")
    echo(f"wrote {target} (mode 0644; keys and secret URLs never go in it: write secret:NAME)")
    for line in next_steps(target):
        echo(line)


def next_steps(config: Path) -> list[str]:
    import shlex

    c = f"--config {shlex.quote(str(config))}"
    if sys.platform == "darwin":
        unit = "~/Library/LaunchAgents/io.watchkeeper.agent.plist"
        install = [
            f"  5. watchkeeper service unit --launchd {c} --write {unit}",
            f"     launchctl bootstrap gui/$(id -u) {unit}",
        ]
    else:
        sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
        unit = "/etc/systemd/system/watchkeeper.service"
        install = [
            f"  5. {sudo}watchkeeper service unit --systemd {c} --write {unit}",
            f"     {sudo}systemctl daemon-reload && {sudo}systemctl enable --now watchkeeper",
        ]
    return [
        "next:",
        "  1. edit it: your own checks, and uncomment or add a [[notify]] target",
        f"  2. watchkeeper config validate {c}",
        f"  3. watchkeeper notify test {c}",
        f"  4. watchkeeper check {c}",
        *install,
    ]
