"""Shell completion when the state lives in PostgreSQL (`[store] url`): incident ids come from
that database, and a server that does not answer costs a Tab press at most PG_DEADLINE_S —
an empty answer, never a hung shell or a traceback."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cli._complete import PG_DEADLINE_S
from tests.daemon.cli.terminal import PY, environment
from tests.peers.loopback import free_port

WATCHKEEPER = str(Path(PY).parent / "watchkeeper")


def complete(line: str, config: Path) -> tuple[list[str], str, float]:
    """What bash would offer after `line`, stderr, and how long it took."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = environment(
        _WATCHKEEPER_COMPLETE="bash_complete",
        COMP_WORDS=line,
        COMP_CWORD=str(cword),
        WATCHKEEPER_CONFIG=str(config),
    )
    start = time.monotonic()
    done = subprocess.run([WATCHKEEPER], capture_output=True, text=True, env=env, timeout=30)
    took = time.monotonic() - start
    return [i.split(",", 1)[1] for i in done.stdout.splitlines() if i], done.stderr, took


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "{tmp_path / "state"}"

[store]
url = "{url}"

[[checks]]
name = "dead-port"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
timeout = "1s"
failure_threshold = 1
"""
    )
    return path


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a wedged server, or a
    firewall's tarpit): libpq would wait for its startup answer."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_incident_ids_complete_from_postgresql(tmp_path: Path, postgres_url: str) -> None:
    path = config(tmp_path, postgres_url)
    ran = subprocess.run(
        [WATCHKEEPER, "run", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    offered, stderr, _ = complete("watchkeeper investigate ", path)
    assert offered == ["1"] and stderr == ""
    assert not (tmp_path / "state" / "watchkeeper.db").exists()  # never the SQLite file


def test_a_silent_database_costs_one_short_wait_and_no_suggestions(
    tmp_path: Path, silent_server: int
) -> None:
    path = config(tmp_path, f"postgresql://wk@127.0.0.1:{silent_server}/wk")
    _, _, baseline = complete("watchkeeper check ", path)  # no database involved
    offered, stderr, took = complete("watchkeeper investigate ", path)
    assert offered == [] and stderr == ""
    print(f"completion: {took:.2f} s against {baseline:.2f} s without a database")
    assert took - baseline < PG_DEADLINE_S + 1.0, (took, baseline)
    refused = config(tmp_path, f"postgresql://wk@127.0.0.1:{free_port()}/wk")
    offered, stderr, _ = complete("watchkeeper incidents show ", refused)
    assert offered == [] and stderr == ""
