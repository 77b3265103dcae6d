"""`watchkeeper ARGS` run inside the test process (click's CliRunner), answered the way
`subprocess.run([python, "-m", "daemon", ...], capture_output=True, text=True)` answers.

For tests where the process boundary itself is not what is tested. Signals, the state-directory
lock held by a running daemon, sd_notify, kill -9, what `--help` imports and the reliability
suite keep real processes. Each call starts from what a fresh process would see — its own
environment, no registered secrets, no cached keyring backend, no "price unknown" warning
already given — and puts the test process back as it was: logging, structlog, the environment.
"""

from __future__ import annotations

import logging
import os
import subprocess
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import structlog
from click.testing import CliRunner

PROG = "python -m daemon"
"""What click calls the program in usage lines when started as `python -m daemon`."""


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m daemon ARGS`, in process. `env` is the whole environment of the "process"
    (None: this one's, as a child would inherit it); `input` is its standard input."""
    from daemon.cli import main

    with _as_a_fresh_process(env):
        result = CliRunner().invoke(main, list(args), input=input, prog_name=PROG)
    stderr, code = result.stderr, result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the interpreter would have printed for an uncaught exception, and its status.
        stderr += "".join(traceback.format_exception(result.exception))
        code = 1
    return subprocess.CompletedProcess([PROG, *args], code, result.stdout, stderr)


@contextmanager
def _as_a_fresh_process(env: Mapping[str, str] | None) -> Iterator[None]:
    import keyring.core

    from daemon import logging as wk_logging
    from daemon.ai import pricing
    from daemon.redaction import KNOWN_SECRETS

    saved_env = dict(os.environ)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in wk_logging.NOISY_LOGGERS}
    structlog_config = structlog.get_config()
    known, warned = KNOWN_SECRETS.values, set(pricing._warned)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    KNOWN_SECRETS.clear()
    pricing._warned.clear()
    keyring.core._keyring_backend = None  # chosen again from PYTHON_KEYRING_BACKEND
    try:
        yield
    finally:
        keyring.core._keyring_backend = None
        pricing._warned.clear()
        pricing._warned.update(warned)
        KNOWN_SECRETS.clear()
        for value in known:
            KNOWN_SECRETS.add(value)
        structlog.configure(**structlog_config)
        for name, noisy_level in noisy.items():
            logging.getLogger(name).setLevel(noisy_level)
        root.handlers[:] = handlers
        root.setLevel(level)
        os.environ.clear()
        os.environ.update(saved_env)
