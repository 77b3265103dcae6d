"""The silent wedge of the attack review, reproduced on a real daemon process: its resolver is a
loopback DNS server that never answers (its own `resolv.conf`, in a mount namespace), and its
state directory a small tmpfs that is then filled up.

Eight checks on black-holed names must not stop a failing tcp check from being notified within
seconds; a full disk must turn /healthz unhealthy with the reason; SIGTERM must still end the
process promptly. Needs root (a mount namespace, a port-53 socket): CI runs as root.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.peers.loopback import free_port
from tests.peers.receivers import WebhookReceiver
from tests.reliability import PY, child_env, wait_for

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
        reason="needs root, unshare and nsenter (a mount namespace and a port-53 socket)",
    ),
]

BLACKHOLED = 8
STOP_WITHIN_S = 15.0


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A DNS server on a loopback address of its own that reads every query and never
    answers. Yields its address."""
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    sock.settimeout(0.2)
    stop = threading.Event()
    queries: list[bytes] = []

    def swallow() -> None:
        while not stop.is_set():
            try:
                queries.append(sock.recv(512))
            except TimeoutError:
                continue

    thread = threading.Thread(target=swallow, daemon=True)
    thread.start()
    yield address
    stop.set()
    thread.join(2)
    sock.close()
    assert queries, "the daemon never asked the black-holed resolver"


def config(tmp_path: Path, state: Path, receiver: WebhookReceiver, health: int) -> Path:
    blackholed = "".join(
        f"""
[[checks]]
name = "lookup-{n}"
type = "{"dns" if n % 2 else "tcp"}"
host = "db-{n}.blackhole.test"
{"" if n % 2 else "port = 5432"}
interval = "1s"
timeout = "2s"
severity = "low"
"""
        for n in range(BLACKHOLED)
    )
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{state}"
jitter = "0s"
cycle_window = "0s"
stall_after = "4s"
drain_timeout = "3s"
health_listen = "127.0.0.1:{health}"

[triage]
enabled = false

[escalation]
enabled = false

[[notify]]
name = "hook"
url = "{receiver.url()}"
events = ["opened"]
min_severity = "high"
{blackholed}
[[checks]]
name = "refused"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
interval = "1s"
timeout = "2s"
failure_threshold = 1
""")
    return path


def health(port: int) -> tuple[int, dict[str, object]]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json()


def test_black_holed_names_and_a_full_disk_neither_wedge_nor_hide(
    tmp_path: Path,
    black_hole: str,
    make_webhook_receiver: Callable[[], WebhookReceiver],
) -> None:
    receiver = make_webhook_receiver()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {black_hole}\noptions timeout:30 attempts:5\n")
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    path = config(tmp_path, state, receiver, port)
    script = (
        f"mount --bind {resolv} /etc/resolv.conf && "
        f"mount -t tmpfs -o size=4m,mode=0700 tmpfs {state} && "
        f"exec {PY} -m daemon run --config {path}"
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = time.monotonic()
        wait_for(
            lambda: any("refused failing" in str(m["title"]) for m in receiver.messages),
            "the failing tcp check's incident, past the black-holed lookups",
            timeout=15,
        )
        notified_after = time.monotonic() - started
        status, body = health(port)
        assert status == 200 and body["status"] == "ok", body

        # Fill the daemon's tmpfs (visible only in its mount namespace) to the last byte.
        subprocess.run(
            ["nsenter", "-t", str(proc.pid), "-m", "--", "sh", "-c",
             f"cat /dev/zero > {state}/filler"],
            capture_output=True,
            check=False,
            timeout=30,
        )  # fmt: skip
        wait_for(lambda: health(port)[0] == 503, "/healthz to turn unhealthy", timeout=30)
        status, body = health(port)
        assert body["status"] == "failing"
        assert "no cycle committed for" in str(body["reason"])
        assert "full" in str(body["reason"])  # SQLite: database or disk is full
    finally:
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=STOP_WITHIN_S + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        stopped_after = time.monotonic() - asked
    assert notified_after < 15
    assert proc.returncode == 0, out[-3000:]
    assert stopped_after < STOP_WITHIN_S, f"SIGTERM took {stopped_after:.1f} s"
    assert "Traceback" not in out
