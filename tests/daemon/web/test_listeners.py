"""`[web] listen` and `[daemon] health_listen` in a real daemon process: one address shares a
listener, two addresses get two (the health one serving only /healthz and pings), a taken
console address stops the start with exit 2 — and SIGTERM still drains and stops it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.peers.loopback import free_port
from tests.reliability import child_env, wait_for


def _config(tmp_path: Path, web: int, health: int | None) -> Path:
    path = tmp_path / "config.toml"
    health_line = f'health_listen = "127.0.0.1:{health}"' if health else ""
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path / "state"}"
{health_line}
[web]
enabled = true
listen = "127.0.0.1:{web}"
[[checks]]
name = "local-dns"
type = "dns"
host = "localhost"
interval = "1s"
""")
    return path


@contextmanager
def _daemon(path: Path, probe: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(path)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def up() -> bool:
        try:
            return httpx.get(probe + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None

    try:
        wait_for(up, "the listener", 30)
        assert proc.poll() is None, proc.communicate()[0]
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_two_addresses_two_listeners_the_health_one_serves_only_health(tmp_path: Path) -> None:
    web, health = free_port(), free_port()
    with _daemon(_config(tmp_path, web, health), f"http://127.0.0.1:{health}") as proc:
        console = f"http://127.0.0.1:{web}"
        probe = f"http://127.0.0.1:{health}"
        assert httpx.get(console + "/").status_code == 200
        assert httpx.get(console + "/healthz").json()["status"] == "ok"
        assert httpx.get(probe + "/healthz").json()["status"] == "ok"
        for path in ("/", "/metrics", "/api/status", "/mcp"):
            assert httpx.get(probe + path).status_code == 404, path
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0  # the daemon's SIGTERM, not uvicorn's
        output = proc.communicate()[0]
        assert "watchkeeper stopped" in output
        assert "Traceback" not in output


def test_one_address_one_listener_serving_everything(tmp_path: Path) -> None:
    port = free_port()
    with _daemon(_config(tmp_path, port, port), f"http://127.0.0.1:{port}"):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz").json()["status"] == "ok"
        wait_for(lambda: httpx.get(base + "/healthz").json()["cycles"] >= 1, "a cycle", 20)
        scraped = httpx.get(base + "/metrics")
        assert scraped.status_code == 200
        values = {
            s.name: s.value
            for f in text_string_to_metric_families(scraped.text)
            for s in f.samples
            if not s.labels
        }
        assert 0 < values["watchkeeper_last_cycle_duration_seconds"] < 10
        assert values["watchkeeper_last_cycle_timestamp_seconds"] > 1.7e9
        attempts = {
            s.labels["outcome"]: s.value
            for f in text_string_to_metric_families(scraped.text)
            for s in f.samples
            if s.name == "watchkeeper_notifications_total"
        }
        assert set(attempts) == {"delivered", "retried", "failed"}  # a _total counter
        assert all(v >= 0 for v in attempts.values())


def test_a_taken_console_address_stops_the_start(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        path = _config(tmp_path, port, None)
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--config", str(path)],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}: web.listen: 127.0.0.1:{port} is already in use" in done.stderr
    assert "Traceback" not in done.stderr


async def test_the_running_daemon_investigates_for_an_agent_when_allowed(tmp_path: Path) -> None:
    """/mcp on a running daemon: `investigate` goes through the daemon's own investigator
    (its budget, its ledger) and the result is stored on the incident."""
    import asyncio
    import json

    from mcp import Client

    from tests.daemon.web.seed import seed
    from tests.daemon.web.test_mcp import RCA
    from tests.peers.providers.ollama import FakeOllama

    port = free_port()
    with FakeOllama(reply=json.dumps(RCA)) as ollama:
        path = _config(tmp_path, port, None)
        path.write_text(
            path.read_text().replace(
                "[web]\n",
                f'[providers.ollama]\nbase_url = "{ollama.url}"\n[routing]\n'
                'triage = ["ollama/gemma4:27b"]\nrca = ["ollama/gemma4:27b"]\n'
                "[triage]\nenabled = false\n[escalation]\nenabled = false\n"
                "[web]\nmcp_investigate = true\n",
            )
        )
        seed(tmp_path / "state")
        base = f"http://127.0.0.1:{port}"
        with _daemon(path, base):
            async with Client(base + "/mcp") as client:
                done = await client.call_tool("investigate", {"incident_id": 1})
                assert not done.is_error, done.content
                assert done.structured_content["rca"]["root_cause"] == RCA["root_cause"]
            shown = await asyncio.to_thread(httpx.get, base + "/api/incidents/1")
            assert shown.json()["investigations"][-1]["rca"]["root_cause"] == RCA["root_cause"]
        assert len(ollama.bodies()) == 1
