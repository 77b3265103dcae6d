"""The daily AI budget under concurrency: 30 root-cause analyses at once in this process and
30 more in a second process on the same state directory, against a slow cloud provider.

What must hold: recorded cloud spend never exceeds `[budget] daily_usd`; every call is either
answered (one `ok` row) or denied (one `budget` row, and nothing sent); no reservation is left
behind; "AI budget reached" is announced once for the day, not once per process.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import subprocess
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.ai.runner import AI, AIResult
from daemon.config.load import load_settings
from daemon.llm.types import ModelRequest
from daemon.models import Message
from daemon.store import Store
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.scripted import Recorded, Scripted
from tests.reliability import PY, ROOT, child_env, seed, wait_for

pytestmark = pytest.mark.reliability

KEY = "sk-ant-api03-reliability-budget-race-0000"
CALLS = 30
DAILY_USD = Decimal("0.1")
NOW = "2026-11-27T14:00:00+00:00"
USAGE = {
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
"""claude-opus-4-6 at $5 / $25 per MTok: $0.005 + $0.005 = $0.01 per answered call. Each is
reserved first at its estimate, (100 + 1000 tokens) at list price = $0.0255."""
PROMPT = "x" * 300
MAX_OUTPUT = 1000

# The second process: the same 30 calls through its own AI, store and HTTP client. It waits
# for the go file so that both processes fire together, then prints what happened.
SECOND = """
import asyncio, json, os, sys, time
from datetime import datetime
from pathlib import Path
import httpx
from daemon.ai.runner import AI, AIResult
from daemon.config.load import load_settings
from daemon.llm.types import ModelRequest
from daemon.store import Store

async def main():
    settings = load_settings(Path(sys.argv[1]))
    store = Store.open(settings.daemon.state_dir)
    notices = []
    now = datetime.fromisoformat(os.environ["RACE_NOW"])
    go = Path(sys.argv[2])
    async with httpx.AsyncClient() as client:
        ai = AI(settings, store, client, now=lambda: now, on_budget_notice=notices.append)
        request = ModelRequest.ask("x" * 300, max_output_tokens=1000)
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.005)
        async def one(delay):
            await asyncio.sleep(delay)
            return await ai.run("rca", request)

        delays = json.loads(sys.argv[3])
        results = await asyncio.gather(*(one(d) for d in delays))
    store.close()
    print(json.dumps({
        "answered": sum(r.ok for r in results),
        "outcomes": [[c.outcome for c in r.calls] for r in results],
        "notices": len(notices),
    }))

asyncio.run(main())
"""


def delays(rng: random.Random) -> list[float]:
    """Half the calls fire at once; the rest spread over two seconds, so later calls meet
    settled spending (from both processes) as well as reservations in flight."""
    return [0.0 if i % 2 else rng.uniform(0, 2.0) for i in range(CALLS)]


def slow(fake: FakeAnthropic, seconds: float) -> None:
    """Every answer takes `seconds`: calls overlap, so reservations really compete."""
    native = fake.server.handler

    def handler(request: Recorded) -> Scripted:
        time.sleep(seconds)
        return native(request)

    fake.server.handler = handler


async def test_concurrent_escalations_in_two_processes_never_overspend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    rng = random.Random(seed("budget race"))
    now = datetime.fromisoformat(NOW)
    with FakeAnthropic(key=KEY, reply="disk full", usage=USAGE) as fake:
        slow(fake, 0.15)
        path = tmp_path / "config.toml"
        path.write_text(
            f"""
[daemon]
state_dir = "state"
[providers.anthropic]
base_url = "{fake.url}"
max_retries = 0
timeout = "20s"
[routing]
rca = ["anthropic/claude-opus-4-6"]
[budget]
daily_usd = {DAILY_USD}
""",
            encoding="utf-8",
        )
        settings = load_settings(path)
        store = Store.open(settings.daemon.state_dir)  # creates the schema before the race
        go = tmp_path / "go"
        second = subprocess.Popen(
            [PY, "-c", SECOND, str(path), str(go), json.dumps(delays(rng))],
            env=child_env(ANTHROPIC_API_KEY=KEY, RACE_NOW=NOW),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            lines = second.stdout
            assert lines is not None
            wait_for(lambda: lines.readline().strip() == "ready", "the second process")
            notices: list[Message] = []
            async with httpx.AsyncClient() as client:
                ai = AI(
                    settings,
                    store,
                    client,
                    now=lambda: now,
                    on_budget_notice=notices.append,
                )
                request = ModelRequest.ask(PROMPT, max_output_tokens=MAX_OUTPUT)
                go.touch()

                async def one(delay: float) -> AIResult:
                    await asyncio.sleep(delay)
                    return await ai.run("rca", request)

                ours = await asyncio.gather(*(one(d) for d in delays(rng)))
            out, err = await asyncio.to_thread(second.communicate, timeout=120)
        finally:
            if second.poll() is None:
                second.kill()
            store.close()
        sent = len(fake.requests)
    assert second.returncode == 0, err
    assert "Traceback" not in err
    theirs: dict[str, Any] = json.loads(out.strip().splitlines()[-1])

    outcomes = [[c.outcome for c in r.calls] for r in ours] + theirs["outcomes"]
    assert len(outcomes) == 2 * CALLS
    assert all(o in (["ok"], ["budget"]) for o in outcomes), outcomes
    answered = sum(o == ["ok"] for o in outcomes)
    denied = sum(o == ["budget"] for o in outcomes)
    assert answered == sum(r.ok for r in ours) + theirs["answered"]

    db = sqlite3.connect(tmp_path / "state" / "watchkeeper.db")
    try:
        rows = db.execute("SELECT outcome, cost_usd, local FROM ledger").fetchall()
        reservations = db.execute("SELECT count(*) FROM budget_reservations").fetchone()[0]
        claimed = db.execute("SELECT period_key FROM budget_notices").fetchall()
    finally:
        db.close()
    spent = sum((Decimal(c) for o, c, local in rows if c is not None and not local), Decimal(0))
    budget_rows = [r for r in rows if r[0] == "budget"]

    print(
        f"budget race: {answered} answered ({sum(r.ok for r in ours)} here, "
        f"{theirs['answered']} in the second process), {denied} denied, spent ${spent}"
    )
    assert spent <= DAILY_USD, f"spent ${spent} of a ${DAILY_USD} daily budget"
    assert spent == Decimal("0.01") * answered
    assert 3 <= answered < 2 * CALLS  # some fit, most were refused
    assert sent == answered, "a denied call reached the provider"
    assert len(budget_rows) == denied  # one budget row per denied call
    assert len(rows) == 2 * CALLS
    assert reservations == 0, "a reservation outlived its call"
    assert len(claimed) == 1
    assert len(notices) + theirs["notices"] == 1, "budget notice not once per period"
