"""The `command` check: run a local program and judge its exit code and output.

It runs without a shell unless asked, in a session of its own so a timeout kills everything
it started, and it keeps only a bounded tail of its output; it never prints `env` values.
When the program exits but something it started keeps its output open (`setsid sleep 30 &`),
the check does not wait for it: after a short grace the leftovers are killed and the exit code
is judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from typing import BinaryIO, Literal

from pydantic import Field, field_validator

from daemon.models import CheckResult, Status
from daemon.util.text import clip
from jobs.base import CheckContext, CheckSpec

SAFE_ENV = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "SHELL"})
"""Inherited by every command; anything else must be named in `inherit_env`."""
OUTPUT_CAP = 64 * 1024
"""Bytes kept per stream (the most recent ones); the rest is read and dropped."""
QUOTE_CHARS = 200
LINGER_S = 0.5
"""How long output may stay open after the program itself exited (its last words in flight)."""


class CommandCheck(CheckSpec):
    """A local command exits with an expected code (and prints what you expect)."""

    type: Literal["command"]
    command: list[str] | str = Field(
        description="Program and arguments, e.g. ['df', '-P', '/'], or one string that is "
        "split like a shell would (without running one, unless shell = true)."
    )
    shell: bool = Field(
        default=False, description="Run the command through /bin/sh (pipes, globs, $VARS)."
    )
    expected_exit: list[int] = Field(
        default_factory=lambda: [0], min_length=1, description="Exit codes that count as ok."
    )
    output_contains: str | None = Field(
        default=None, description="Substring that must appear in standard output."
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for the command. Values may be 'secret:NAME' "
        "references.",
    )
    inherit_env: list[str] = Field(
        default_factory=list,
        description="Names of the daemon's own environment variables to pass through, besides "
        "the harmless defaults (PATH, HOME, USER, LANG, LC_*, TZ, TMPDIR). Nothing else is "
        "inherited, so provider keys in the daemon's environment never reach a command.",
    )
    cwd: str | None = Field(default=None, description="Working directory to run in.")

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("command must not be empty")
            try:
                shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"command cannot be split into arguments: {exc}") from exc
        elif not value or not value[0]:
            raise ValueError("command must name a program")
        return value

    @property
    def display(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        values: dict[str, float | int | str | bool | None] = {}

        def done(status: Status, evidence: str) -> list[CheckResult]:
            latency = (time.perf_counter() - t0) * 1000
            return [
                self.result(
                    status, evidence, started_at=started_at, latency_ms=latency, values=values
                )
            ]

        shown = f"command `{clip(self.display, QUOTE_CHARS, flat=False)}`"
        try:
            env = self._environment(ctx)
        except _SecretError as exc:
            return done("error", f"{shown} not run: {exc}")

        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        # The pipes' inodes name every process still holding our output, even one that left
        # the session.
        pipes = frozenset(os.fstat(fd).st_ino for fd in (out_r, err_r))
        try:
            proc = await self._spawn(env, out_w, err_w)
        except OSError as exc:
            os.close(out_r)
            os.close(err_r)
            reason = exc.strerror or str(exc)
            where = f": {exc.filename}" if exc.filename else ""
            return done("error", f"{shown} could not start: {reason}{where}")
        finally:
            os.close(out_w)
            os.close(err_w)

        seconds = self.timeout.total_seconds()
        stdout, stderr = _Tail("stdout"), _Tail("stderr")
        pipe_files = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
        output = asyncio.ensure_future(
            asyncio.gather(stdout.drain(pipe_files[0]), stderr.drain(pipe_files[1]))
        )
        killed: list[int] = []
        try:
            async with asyncio.timeout(seconds):
                code = await proc.wait()
                ms = (time.perf_counter() - t0) * 1000
                await asyncio.wait([output], timeout=LINGER_S)
                if not output.done():
                    killed = await asyncio.to_thread(_kill_leftovers, proc.pid, pipes)
                    await asyncio.wait([output], timeout=LINGER_S)
        except TimeoutError:
            _kill_group(proc)
            await asyncio.to_thread(_kill_leftovers, proc.pid, pipes)
            if proc.returncode is None:
                await proc.wait()
            await asyncio.wait([output], timeout=LINGER_S)
            timed_out = f"{shown} timed out after {seconds:g} s; killed its process group"
            return done("failing", timed_out + _quote_tail(stderr, stdout))
        finally:
            if proc.returncode is None:  # cancelled: the daemon is stopping
                _kill_group(proc)
            output.cancel()
            await asyncio.gather(output, return_exceptions=True)
            for file in pipe_files:
                file.close()  # if its reader never started

        values["exit_code"] = code
        evidence = f"{shown} exited {code} in {ms:.0f} ms"
        if code < 0:
            evidence = f"{shown} was killed by {_signal_name(-code)} after {ms:.0f} ms"
        if killed:
            values["leftovers_killed"] = len(killed)
            pids = ", ".join(str(pid) for pid in killed[:5])
            evidence += f" (killed {len(killed)} leftover process(es) holding its output: {pids})"
        if code not in self.expected_exit:
            wanted = " or ".join(str(c) for c in self.expected_exit)
            return done("failing", f"{evidence}; expected {wanted}" + _quote_tail(stderr, stdout))
        if self.output_contains is not None and self.output_contains not in stdout.text():
            return done(
                "failing",
                f"{evidence}; stdout does not contain {self.output_contains!r}"
                + _quote_tail(stdout),
            )
        # What a healthy command printed ("42% of / used") is worth reading too.
        return done("ok", evidence + _quote_tail(stdout))

    def _environment(self, ctx: CheckContext) -> dict[str, str]:
        """A minimal environment: the safe defaults, `inherit_env`, then `env` (secrets
        resolved). The daemon's own environment may hold API keys: it is not passed on."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key in SAFE_ENV or key.startswith("LC_") or key in self.inherit_env
        }
        for key, ref in self.env.items():
            try:
                env[key] = ctx.resolve_secret(ref) if ref.startswith("secret:") else ref
            except Exception as exc:
                raise _SecretError(f"cannot resolve env {key} ({ref}): {exc}") from exc
        return env

    async def _spawn(self, env: dict[str, str], out: int, err: int) -> asyncio.subprocess.Process:
        # A new session makes the child a process-group leader we can kill as a whole.
        if self.shell:
            return await asyncio.create_subprocess_shell(
                self.display,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        argv = shlex.split(self.command) if isinstance(self.command, str) else self.command
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=self.cwd,
            start_new_session=True,
        )


class _SecretError(Exception):
    pass


class _Tail:
    """The last OUTPUT_CAP bytes of a stream; reading continues so the child never blocks."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.data = bytearray()
        self.dropped = 0

    async def drain(self, pipe: BinaryIO) -> None:
        """Read `pipe` to its end (or until cancelled); it is closed either way."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        try:
            while chunk := await reader.read(16 * 1024):
                self.data += chunk
                if len(self.data) > OUTPUT_CAP:
                    excess = len(self.data) - OUTPUT_CAP
                    del self.data[:excess]
                    self.dropped += excess
        finally:
            transport.close()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _quote_tail(*tails: _Tail) -> str:
    """`; stderr: …last words` from the first stream that printed anything, else nothing."""
    for tail in tails:
        text = " ".join(tail.text().split())
        if text:
            if len(text) > QUOTE_CHARS or tail.dropped:
                text = "…" + text[-QUOTE_CHARS:]
            return f"; {tail.label}: {text}"
    return ""


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:
        proc.kill()


def _kill_leftovers(session: int, pipes: frozenset[int]) -> list[int]:
    """SIGKILL what is left of the command: processes still in its session (`session` is the
    leader's pid) and any process holding one of its output pipes, wherever it went. Only
    Linux's /proc can tell; elsewhere the process group is all there is. Returns their pids."""
    targets = [pid for pid in _processes() if _belongs(pid, session, pipes)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return targets


def _processes() -> list[int]:
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    me = os.getpid()
    return [int(name) for name in names if name.isdigit() and int(name) != me]


def _belongs(pid: int, session: int, pipes: frozenset[int]) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # pid (comm) state ppid pgrp session …; comm may hold spaces and parentheses.
            fields = stat.read().rsplit(b")", 1)[1].split()
        if fields[0] == b"Z":
            return False
        if int(fields[3]) == session:
            return True
        wanted = {f"pipe:[{inode}]" for inode in pipes}
        fd_dir = f"/proc/{pid}/fd"
        return any(_link(f"{fd_dir}/{fd}") in wanted for fd in os.listdir(fd_dir))
    except (OSError, IndexError, ValueError):
        return False  # gone, or not ours to look at


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
