"""The files a wheel carries for setting watchkeeper up on a machine without the source tree:
the example config (`watchkeeper init` writes it), the systemd unit and the launchd plist
(`watchkeeper service unit` fills in this installation's paths).

These files are the only copies in the repository; README, tests and commands read them from
here. Nothing in this package imports the rest of watchkeeper.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

EXAMPLE_CONFIG = "config.example.toml"
SYSTEMD_UNIT = "watchkeeper.service"
LAUNCHD_PLIST = "io.watchkeeper.agent.plist"
LAUNCHD_LABEL = "io.watchkeeper.agent"


def read_text(name: str) -> str:
    """One of the files above, as installed (wheel, editable install or source tree)."""
    return (files(__name__) / name).read_text(encoding="utf-8")


def read_bytes(name: str) -> bytes:
    return (files(__name__) / name).read_bytes()


def write_new_file(path: Path, data: bytes, *, mode: int, dir_mode: int = 0o755) -> list[Path]:
    """Write `data` to `path`, which must not exist (FileExistsError, even for a dangling
    symlink), with exactly `mode` whatever the umask: a root umask of 077 would otherwise leave
    a config the service's own user cannot read. Missing parent directories are created with
    `dir_mode` (existing ones are never changed); returns those it created, outermost first."""
    created: list[Path] = []
    parent = path.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    created.reverse()
    for directory in created:
        directory.mkdir(mode=dir_mode)
        os.chmod(directory, dir_mode)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return created


def starter_config(path: Path) -> str:
    """The example config as `watchkeeper init` writes it: the commands in its header name the
    file where it now lives."""
    import shlex

    text = read_text(EXAMPLE_CONFIG)
    return text.replace("--config config.example.toml", f"--config {shlex.quote(str(path))}")
