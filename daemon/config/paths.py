"""Where the config file and the state directory are by default: stdlib only, so that shell
completion can find them without loading pydantic."""

from __future__ import annotations

import os
from pathlib import Path


def default_config_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "watchkeeper" / "config.toml", Path("/etc/watchkeeper/config.toml")]


def default_state_dir() -> Path:
    """`$STATE_DIRECTORY` under systemd, `/var/lib/watchkeeper` for root, else XDG state."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/watchkeeper")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "watchkeeper"
