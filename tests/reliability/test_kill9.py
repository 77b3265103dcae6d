"""`watchkeeper run` killed with SIGKILL many times, at random points, while its targets flip
between failing and recovering and its notify receiver fails and hangs at random.

What must hold at the end (README.md in this folder states the contract):

- every incident that opened was notified `opened` and, after recovery, `resolved`, to every
  target, and none is left open;
- nothing is lost: every outbox row is delivered, and each was acknowledged by the receiver;
  no acknowledged message is unknown to the outbox;
- a message is acknowledged twice only if a kill happened between the two acknowledgements
  (the process died after the receiver's 2xx and before its delivered mark), so per target
  there are at most as many duplicates as kills;
- an incident is never duplicated: one check never has two overlapping incidents.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

from tests.peers.loopback import free_port
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.receivers import ReceivedRequest, WebhookReceiver, receiving
from tests.peers.scripted import FakeServer, Recorded, Scripted
from tests.peers.targets import TcpTarget
from tests.reliability import PY, ROOT, child_env, seed, wait_for

pytestmark = pytest.mark.reliability

HANG_S = 3.0
"""A hung request is held this long, then closed unanswered (longer than delivery.timeout)."""
REF = re.compile(r"ref: incident #(\d+) · event (\d+)")


# -- the flaky receiver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """One request the receiver answered 200 to. `at` is taken before the answer is written,
    so a kill recorded after it can only be later than the receiver's decision."""

    target: str
    key: str
    """The message identity: X-Watchkeeper-Delivery (webhook) or `event N` (apprise json)."""
    payload: dict[str, object]
    at: float


@dataclass
class FlakyReceiver(WebhookReceiver):
    """The shared webhook receiver, answering at random: 500 (`fail_rate`), held open for
    HANG_S then closed unanswered (`hang_rate`), else 200 — until `flaky` is switched off."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    fail_rate: float = 0.2
    hang_rate: float = 0.1
    flaky: bool = True
    hold_s: float = HANG_S
    kill_after_ack: int | None = None
    """A pid to SIGKILL right after the next 200 is written: a kill inside the at-least-once
    window (the daemon has the receiver's answer but has not marked the row delivered)."""
    killed_after_ack: threading.Event = field(default_factory=threading.Event)
    kill_sent_at: float = 0.0

    def answer(self, request: ReceivedRequest) -> int:
        if not self.flaky:
            return 200
        roll = self.rng.random()
        if roll < self.hang_rate:
            return 0
        if roll < self.hang_rate + self.fail_rate:
            return 500
        return 200

    def on_answered(self, request: ReceivedRequest) -> None:
        if request.status != 200:
            return
        with self.lock:
            pid, self.kill_after_ack = self.kill_after_ack, None
            if pid is not None:
                self.kill_sent_at = time.monotonic()
                os.kill(pid, signal.SIGKILL)
        if pid is not None:
            self.killed_after_ack.set()

    def acks(self) -> list[Ack]:
        """Every request whose 200 was written in full, in arrival order."""
        with self.lock:
            answered = [r for r in self.requests if r.status == 200 and r.answered]
        return [_ack_of(r) for r in answered]

    def count(self, status: int) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.status == status)


def _ack_of(request: ReceivedRequest) -> Ack:
    target = request.path.strip("/")
    payload = request.json()
    return Ack(target, message_key(target, request.headers, payload), payload, request.at)


def message_key(target: str, headers: dict[str, str], payload: dict[str, object]) -> str:
    if target == "hook":
        return headers["X-Watchkeeper-Delivery"]
    found = REF.search(str(payload.get("message", "")))
    assert found, f"apprise json body without a ref footer: {payload!r}"
    return f"event {found.group(2)}"


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    with receiving(FlakyReceiver()) as flaky:
        yield flaky


# -- targets the test flips --------------------------------------------------------------------


class TcpCheckTarget(TcpTarget):
    """A `tcp` check's target: listens while healthy, refuses while failing."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def config(self) -> str:
        return f'type = "tcp"\nhost = "127.0.0.1"\nport = {self.port}\n'


class HttpTargets:
    """One scripted loopback HTTP server; each path answers 200 while healthy, 503 while
    failing."""

    def __init__(self) -> None:
        self.healthy: dict[str, bool] = {}
        self.server = FakeServer(self._answer).start()

    def _answer(self, request: Recorded) -> Scripted:
        if self.healthy.get(request.path.strip("/"), False):
            return Scripted(200, b"ok")
        return Scripted(503, b"unavailable")

    def target(self, name: str) -> HttpTarget:
        self.healthy[name] = True
        return HttpTarget(name, self)

    def close(self) -> None:
        self.server.stop()


@dataclass
class HttpTarget:
    name: str
    owner: HttpTargets

    def set_healthy(self, healthy: bool) -> None:
        self.owner.healthy[self.name] = healthy

    def config(self) -> str:
        return f'type = "http"\nurl = "{self.owner.server.url}/{self.name}"\n'


Target = TcpCheckTarget | HttpTarget


def write_config(tmp_path: Path, receiver_port: int, targets: list[Target]) -> Path:
    checks = "".join(
        f'\n[[checks]]\nname = "{t.name}"\n{t.config()}interval = "1s"\ntimeout = "2s"\n'
        "failure_threshold = 1\n"
        for t in targets
    )
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
jitter = "0s"
cycle_window = "300ms"
drain_timeout = "3s"

[incidents]
flap_threshold = 1000

[delivery]
timeout = "2s"
retry_initial = "500ms"
retry_max = "1s"

[providers.ollama]
base_url = "http://127.0.0.1:{free_port()}"
[routing]
triage = ["ollama/gemma4:27b"]
rca = ["ollama/gemma4:27b"]

[baselines]
enabled = false
[triage]
enabled = false
[escalation]
enabled = false
[digest]
enabled = false

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{receiver_port}/hook"

[[notify]]
name = "json"
url = "json://127.0.0.1:{receiver_port}/json"
{checks}""",
        encoding="utf-8",
    )
    return path


# -- the daemon ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    sent_at: float
    dead_at: float
    mode: str


class Daemon:
    """Starts `watchkeeper run` processes one after another, each logging to its own file."""

    def __init__(self, config: Path, logs: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env or {}
        self.logs = logs
        self.runs = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path = logs / "none.log"

    def start(self) -> subprocess.Popen[bytes]:
        self.runs += 1
        self.log = self.logs / f"daemon-{self.runs}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "daemon", "run", "--config", str(self.config)],
                env=child_env(**self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        proc = self.proc
        wait_for(
            lambda: b"watchkeeper started" in self.log.read_bytes() or proc.poll() is not None,
            "the daemon to start",
        )
        assert proc.poll() is None, self.log.read_text()
        return proc

    def kill(self, mode: str, sent_at: float | None = None) -> Kill:
        assert self.proc is not None
        before = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        assert self.proc.returncode == -signal.SIGKILL, self.log.read_text()
        return Kill(sent_at if sent_at is not None else before, time.monotonic(), mode)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# -- reading the state database ----------------------------------------------------------------


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def results(db: Path) -> int:
    return int(str(query(db, "SELECT count(*) FROM check_results")[0][0]))


def settled(db: Path, receiver: FlakyReceiver) -> bool:
    if not db.exists():
        return False
    open_incidents = query(db, "SELECT count(*) FROM incidents WHERE status = 'open'")[0][0]
    pending = query(db, "SELECT count(*) FROM outbox WHERE status != 'delivered'")[0][0]
    rows = len(query(db, "SELECT id FROM outbox"))
    acked = {(a.target, a.key) for a in receiver.acks()}
    return open_incidents == 0 and pending == 0 and len(acked) >= rows


def assert_nothing_dropped_midway(db: Path, seed_value: int) -> None:
    """Between runs: no row failed, and a row that was attempted says why it is still due."""
    if not db.exists():
        return
    rows = query(db, "SELECT id, status, attempts, last_error FROM outbox")
    for row_id, status, attempts, last_error in rows:
        assert status in ("pending", "delivered"), (seed_value, row_id, status, last_error)
        if status == "pending" and isinstance(attempts, int) and attempts > 0:
            assert last_error, (seed_value, row_id, "pending after attempts without a reason")


# -- the scenario ------------------------------------------------------------------------------


def flip_some(rng: random.Random, targets: list[Target], state: dict[str, bool]) -> None:
    target = rng.choice(targets)
    state[target.name] = not state[target.name]
    target.set_healthy(state[target.name])


def run_segment(
    rng: random.Random,
    daemon: Daemon,
    receiver: FlakyReceiver,
    targets: list[Target],
    state: dict[str, bool],
) -> Kill:
    """One life of the daemon: start, break or heal targets, then SIGKILL it somehow."""
    proc = daemon.start()
    # something always breaks, so every life has incidents and messages in flight
    healthy = [t for t in targets if state[t.name]]
    if healthy:
        victim = rng.choice(healthy)
        state[victim.name] = False
        victim.set_healthy(False)
    mode = rng.choices(["random", "during-hold", "after-ack"], weights=[2, 1, 1])[0]
    if mode == "random":
        end = time.monotonic() + rng.uniform(0.3, 4.0)
        while time.monotonic() < end:
            time.sleep(min(rng.uniform(0.2, 1.2), max(end - time.monotonic(), 0)))
            if rng.random() < 0.6:
                flip_some(rng, targets, state)
        return daemon.kill(mode)
    if mode == "during-hold":
        with receiver.lock:
            before = len(receiver.requests)
        receiver.hang_next(1)
        flip_some(rng, targets, state)
        receiver.wait_until(lambda requests: any(r.status == 0 for r in requests[before:]), 8)
        time.sleep(rng.uniform(0.0, 0.5))
        receiver.forget_scripted()
        return daemon.kill(mode)
    # A kill after an acknowledgement must not fall on a life that only re-sent the previous
    # life's message before its first cycle (a seed could then end with too few incidents to
    # prove anything): let this life commit results first. The other modes still kill at any
    # moment, start-up included.
    db = daemon.logs / "state" / "watchkeeper.db"
    before = results(db) if db.exists() else 0
    wait_for(lambda: db.exists() and results(db) > before, "this life's first cycle", 15)
    receiver.killed_after_ack.clear()
    with receiver.lock:
        receiver.kill_after_ack = proc.pid
    flip_some(rng, targets, state)
    fired = receiver.killed_after_ack.wait(8)
    with receiver.lock:
        receiver.kill_after_ack = None
        sent_at = receiver.kill_sent_at if fired else None
    return daemon.kill(mode, sent_at)


def test_many_kill_9s_lose_nothing_and_repeat_only_what_was_in_flight(
    tmp_path: Path, receiver: FlakyReceiver
) -> None:
    seed_value = seed("kill9")
    rng = random.Random(seed_value)
    receiver.rng = random.Random(seed_value + 1)
    http = HttpTargets()
    targets: list[Target] = [
        TcpCheckTarget("cache-tcp"),
        TcpCheckTarget("db-tcp"),
        http.target("api-http"),
        http.target("web-http"),
    ]
    state = {t.name: True for t in targets}
    for t in targets:
        t.set_healthy(True)
    config = write_config(tmp_path, receiver.port, targets)
    db = tmp_path / "state" / "watchkeeper.db"
    daemon = Daemon(config, tmp_path)
    kills: list[Kill] = []
    try:
        for _ in range(rng.randint(8, 12)):
            kills.append(run_segment(rng, daemon, receiver, targets, state))
            assert_nothing_dropped_midway(db, seed_value)

        # settle: everything healthy, the receiver reliable; the last daemon catches up
        for t in targets:
            t.set_healthy(True)
        with receiver.lock:
            receiver.flaky = False
        daemon.start()
        wait_for(lambda: settled(db, receiver), "incidents resolved and the outbox drained", 60)
        code = daemon.terminate()
    finally:
        daemon.ensure_dead()
        for t in targets:
            t.set_healthy(False)
            if isinstance(t, TcpCheckTarget):
                t.close()
        http.close()
    logs = "".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("daemon-*.log")))
    assert code == 0, daemon.log.read_text()
    assert "Traceback" not in logs, f"seed {seed_value}"
    verify(db, receiver, kills, seed_value)


def verify(db: Path, receiver: FlakyReceiver, kills: list[Kill], seed_value: int) -> None:
    note = f"seed {seed_value}, kills {[k.mode for k in kills]}"
    rows = query(db, "SELECT id, target, event_id, status, attempts FROM outbox ORDER BY id")
    by_key: dict[tuple[str, str], int] = {}
    for row_id, target, event_id, status, attempts in rows:
        assert status == "delivered", (note, row_id, status)
        assert isinstance(attempts, int) and attempts >= 1, (note, row_id, attempts)
        key = str(row_id) if target == "hook" else f"event {event_id}"
        by_key[(str(target), key)] = int(str(row_id))
    acks_by_row: dict[int, list[Ack]] = {}
    received = receiver.acks()
    for ack in received:
        row_id = by_key.get((ack.target, ack.key))
        assert row_id is not None, (note, "acknowledged a message the outbox never had", ack)
        acks_by_row.setdefault(row_id, []).append(ack)

    # nothing lost: every row reached the receiver
    missing = sorted(set(by_key.values()) - set(acks_by_row))
    assert not missing, (note, "delivered rows the receiver never acknowledged", missing)

    # at least once, and more than once only across a kill
    duplicates: dict[str, int] = {}
    for row_id, acks in acks_by_row.items():
        times = sorted(a.at for a in acks)
        for first, second in pairwise(times):
            bracketing = [k for k in kills if first < k.dead_at and k.sent_at < second]
            assert bracketing, (note, f"row {row_id} acknowledged twice with no kill between")
            duplicates[acks[0].target] = duplicates.get(acks[0].target, 0) + 1
    for target, count in duplicates.items():
        assert count <= len(kills), (note, target, count)

    # every incident was notified opened and resolved, to both targets, and none is open
    incidents = query(
        db, "SELECT id, check_name, status, opened_at, resolved_at FROM incidents ORDER BY id"
    )
    assert len(incidents) >= 3, (note, "too few incidents to prove anything", incidents)
    events = query(db, "SELECT id, incident_id, kind FROM incident_events")
    acked_rows = set(acks_by_row)
    row_for = {(str(r[1]), r[2]): int(str(r[0])) for r in rows}
    for incident_id, check, status, _, _ in incidents:
        assert status == "resolved", (note, incident_id, check, status)
        for kind in ("opened", "resolved"):
            ids = [e[0] for e in events if e[1] == incident_id and e[2] == kind]
            assert len(ids) == 1, (note, incident_id, kind, ids)
            for target in ("hook", "json"):
                row = row_for.get((target, ids[0]))
                assert row is not None, (note, incident_id, kind, target, "never queued")
                assert row in acked_rows, (note, incident_id, kind, target, "never acknowledged")
    hook_payloads = {
        (a.payload["event"], a.payload["incident"]["id"])  # type: ignore[index]
        for a in received
        if a.target == "hook"
    }
    for incident_id, *_ in incidents:
        assert ("opened", incident_id) in hook_payloads, (note, incident_id)
        assert ("resolved", incident_id) in hook_payloads, (note, incident_id)

    # an incident is never duplicated: one check's incidents never overlap in time
    by_check: dict[str, list[tuple[str, str]]] = {}
    for _, check, _, opened_at, resolved_at in incidents:
        by_check.setdefault(str(check), []).append((str(opened_at), str(resolved_at)))
    for check, spans in by_check.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start, (note, check, "overlapping incidents", spans)
    print(
        f"kill9: {len(kills)} kills ({', '.join(k.mode for k in kills)}), "
        f"{len(incidents)} incidents, {len(rows)} outbox rows, "
        f"{sum(duplicates.values())} duplicates, {receiver.count(500)} answered 500, "
        f"{receiver.count(0)} hung; events {sorted(str(e[2]) for e in events)}"
    )


def test_a_restart_never_investigates_when_escalation_is_disabled(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """`[escalation] enabled = false` must hold across a kill -9: no `rca` call (no prompt to
    a cloud provider), no investigation message, when the restarted daemon finds the incident
    still open."""
    key = "sk-ant-reliability-escalation-off-5d1c"
    config = tmp_path / "config.toml"
    with FakeAnthropic(key=key) as anthropic:
        config.write_text(
            f"""
[daemon]
state_dir = "state"
jitter = "0s"
cycle_window = "200ms"
[providers.anthropic]
base_url = "{anthropic.url}"
max_retries = 0
[providers.ollama]
base_url = "http://127.0.0.1:{free_port()}"
[routing]
triage = ["ollama/gemma4:27b"]
rca = ["anthropic/claude-opus-4-6"]
[triage]
enabled = false
[escalation]
enabled = false
[digest]
enabled = false
[[notify]]
name = "hook"
url = "{webhook_receiver.url()}"
[[checks]]
name = "dead-port"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
interval = "1s"
timeout = "2s"
severity = "critical"
failure_threshold = 1
""",
            encoding="utf-8",
        )
        db = tmp_path / "state" / "watchkeeper.db"
        daemon = Daemon(config, tmp_path, env={"ANTHROPIC_API_KEY": key})
        try:
            daemon.start()
            wait_for(lambda: len(webhook_receiver.messages) >= 1, "the opened message")
            daemon.kill("random")
            before = results(db)
            daemon.start()
            wait_for(
                lambda: results(db) >= before + 2,
                "two more cycles after the restart",
            )
            assert daemon.terminate() == 0, daemon.log.read_text()
        finally:
            daemon.ensure_dead()
        sent = list(anthropic.requests)
    kinds = [str(r[0]) for r in query(db, "SELECT kind FROM incident_events ORDER BY id")]
    rca_rows = query(db, "SELECT provider, outcome FROM ledger WHERE task = 'rca'")
    titles = [m["title"] for m in webhook_receiver.messages]
    assert sent == [], "a prompt went to anthropic although [escalation] enabled = false"
    assert rca_rows == []
    assert kinds == ["opened"], titles
