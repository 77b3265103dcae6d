"""`watchkeeper service unit`: the shipped systemd unit or launchd plist with the real paths of
this installation — its `watchkeeper` command, the config, the state directory, the user —
printed, or written to a new file. It never overwrites one."""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath
from typing import NoReturn

import click

from daemon.cli._common import echo, handle_errors

SYSTEMD_CONFIG = "/etc/watchkeeper/config.toml"


@click.group()
def service() -> None:
    """Run watchkeeper as a service: its systemd unit or launchd plist, for this installation."""


@service.command("unit")
@click.option("--systemd", "kind", flag_value="systemd", help="A systemd service (Linux default).")
@click.option("--launchd", "kind", flag_value="launchd", help="A launchd agent (macOS default).")
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The config the service reads. Default: {SYSTEMD_CONFIG} (systemd), "
    "~/.config/watchkeeper/config.toml (launchd).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Its state directory. Default: /var/lib/watchkeeper (systemd's StateDirectory=), "
    "~/.local/state/watchkeeper (launchd).",
)
@click.option(
    "--user",
    default=None,
    help="systemd: run as this existing system account instead of a dynamic user.",
)
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write it to this new file (never over an existing one) instead of printing it.",
)
@handle_errors
def unit(
    kind: str | None,
    config_path: Path | None,
    state_dir: Path | None,
    user: str | None,
    write_to: Path | None,
) -> None:
    """Print (or --write) the service definition with this installation's paths filled in."""
    import shlex

    from daemon import __version__
    from daemon.data import LAUNCHD_PLIST, SYSTEMD_UNIT, read_bytes, read_text
    from daemon.data.units import Install, hidden_paths, launchd_plist, systemd_unit

    kind = kind or ("launchd" if sys.platform == "darwin" else "systemd")
    if kind == "launchd" and user is not None:
        _refuse("--user applies to systemd; a LaunchAgent runs as the user who loads it")
    home = PurePosixPath(Path.home())
    default_config = SYSTEMD_CONFIG if kind == "systemd" else _user_config()
    install = Install(
        command=this_command(),
        config=_absolute(config_path or Path(default_config)),
        state_dir=_absolute(state_dir) if state_dir is not None else None,
        user=user,
    )
    try:
        if kind == "systemd":
            header = (
                f"# Written by `watchkeeper service unit` (watchkeeper {__version__}) for the "
                f"installation at {install.command[0]}."
            )
            data = systemd_unit(read_text(SYSTEMD_UNIT), install, header=header).encode()
        else:
            data = launchd_plist(read_bytes(LAUNCHD_PLIST), install, home=home)
    except ValueError as exc:
        _refuse(str(exc))
    if kind == "systemd":
        for path in hidden_paths(install):
            echo(
                f"warning: {path} is under /home, /root or /run/user, which the unit's "
                "ProtectHome=yes hides from the service: install watchkeeper and its config "
                "outside home directories (e.g. /opt/watchkeeper, /etc/watchkeeper)",
                err=True,
            )
    if not Path(install.config).is_file():
        echo(
            f"note: {install.config} does not exist yet: "
            f"`watchkeeper init --path {shlex.quote(str(install.config))}` writes one",
            err=True,
        )
    if write_to is None:
        # The file itself, byte for byte: it is our own template, not text to render.
        click.echo(data.decode("utf-8"), nl=False)
        return
    _write(write_to, data, home if kind == "launchd" else None)


def _write(target: Path, data: bytes, launchd_home: PurePosixPath | None) -> None:
    """Write a new file; a launchd agent also gets its log directory, which launchd does not
    create. Then the commands that load it."""
    import shlex

    from daemon.data import LAUNCHD_LABEL, write_new_file
    from daemon.data.units import log_dir

    target = Path(os.path.abspath(target.expanduser()))
    if target.exists() or target.is_symlink():
        _refuse(f"{target}: already exists; not overwritten (move it away first)")
    try:
        write_new_file(target, data, mode=0o644)
        if launchd_home is not None:
            Path(log_dir(launchd_home)).mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        _refuse(f"{target}: already exists; not overwritten (move it away first)")
    except OSError as exc:
        _refuse(f"{target}: cannot write: {exc.strerror or exc}")
    echo(f"wrote {target}")
    if launchd_home is None:
        echo("next: systemctl daemon-reload && systemctl enable --now watchkeeper")
        echo("      journalctl -u watchkeeper -f")
    else:
        echo(f"next: launchctl bootstrap gui/$(id -u) {shlex.quote(str(target))}")
        echo(f"      launchctl print gui/$(id -u)/{LAUNCHD_LABEL}")
        echo(f"      tail -f {shlex.quote(str(log_dir(launchd_home)))}/watchkeeper.log")


def this_command() -> tuple[str, ...]:
    """The `watchkeeper` command of the running installation: the console script beside this
    interpreter (a venv or pipx), else in its scripts directory (pip install --user, a system
    install), else this interpreter with `-m daemon`. The interpreter path is kept as given,
    never resolved: a venv's python is a symlink to the system one."""
    import sysconfig

    python = Path(os.path.abspath(sys.executable))
    schemes = [sysconfig.get_path("scripts"), sysconfig.get_path("scripts", f"{os.name}_user")]
    for directory in (python.parent, *(Path(s) for s in schemes if s)):
        script = directory / "watchkeeper"
        if script.is_file() and os.access(script, os.X_OK):
            return (str(script),)
    return (str(python), "-m", "daemon")


def _user_config() -> str:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return str(Path(xdg) / "watchkeeper" / "config.toml")


def _absolute(path: Path) -> PurePosixPath:
    return PurePosixPath(os.path.abspath(path.expanduser()))


def _refuse(message: str) -> NoReturn:
    echo(f"watchkeeper: {message}", err=True)
    sys.exit(2)
