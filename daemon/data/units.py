"""The shipped systemd unit and launchd plist, filled in with one installation's real paths.

Pure functions over the templates in this package: the template stays the single source of
every setting and comment; only the lines that name a path or the user change. A value a unit
file would have to quote or escape is refused (ValueError), never written half-escaped.
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

SYSTEMD_STATE_ROOT = PurePosixPath("/var/lib")
HIDDEN_BY_PROTECT_HOME = tuple(PurePosixPath(p) for p in ("/home", "/root", "/run/user"))

_UNIT_SAFE = re.compile(r"[A-Za-z0-9._/+@:,=-]+")
"""Characters a path may use unquoted in a unit file: no space, quote, `%` (specifier), `$`
(variable), backslash or newline."""
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}")
_NOT_A_SERVICE_USER = {"root", "nobody"}


@dataclass(frozen=True)
class Install:
    """Where this installation lives and what its service should use."""

    command: tuple[str, ...]
    """The watchkeeper command: its console script, or `python -m daemon`."""
    config: PurePosixPath
    state_dir: PurePosixPath | None = None
    """None: the platform default (systemd: StateDirectory=watchkeeper)."""
    user: str | None = None
    """systemd only; None: DynamicUser=yes."""


def systemd_unit(template: str, install: Install, *, header: str) -> str:
    """The unit with ExecStart=, WATCHKEEPER_CONFIG, StateDirectory= and the user filled in."""
    for part in (*install.command, str(install.config)):
        _unit_safe(part)
    _absolute(install.config, "--config")
    text = _replace_line(template, "ExecStart=", f"ExecStart={' '.join(install.command)} run")
    text = _replace_line(
        text, "Environment=WATCHKEEPER_CONFIG=", f"Environment=WATCHKEEPER_CONFIG={install.config}"
    )
    if install.state_dir is not None:
        text = _replace_line(
            text, "StateDirectory=", f"StateDirectory={state_directory(install.state_dir)}"
        )
    if install.user is not None:
        text = _replace_line(text, "DynamicUser=", f"User={service_user(install.user)}")
    return f"{header}\n{text}"


def state_directory(path: PurePosixPath) -> str:
    """systemd's StateDirectory= value for `path`: it must lie under /var/lib (where systemd
    creates it, owned by the service user — the sandbox leaves nothing else writable)."""
    _absolute(path, "--state-dir")
    _unit_safe(str(path))
    if ".." in path.parts or not path.is_relative_to(SYSTEMD_STATE_ROOT):
        raise ValueError(
            f"--state-dir {path}: under systemd the state directory is StateDirectory=, which "
            f"lives in {SYSTEMD_STATE_ROOT}/ (the sandbox makes everything else read-only); "
            f"choose a directory there, e.g. {SYSTEMD_STATE_ROOT}/watchkeeper"
        )
    relative = path.relative_to(SYSTEMD_STATE_ROOT)
    if not relative.parts:
        raise ValueError(f"--state-dir {path}: give a directory inside {SYSTEMD_STATE_ROOT}/")
    return str(relative)


def service_user(name: str) -> str:
    if name in _NOT_A_SERVICE_USER or not _USER_NAME.fullmatch(name):
        raise ValueError(
            f"--user {name!r}: give the name of an unprivileged system account made for the "
            "service (e.g. watchkeeper), not root or nobody"
        )
    return name


def hidden_paths(install: Install) -> list[str]:
    """The paths of `install` that ProtectHome=yes hides from the service (it could not start
    or read its config there)."""
    paths = [PurePosixPath(install.command[0]), install.config]
    return [
        str(path)
        for path in paths
        if any(path.is_relative_to(hidden) for hidden in HIDDEN_BY_PROTECT_HOME)
    ]


def launchd_plist(template: bytes, install: Install, *, home: PurePosixPath) -> bytes:
    """The LaunchAgent with its program, config, state directory and log paths spelled out
    (launchd expands neither `~` nor `$HOME`). The template's leading comment is kept."""
    _absolute(install.config, "--config")
    _absolute(home, "the home directory")
    data: dict[str, Any] = plistlib.loads(template)
    data["ProgramArguments"] = [*install.command, "run"]
    env: dict[str, str] = data.setdefault("EnvironmentVariables", {})
    env["WATCHKEEPER_CONFIG"] = str(install.config)
    if install.state_dir is not None:
        _absolute(install.state_dir, "--state-dir")
        env["WATCHKEEPER_DAEMON__STATE_DIR"] = str(install.state_dir)
    logs = log_dir(home)
    data["StandardOutPath"] = str(logs / "watchkeeper.log")
    data["StandardErrorPath"] = str(logs / "watchkeeper.err.log")
    body = plistlib.dumps(data, sort_keys=False)
    comment = re.search(rb"<!--.*?-->\n", template, re.DOTALL)
    if comment is None:
        return body
    doctype_end = body.index(b"<plist ")
    return body[:doctype_end] + comment.group(0) + body[doctype_end:]


def log_dir(home: PurePosixPath) -> PurePosixPath:
    """Where the LaunchAgent writes; launchd does not create it."""
    return home / "Library" / "Logs" / "watchkeeper"


def _replace_line(text: str, prefix: str, line: str) -> str:
    """Replace the one uncommented line starting with `prefix` (a template without exactly one
    is a bug in the template, caught by the tests)."""
    lines = text.splitlines(keepends=True)
    hits = [i for i, raw in enumerate(lines) if raw.startswith(prefix)]
    if len(hits) != 1:
        raise RuntimeError(f"the unit template has {len(hits)} lines starting with {prefix!r}")
    lines[hits[0]] = line + "\n"
    return "".join(lines)


def _unit_safe(value: str) -> None:
    if not _UNIT_SAFE.fullmatch(value):
        raise ValueError(
            f"{value!r} has characters a unit file would have to quote or escape (spaces, "
            "quotes, %, $): install watchkeeper and its config under plain paths, "
            "e.g. /opt/watchkeeper"
        )


def _absolute(path: PurePosixPath, what: str) -> None:
    if not path.is_absolute():
        raise ValueError(f"{what} {path}: give an absolute path")
