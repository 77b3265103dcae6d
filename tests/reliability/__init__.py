"""Reliability tests: the daemon under kill -9, provider faults, canary secrets, fuzzed config
and concurrent budgets. Marked `reliability`; `pytest -m reliability` runs only them.

The small helpers below are shared by those modules (driving `python -m daemon` as a real
process, waiting without fixed sleeps); they never reach past loopback.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable

from tests import ROOT
from tests.peers.providers import key_variables

PY = sys.executable
SEED_ENV = "WATCHKEEPER_RELIABILITY_SEED"


def seed(name: str) -> int:
    """The seed of one randomised test: `$WATCHKEEPER_RELIABILITY_SEED` to replay a failure,
    else a fresh one. Printed, so a failing run's captured output names it."""
    value = os.environ.get(SEED_ENV)
    chosen = int(value) if value else random.SystemRandom().randrange(1, 2**31)
    print(f"{name}: seed {chosen} (replay with {SEED_ENV}={chosen})")
    return chosen


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment for a `python -m daemon` child, minus anything that would point
    it at the caller's systemd, config or keys; plus `extra`."""
    drop = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "WATCHKEEPER_", "LISTEN_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for name in (*key_variables(), "CREDENTIALS_DIRECTORY"):
        base.pop(name, None)
    base["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    base["PYTHONPATH"] = str(ROOT)
    base.update(extra)
    return base


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """`python -m daemon ARGS`, captured."""
    return subprocess.run(
        [PY, "-m", "daemon", *args],
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll `predicate` until it is truthy; fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
