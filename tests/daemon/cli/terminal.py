"""Running the CLI as a user does: on a pipe, or on a real pseudo-terminal of a given size."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Mapping
from pathlib import Path

from daemon.models import CheckResult, EngineState, Incident, IncidentEvent, Severity, fingerprint
from daemon.store import Store

PY = sys.executable
ANSI = "\x1b["
BOX = set("─│╭╮╰╯━┃┏┓┗┛")


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WATCHKEEPER_CONFIG", "NO_COLOR", "COLUMNS", "LINES", "TERM")
    }
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def on_pipe(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(env or environment()),
    )


def on_tty(*args: str, columns: int = 80, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal `columns` wide; (exit code, what it showed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        [PY, "-m", "daemon", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
        env=dict(env or environment()),
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def estate(tmp_path: Path, evidence: str, *, count: int = 1) -> Path:
    """A config with one check `api`, and `count` open incidents of it carrying `evidence`."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        '[[checks]]\nname = "api"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\n'
    )
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
    with Store.open(tmp_path / "state") as store:
        incidents = {
            i: Incident(
                id=i,
                fingerprint=fingerprint("api"),
                check="api",
                severity=Severity.HIGH,
                opened_at=t0 + timedelta(minutes=i),
                evidence=evidence,
                first_evidence=evidence,
            )
            for i in range(1, count + 1)
        }
        events = [
            IncidentEvent(
                incident_id=i,
                kind="opened",
                at=t0,
                check="api",
                severity=Severity.HIGH,
                evidence=evidence,
                opened_at=t0,
            )
            for i in incidents
        ]
        result = CheckResult(check="api", status="failing", evidence=evidence, started_at=t0)
        store.incidents.commit_cycle(
            [result], EngineState(incidents=incidents, next_incident_id=count + 1), events, [], []
        )
    return config
