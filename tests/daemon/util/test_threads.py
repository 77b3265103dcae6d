"""The daemon-thread pool: bounded, first come first served, and never in the way of exit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from daemon.util.threads import DaemonPool


def test_it_never_runs_more_than_its_bound_and_queues_the_rest() -> None:
    pool = DaemonPool(2, "test-pool")
    gate, running, peak = threading.Event(), [0], [0]
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(5)
        with lock:
            running[0] -= 1
        return n

    futures = [pool.submit(work, n) for n in range(6)]
    time.sleep(0.1)
    assert sum(f.running() for f in futures) == 2  # the rest wait for a free thread
    gate.set()
    assert [f.result(5) for f in futures] == list(range(6))
    assert peak[0] == 2
    assert {t.name for t in threading.enumerate() if t.name.startswith("test-pool")} <= {
        "test-pool-1",
        "test-pool-2",
    }
    pool.shutdown()


def test_a_cancelled_waiting_call_never_runs_and_errors_reach_the_caller() -> None:
    pool = DaemonPool(1, "test-cancel")
    gate = threading.Event()
    ran: list[str] = []
    first = pool.submit(gate.wait, 5)
    second = pool.submit(ran.append, "second")
    assert second.cancel()
    failing = pool.submit(int, "not a number")
    gate.set()
    assert first.result(5) is True
    with pytest.raises(ValueError, match="invalid literal"):
        failing.result(5)
    assert ran == []
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print)


def test_asyncio_takes_it_as_the_default_executor() -> None:
    assert isinstance(DaemonPool(1, "x"), ThreadPoolExecutor)


def test_a_call_stuck_forever_does_not_keep_the_process_alive() -> None:
    code = (
        "import asyncio, threading\n"
        "from daemon.util.threads import DaemonPool\n"
        "async def main():\n"
        "    loop = asyncio.get_running_loop()\n"
        "    loop.set_default_executor(DaemonPool(2, 'stuck'))\n"
        "    stuck = loop.run_in_executor(None, threading.Event().wait)\n"
        "    await asyncio.sleep(0.1)\n"
        "    print('leaving', flush=True)\n"
        "asyncio.run(main())\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "leaving\n"
    assert time.monotonic() - started < 10  # a ThreadPoolExecutor would wait forever here
