from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.command import OUTPUT_CAP, CommandCheck
from tests.jobs.conftest import assert_options_described

PY = sys.executable


def python(code: str) -> list[str]:
    return [PY, "-c", code]


async def run_command(ctx: CheckContext, command: list[str] | str, **options: Any) -> CheckResult:
    spec = CommandCheck.model_validate(
        {"name": "disk", "type": "command", "command": command, **options}
    )
    results = await spec.run(ctx)
    assert len(results) == 1
    return results[0]


async def test_exit_zero_is_ok(ctx: CheckContext) -> None:
    result = await run_command(ctx, python("pass"))
    assert result.status == "ok"
    assert result.evidence.startswith(f"command `{shlex.join(python('pass'))}` exited 0 in ")
    assert result.values["exit_code"] == 0


async def test_unexpected_exit_is_failing_with_stderr_tail(ctx: CheckContext) -> None:
    code = "import sys; print('checking'); sys.exit('disk / is 97% full\\nabort')"
    result = await run_command(ctx, python(code))
    assert result.status == "failing"
    assert " exited 1 in " in result.evidence
    assert result.evidence.endswith(" ms; expected 0; stderr: disk / is 97% full abort")
    assert result.values["exit_code"] == 1


async def test_stdout_is_quoted_when_stderr_is_empty(ctx: CheckContext) -> None:
    result = await run_command(ctx, python("print('degraded: 2 of 3 replicas'); exit(2)"))
    assert result.status == "failing"
    assert result.evidence.endswith("; expected 0; stdout: degraded: 2 of 3 replicas")


async def test_other_expected_exit_codes_are_ok(ctx: CheckContext) -> None:
    result = await run_command(ctx, python("exit(3)"), expected_exit=[0, 3])
    assert result.status == "ok"
    assert " exited 3 in " in result.evidence


async def test_long_output_is_capped_and_tail_quoted(ctx: CheckContext) -> None:
    code = f"import sys; sys.stderr.write('a' * {OUTPUT_CAP * 2} + ' LAST WORDS'); exit(1)"
    result = await run_command(ctx, python(code))
    assert result.status == "failing"
    assert result.evidence.endswith("; stderr: …" + "a" * 189 + " LAST WORDS")


async def test_output_contains_found_is_ok_and_quotes_stdout(ctx: CheckContext) -> None:
    result = await run_command(
        ctx, python("print('replication: streaming')"), output_contains="streaming"
    )
    assert result.status == "ok"
    assert result.evidence.endswith(" ms; stdout: replication: streaming")


async def test_output_contains_missing_is_failing(ctx: CheckContext) -> None:
    result = await run_command(
        ctx, python("print('replication: stopped')"), output_contains="streaming"
    )
    assert result.status == "failing"
    assert result.evidence.endswith(
        " ms; stdout does not contain 'streaming'; stdout: replication: stopped"
    )


async def test_string_command_is_split_without_a_shell(ctx: CheckContext) -> None:
    command = f"{shlex.quote(PY)} -c 'import sys; print(sys.argv[1:])' a '$HOME' 'b c'"
    result = await run_command(ctx, command, output_contains="['a', '$HOME', 'b c']")
    assert result.status == "ok"
    assert result.evidence.startswith(f"command `{command}` exited 0")


async def test_shell_true_runs_through_the_shell(ctx: CheckContext) -> None:
    command = f"echo one two | {shlex.quote(PY)} -c 'import sys; print(sys.stdin.read().upper())'"
    result = await run_command(ctx, command, shell=True, output_contains="ONE TWO")
    assert result.status == "ok"


async def test_missing_binary_is_an_error(ctx: CheckContext) -> None:
    result = await run_command(ctx, ["watchkeeper-no-such-binary", "--version"])
    assert result.status == "error"
    assert result.evidence == (
        "command `watchkeeper-no-such-binary --version` could not start: "
        "No such file or directory: watchkeeper-no-such-binary"
    )


async def test_missing_cwd_is_an_error(ctx: CheckContext, tmp_path: Path) -> None:
    result = await run_command(ctx, python("pass"), cwd=str(tmp_path / "gone"))
    assert result.status == "error"
    assert result.evidence.endswith(f" could not start: No such file or directory: {tmp_path}/gone")


async def test_cwd_is_used(ctx: CheckContext, tmp_path: Path) -> None:
    result = await run_command(
        ctx,
        python("import os; print(os.getcwd())"),
        cwd=str(tmp_path),
        output_contains=str(tmp_path),
    )
    assert result.status == "ok"


async def test_timeout_kills_the_whole_process_group(ctx: CheckContext, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The child forks a grandchild that keeps our stdout open and would outlive it.
    code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    began = time.monotonic()
    result = await run_command(ctx, python(code), timeout="1s")
    assert time.monotonic() - began < 5
    assert result.status == "failing"
    assert result.evidence.endswith(
        " timed out after 1 s; killed its process group; stdout: started"
    )
    assert _dies_soon(int(pid_file.read_text()))


async def test_killed_by_signal_is_named(ctx: CheckContext) -> None:
    result = await run_command(
        ctx, python("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    )
    assert result.status == "failing"
    assert " was killed by SIGTERM after " in result.evidence
    assert result.values["exit_code"] == -15


async def test_env_secret_is_resolved_into_the_environment() -> None:
    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=lambda ref: "hunter2")
        result = await run_command(
            ctx,
            python("import os; print(os.environ['PGPASSWORD'][::-1], os.environ['MODE'])"),
            env={"PGPASSWORD": "secret:pg", "MODE": "replica"},
            output_contains="2retnuh replica",
        )
    assert result.status == "ok"
    assert "hunter2" not in result.evidence


async def test_unresolvable_env_secret_is_an_error() -> None:
    def missing(ref: str) -> str:
        raise LookupError(f"no secret named {ref.removeprefix('secret:')}")

    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=missing)
        result = await run_command(ctx, ["true"], env={"TOKEN": "secret:tok"})
    assert result.status == "error"
    assert result.evidence == (
        "command `true` not run: cannot resolve env TOKEN (secret:tok): no secret named tok"
    )


@pytest.mark.parametrize("command", ["", "   ", [], [""], "echo 'unclosed"])
def test_empty_or_unsplittable_command_is_rejected(command: Any) -> None:
    with pytest.raises(ValidationError):
        CommandCheck.model_validate({"name": "c", "type": "command", "command": command})


def _dies_soon(pid: int) -> bool:
    """SIGKILL is delivered asynchronously: give the grandchild (our own peer) a moment."""
    deadline = time.monotonic() + 5
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie awaiting its reaper counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def test_schema_describes_every_option() -> None:
    assert_options_described(CommandCheck)


async def test_the_daemons_environment_is_not_passed_on(
    ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-0001")
    monkeypatch.setenv("SHARED_SETTING", "visible")
    code = (
        "import os; e = os.environ; "
        "print(e.get('ANTHROPIC_API_KEY'), e.get('SHARED_SETTING'), 'PATH' in e)"
    )
    plain = await run_command(ctx, python(code))
    assert plain.status == "ok"
    assert "None None True" in plain.evidence
    passed = await run_command(ctx, python(code), inherit_env=["SHARED_SETTING"])
    assert "None visible True" in passed.evidence


async def test_a_child_that_leaves_the_session_does_not_hold_the_check(
    ctx: CheckContext, tmp_path: Path
) -> None:
    """`setsid sleep &` keeps our output pipe open in a session of its own: the check judges
    the shell's exit after a short grace and kills the straggler instead of timing out (and
    leaking one sleeper per run)."""
    pid_file = tmp_path / "escaped.pid"
    script = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 31.4159' & echo started"
    began = time.monotonic()
    result = await run_command(ctx, script, shell=True, timeout="5s")
    took = time.monotonic() - began
    assert result.status == "ok", result.evidence
    assert took < 3
    escaped = _wait_for_pid(pid_file)
    assert result.evidence.startswith(f"command `{script}` exited 0 in ")
    assert f"(killed 1 leftover process(es) holding its output: {escaped}); stdout: started" in (
        result.evidence
    )
    assert result.values["leftovers_killed"] == 1
    assert _dies_soon(escaped)


async def test_a_background_child_in_the_session_is_killed_when_the_leader_exits(
    ctx: CheckContext, tmp_path: Path
) -> None:
    pid_file = tmp_path / "bg.pid"
    script = f"sh -c 'echo $$ > {pid_file}; exec sleep 31.4159' & echo started"
    result = await run_command(ctx, script, shell=True, timeout="5s")
    assert result.status == "ok", result.evidence
    assert _dies_soon(_wait_for_pid(pid_file))
    assert result.values["leftovers_killed"] == 1


async def test_a_daemonised_child_that_closed_its_output_is_left_alone(
    ctx: CheckContext, tmp_path: Path
) -> None:
    """Starting a service that detaches properly (stdio closed) is not ours to kill."""
    pid_file = tmp_path / "daemon.pid"
    script = (
        f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 31.4159' </dev/null >/dev/null 2>&1 &"
        " echo started"
    )
    result = await run_command(ctx, script, shell=True)
    pid = _wait_for_pid(pid_file)
    try:
        assert result.status == "ok"
        assert "leftover" not in result.evidence
        assert "leftovers_killed" not in result.values
        assert _alive(pid)
    finally:
        os.kill(pid, 9)


def _wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 5
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.01)
    return int(path.read_text())
