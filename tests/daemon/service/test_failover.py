"""Active/standby on a shared PostgreSQL (a real server the tests start): `watchkeeper run`
processes killed with -9 in turn, a standby taking over within the lease, every incident and
notification exactly once; and a deposed or partitioned ex-leader unable to commit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import StateError
from daemon.models import EngineState
from daemon.store import Store
from daemon.store.lease import Deposed
from tests.cli import run_cli
from tests.peers.loopback import free_port
from tests.peers.receivers import ReceivedRequest, WebhookReceiver
from tests.peers.tcp_proxy import tcp_proxy

PY = sys.executable
LEASE_S = 3.0
DEADLINE_S = 30.0
T0 = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    base.pop("WATCHKEEPER_CONFIG", None)
    return base


def write_config(home: Path, node: str, url: str, receiver_port: int, flag: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
jitter = "0s"
drain_timeout = "3s"

[store]
url = "{url}"
lease = "{LEASE_S:g}s"
node = "{node}"

[delivery]
retry_initial = "1s"
retry_max = "2s"
timeout = "5s"

[[notify]]
name = "hook"
url = "json://127.0.0.1:{receiver_port}/hook"

[[checks]]
name = "dead-port"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
interval = "1s"
timeout = "2s"
failure_threshold = 1

[[checks]]
name = "flag-file"
type = "command"
command = ["cat", "{flag}"]
interval = "1s"
timeout = "2s"
failure_threshold = 1
""",
        encoding="utf-8",
    )
    return path


class Node:
    """One `watchkeeper run` process; its output goes to a file (a pipe could fill up)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "out.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "daemon", "run", "--config", str(self.config)],
                env=env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(DEADLINE_S)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(DEADLINE_S)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def status(config: Path) -> dict[str, Any]:
    done = run_cli("status", "--json", "--config", str(config), env=env())
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def active_node(config: Path) -> str | None:
    active = status(config).get("active")
    return None if active is None or active["expired"] else str(active["node"])


def wait_for(predicate: Any, what: str, timeout: float = DEADLINE_S) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def titles(receiver: WebhookReceiver) -> list[str]:
    """The messages the receiver acknowledged (answered 2xx), in order."""
    return [m["title"] for m in receiver.messages]


def held(requests: list[ReceivedRequest]) -> bool:
    return any(r.status == 0 for r in requests)


@pytest.mark.reliability
def test_kill_9_of_the_active_node_fails_over_with_nothing_lost_or_repeated(
    tmp_path: Path, postgres_url: str, webhook_receiver: WebhookReceiver
) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    a = Node(write_config(tmp_path / "a", "node-a", postgres_url, webhook_receiver.port, flag))
    b = Node(write_config(tmp_path / "b", "node-b", postgres_url, webhook_receiver.port, flag))
    takeovers: list[float] = []
    try:
        a.start()
        wait_for(lambda: len(titles(webhook_receiver)) == 1, "incident #1 from node-a")
        assert active_node(a.config) == "node-a"
        b.start()
        wait_for(lambda: "standby: another watchkeeper is active" in b.output(), "node-b up")
        time.sleep(LEASE_S)  # node-b is a standby: node-a stays active
        assert b.proc is not None and b.proc.poll() is None
        assert active_node(b.config) == "node-a"

        a.kill9()
        takeovers.append(wait_for(lambda: active_node(b.config) == "node-b", "node-b to lead"))
        shown = run_cli("status", "--config", str(a.config), env=env()).stdout
        assert "active: node-b (epoch 2" in shown

        # node-b opens incident #2 and is killed while its message is in flight (the
        # receiver holds the request unanswered): node-a takes over and sends it again
        webhook_receiver.hang_next(1)
        flag.unlink()
        assert webhook_receiver.wait_until(held, DEADLINE_S)
        a.start()  # back, as a standby
        wait_for(lambda: a.output().count("standby: another watchkeeper") == 1, "node-a up")
        b.kill9()
        webhook_receiver.release()
        takeovers.append(wait_for(lambda: active_node(a.config) == "node-a", "node-a to lead"))
        wait_for(lambda: len(titles(webhook_receiver)) == 2, "incident #2, sent by node-a")
        flag.write_text("ok")  # recovered: node-a resolves incident #2, once
        wait_for(lambda: len(titles(webhook_receiver)) == 3, "incident #2 resolved")
        time.sleep(LEASE_S)  # a few more cycles: nothing else is sent
        assert a.stop() == 0, a.output()
    finally:
        for node in (a, b):
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
    got = titles(webhook_receiver)
    assert got[0] == "[HIGH] dead-port failing — incident #1"
    assert got[1].startswith("[HIGH] flag-file failing — incident #2")
    assert got[2].startswith("[RESOLVED] flag-file")
    assert len(got) == 3, got
    # at least once: the held request was never answered, so it was sent again, once
    unanswered = [r.json()["title"] for r in webhook_receiver.requests if r.status == 0]
    assert len(unanswered) == 1 and unanswered[0] == got[1]
    # takeover: the lease runs out (at most LEASE_S after the last renewal), the standby looks
    # every LEASE_S / 3, and `status` is polled every 0.1 s
    print(f"takeover times: {', '.join(f'{t:.2f} s' for t in takeovers)}")
    # (+ a margin for a loaded 2-core CI machine)
    assert all(t <= LEASE_S + LEASE_S / 3 + 5.0 for t in takeovers), takeovers
    with Store.open(tmp_path, postgres_url) as store:
        incidents = store.incidents.recent(include_resolved=True)
        assert sorted(i.id for i in incidents) == [1, 2]
        assert store.outbox.counts()["pending"] == 0


def test_a_deposed_leader_cannot_commit(postgres_url: str) -> None:
    term = timedelta(seconds=1)
    old, new = Store.open(Path("old"), postgres_url), Store.open(Path("new"), postgres_url)
    try:
        lease = old.lease.acquire("old:1:x", "old", term)
        assert lease is not None and lease.epoch == 1
        old.db.fence = old.lease.fence("old:1:x", lease.epoch)
        old.incidents.commit_cycle([], EngineState(next_incident_id=2), [], [], [], now=T0)
        assert new.lease.acquire("new:2:y", "new", term) is None  # still held
        time.sleep(term.total_seconds() + 0.2)
        taken = new.lease.acquire("new:2:y", "new", term)
        assert taken is not None and taken.epoch == 2
        with pytest.raises(Deposed):
            old.incidents.commit_cycle([], EngineState(next_incident_id=9), [], [], [], now=T0)
        assert old.lease.renew("old:1:x", 1, term) is None
        assert new.incidents.engine_state().next_incident_id == 2  # the refused write is gone
    finally:
        old.close()
        new.close()


def test_a_partitioned_leader_stops_committing_and_stays_fenced(postgres_url: str) -> None:
    term = timedelta(seconds=1)
    server_port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    with tcp_proxy(server_port) as link:
        via_link = postgres_url.replace(f":{server_port}/", f":{link.port}/")
        old, new = Store.open(Path("old"), via_link), Store.open(Path("new"), postgres_url)
        try:
            lease = old.lease.acquire("old:1:x", "old", term)
            assert lease is not None
            old.db.fence = old.lease.fence("old:1:x", lease.epoch)
            link.cut()  # the old leader's network to the database is gone
            with pytest.raises(StateError, match="state database"):
                old.incidents.commit_cycle([], EngineState(next_incident_id=5), [], [], [], now=T0)
            time.sleep(term.total_seconds() + 0.2)
            assert new.lease.acquire("new:2:y", "new", term) is not None
            link.restore()  # it comes back: the old leader reconnects, and is refused
            with pytest.raises(Deposed):
                old.incidents.commit_cycle([], EngineState(next_incident_id=5), [], [], [], now=T0)
            assert new.incidents.engine_state() == EngineState()
        finally:
            old.close()
            new.close()


def test_run_once_refuses_while_another_node_is_active_and_runs_when_none_is(
    tmp_path: Path, postgres_url: str, webhook_receiver: WebhookReceiver
) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    config = write_config(tmp_path / "c", "node-c", postgres_url, webhook_receiver.port, flag)
    with Store.open(tmp_path, postgres_url) as store:
        held_by = store.lease.acquire("node-z:1:x", "node-z", timedelta(seconds=30))
        assert held_by is not None
        done = run_cli("run", "--once", "--config", str(config), env=env())
        assert done.returncode == 1
        assert "watchkeeper on node-z is active on postgresql://" in done.stderr
        assert store.results.latest() == {}  # it ran nothing
        store.lease.release("node-z:1:x", held_by.epoch)
        done = run_cli("run", "--once", "--config", str(config), env=env())
        assert done.returncode == 0, done.stderr
        assert set(store.results.latest()) == {"dead-port", "flag-file"}
        lease, now = store.lease.current()
        assert lease is not None and lease.node == "node-c" and lease.expired(now)  # handed back
