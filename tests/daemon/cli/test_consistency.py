"""The command line keeps its promises everywhere: every command takes --config (and
--no-color), every pointer to a command leads somewhere, a failure is said once, `status`
knows whether a daemon runs, shell completion knows the estate."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from daemon.cli import main
from daemon.models import CheckResult, CheckState, EngineState
from daemon.store import Store
from tests import ROOT
from tests.daemon.cli.terminal import PY, environment, estate, on_pipe
from tests.peers.loopback import free_port
from tests.peers.providers.ollama import FakeOllama

EXEMPT: dict[tuple[str, ...], str] = {}
"""Commands that take no --config, each with the reason. None today: `config schema` takes
it (and needs no file), `demo` takes its models from it."""

WATCHKEEPER = str(Path(PY).parent / "watchkeeper")


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command a user can run: the leaves, and groups that run by themselves."""
    for name, command in sorted(group.commands.items()):
        here = (*path, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield here, command
            yield from commands(command, here)
        else:
            yield here, command


# -- --config and --no-color everywhere ----------------------------------------------------


def test_every_command_accepts_config_and_no_color(tmp_path: Path) -> None:
    found = list(commands(main))
    assert len(found) >= 23  # the walk reached every group
    for path, command in found:
        options = {opt for param in command.params for opt in getattr(param, "opts", ())}
        if path not in EXEMPT:
            assert "--config" in options, path
        assert "--no-color" in options, path
        result = CliRunner().invoke(
            main, [*path, "--config", str(tmp_path / "c.toml"), "--no-color", "--help"]
        )
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_config_schema_and_demo_take_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[providers.lmstudio]\napi = "openai"\n'
        f'base_url = "http://127.0.0.1:{free_port()}/v1"\n'
        '[routing]\ntriage = ["lmstudio/qwen3-8b"]\nrca = ["lmstudio/qwen3-8b"]\n'
    )
    schema = on_pipe("config", "schema", "--config", str(config))
    assert schema.returncode == 0 and json.loads(schema.stdout)["title"]
    demo = on_pipe("demo", "--pause", "0", "--config", str(config))
    assert demo.returncode == 0, demo.stderr
    # the demo used this file's chains, not the defaults
    assert demo.stdout.startswith("triage: lmstudio/qwen3-8b\nrca:    lmstudio/qwen3-8b\n")
    assert "anthropic/claude-opus-4-6" not in demo.stdout


# -- config validate ----------------------------------------------------------------------


def test_validate_shows_schema_and_cross_entry_problems_and_names_variables(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        '[[checks]]\nname = "db"\ntype = "tcp"\nhost = "127.0.0.1"\nport = "x"\n'
        '[[checks]]\nname = "api"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 80\n'
        'depends_on = ["cache"]\n'
    )
    result = on_pipe(
        "config",
        "validate",
        "--config",
        str(config),
        env=environment(WATCHKEEPER_DAEMON__MAX_CONCURRENCY="abc"),
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any(
        line.startswith("environment: WATCHKEEPER_DAEMON__MAX_CONCURRENCY: ") for line in lines
    )
    assert any(line.startswith(f"{config}: checks[db].port: ") for line in lines)
    assert any(
        line.startswith(f"{config}: checks[api].depends_on: 'cache' is not") for line in lines
    )
    assert not any("daemon.max_concurrency" in line for line in lines)


# -- pointers -------------------------------------------------------------------------------

POINTER = re.compile(r"`watchkeeper ([a-z-]+(?: [a-z-]+)*)")


def test_every_pointer_to_a_command_names_a_real_one() -> None:
    seen = 0
    for file in sorted([*(ROOT / "daemon").rglob("*.py"), *(ROOT / "jobs").rglob("*.py")]):
        for match in POINTER.finditer(file.read_text(encoding="utf-8")):
            words = match.group(1).split()
            command: click.Command = main
            used: list[str] = []
            for word in words:
                if isinstance(command, click.Group) and word in command.commands:
                    command = command.commands[word]
                    used.append(word)
                else:
                    break
            where = f"{file.relative_to(ROOT)}: `watchkeeper {match.group(1)}`"
            assert used or words[0] == "--help", where
            if "--help" in words:
                assert words.index("--help") == len(used), where  # help of that very command
                result = CliRunner().invoke(main, [*used, "--help"])
                assert result.exit_code == 0, where
            seen += 1
    assert seen > 10


def test_keys_list_points_to_help_that_says_where_keys_go(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("")
    shown = on_pipe(
        "keys",
        "list",
        "--config",
        str(config),
        env=environment(PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring"),
    )
    assert shown.returncode == 0
    pointer = re.search(r"`watchkeeper ([a-z ]+) --help`", shown.stdout)
    assert pointer is not None, shown.stdout
    help_text = on_pipe(*pointer.group(1).split(), "--help").stdout
    for needed in ("LoadCredential", "systemd-creds", "ANTHROPIC_API_KEY", "keyring"):
        assert needed in help_text, needed


# -- status ---------------------------------------------------------------------------------


def test_status_knows_a_running_daemon_by_its_pid(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nlog_level = "warning"\n'
        '[[checks]]\nname = "dead"\ntype = "tcp"\nhost = "127.0.0.1"\n'
        f'port = {free_port()}\ninterval = "1s"\ntimeout = "1s"\n'
    )
    daemon = subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment(),
    )
    try:
        deadline = time.monotonic() + 30
        state: dict[str, object] = {}
        while time.monotonic() < deadline:
            shown = on_pipe("status", "--json", "--config", str(config))
            if shown.returncode == 0:
                state = json.loads(shown.stdout)["daemon"]
                if state["running"] and state["last_cycle_at"]:
                    break
            time.sleep(0.2)
        assert state == {
            "running": True,
            "pid": daemon.pid,
            "last_cycle_at": state["last_cycle_at"],
        }, state
        text = on_pipe("status", "--config", str(config)).stdout
        assert text.startswith(f"daemon: running (pid {daemon.pid}) · last cycle 20")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    after = on_pipe("status", "--config", str(config)).stdout
    assert after.startswith("daemon: not running · last cycle 20")
    assert (
        json.loads(on_pipe("status", "--json", "--config", str(config)).stdout)["daemon"]["running"]
        is False
    )


def test_status_shows_flapping_checks(tmp_path: Path) -> None:
    config = estate(tmp_path, "refused")
    now = datetime.now(UTC)
    with Store.open(tmp_path / "state") as store:
        state = store.incidents.engine_state()
        flips = [now - timedelta(minutes=m) for m in range(5)]
        state.checks["api"] = CheckState(flapping=True, changes=flips, failing=True)
        result = CheckResult(check="api", status="failing", evidence="refused", started_at=now)
        store.incidents.commit_cycle(
            [result], EngineState.model_validate(state.model_dump()), [], [], []
        )
    text = on_pipe("status", "--config", str(config)).stdout
    assert "flapping: api (" in text
    row = next(line for line in text.splitlines() if line.startswith("api "))
    assert row.split()[-1] == "flapping"  # the NOTE column
    data = json.loads(on_pipe("status", "--json", "--config", str(config)).stdout)
    assert data["flapping"] == ["api"]
    assert data["checks"]["api"]["marks"] == ["flapping"]


def test_incidents_all_shows_the_failure_of_a_resolved_incident(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        '[[checks]]\nname = "db"\ntype = "tcp"\nhost = "127.0.0.1"\n'
        f"port = {port}\nfailure_threshold = 1\nsuccess_threshold = 1\n"
    )
    assert on_pipe("check", "--record", "--config", str(config)).returncode == 1
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert on_pipe("check", "--record", "--config", str(config)).returncode == 0
    rows = on_pipe("incidents", "--all", "--config", str(config)).stdout.splitlines()
    row = next(line for line in rows if line.startswith("#1 "))
    assert "resolved" in row and "refused" in row, row
    assert "succeeded" not in row


# -- a failure is said once -----------------------------------------------------------------


def test_a_failure_is_printed_once(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    unwritable = tmp_path / "unwritable.toml"
    unwritable.write_text(
        f'[daemon]\nstate_dir = "{blocker}/state"\n'
        '[[checks]]\nname = "dead"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 9\n'
    )
    recorded = on_pipe("check", "--record", "--config", str(unwritable))
    assert recorded.returncode == 2
    assert len(recorded.stderr.splitlines()) == 1, recorded.stderr

    config = estate(tmp_path / "e", "refused")
    text = config.read_text() + f'[providers.ollama]\nbase_url = "http://127.0.0.1:{free_port()}"\n'
    config.write_text(text)
    asked = on_pipe("ask", "what is down?", "--config", str(config))
    assert asked.returncode == 1
    (line,) = asked.stderr.splitlines()
    assert line.startswith("watchkeeper: no model could answer — ollama/gemma4:27b: unreachable")
    investigated = on_pipe("investigate", "1", "--config", str(config))
    assert investigated.returncode == 1
    assert investigated.stderr == ""  # the message on stdout says why, once
    assert "AI off: no model reachable — run watchkeeper models" in investigated.stdout
    tested = on_pipe("keys", "test", "anthropic", "--config", str(config))
    assert tested.returncode == 1
    (line,) = tested.stderr.splitlines()
    assert line.startswith("anthropic: FAILED — ")


# -- route set warns ------------------------------------------------------------------------


def test_route_set_warns_about_models_that_cannot_answer(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[providers.ollama]\nbase_url = "http://127.0.0.1:{free_port()}"\n'
    )
    result = on_pipe(
        "route",
        "set",
        "rca",
        "anthropic/claude-opus-4-6,ollama/gemma4:27b",
        "--config",
        str(config),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("rca → anthropic/claude-opus-4-6 → ollama/gemma4:27b")
    warnings = result.stderr.splitlines()
    assert warnings[0] == (
        "watchkeeper: warning: anthropic/claude-opus-4-6 has no key: run `watchkeeper keys set "
        "anthropic` (`watchkeeper keys --help` lists every way to give one)"
    )
    assert warnings[1].startswith(
        "watchkeeper: warning: ollama/gemma4:27b is not usable now: unreachable"
    )
    assert warnings[2] == (
        "watchkeeper: warning: no model of this chain is usable now: rca is skipped until one is"
    )
    assert len(warnings) == 3


def test_route_set_to_a_model_that_answers_warns_about_nothing(tmp_path: Path) -> None:
    with FakeOllama(models=["qwen3:8b"]) as ollama:
        config = tmp_path / "c.toml"
        config.write_text(
            f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
            f'[providers.ollama]\nbase_url = "{ollama.url}"\n'
        )
        result = on_pipe("route", "set", "triage", "ollama/qwen3:8b", "--config", str(config))
    assert result.returncode == 0
    assert result.stderr == ""


# -- Markdown on a pipe ---------------------------------------------------------------------


def test_investigate_and_digest_print_plain_text_on_a_pipe(tmp_path: Path) -> None:
    rca = {
        "root_cause": "disk_full on db_primary [sda1] at 100%",
        "confidence": "high",
        "evidence": ["df: /var/lib/pg 100% (db_primary)"],
        "blast_radius": ["api"],
        "next_steps": ["free space on [sda1]", "rotate pg_wal"],
    }
    with FakeOllama(reply=json.dumps(rca)) as ollama:
        config = estate(tmp_path, "refused")
        config.write_text(
            config.read_text()
            + f'[providers.ollama]\nbase_url = "{ollama.url}"\n'
            + '[routing]\nrca = ["ollama/gemma4:27b"]\ndigest = ["ollama/gemma4:27b"]\n'
        )
        investigated = on_pipe("investigate", "1", "--config", str(config))
        digest = on_pipe("digest", "--config", str(config))
    assert investigated.returncode == 0, investigated.stderr
    out = investigated.stdout
    assert "disk_full on db_primary [sda1] at 100%" in out
    assert "free space on [sda1]" in out
    for syntax in ("**", "\\_", "\\[", "\\]"):
        assert syntax not in out, syntax
        assert syntax not in digest.stdout, syntax
    assert digest.returncode == 0, digest.stderr
    assert "Checks:" in digest.stdout


# -- shell completion -----------------------------------------------------------------------


def complete(line: str, config: Path | None = None) -> list[str]:
    """What bash would offer after `line` (click's completion protocol)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = environment(_WATCHKEEPER_COMPLETE="bash_complete", COMP_WORDS=line, COMP_CWORD=str(cword))
    if config is not None:
        env["WATCHKEEPER_CONFIG"] = str(config)
    out = subprocess.run([WATCHKEEPER], capture_output=True, text=True, env=env, timeout=30).stdout
    return [item.split(",", 1)[1] for item in out.splitlines() if item]


@pytest.fixture
def estate_config(tmp_path: Path) -> Path:
    config = estate(tmp_path, "refused", count=3)
    config.write_text(
        config.read_text()
        + '[[checks]]\nname = "web"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 80\n'
        + '[providers.lmstudio]\napi = "openai"\nbase_url = "http://127.0.0.1:1234/v1"\n'
        + '[routing]\ntriage = ["lmstudio/qwen3-8b"]\n'
    )
    return config


def test_completion_offers_checks_incidents_providers_and_models(estate_config: Path) -> None:
    assert complete(f"watchkeeper check --config {estate_config} ") == ["api", "web"]
    assert complete("watchkeeper check api ", estate_config) == ["web"]
    assert complete(f"watchkeeper incidents --config {estate_config} show ") == ["3", "2", "1"]
    assert complete("watchkeeper investigate ", estate_config) == ["3", "2", "1"]
    providers = complete("watchkeeper keys set ", estate_config)
    assert {"ollama", "anthropic", "openai", "google", "cohere", "lmstudio"} == set(providers)
    assert complete("watchkeeper keys test l", estate_config) == ["lmstudio"]
    models = complete("watchkeeper ask --model ", estate_config)
    assert models[0] == "lmstudio/qwen3-8b" and "anthropic/claude-opus-4-6" in models
    chain = complete("watchkeeper route set rca lmstudio/qwen3-8b,anth", estate_config)
    assert chain and all(c.startswith("lmstudio/qwen3-8b,anthropic/") for c in chain)


def test_completion_stays_light(estate_config: Path) -> None:
    probe = (
        "import sys\nfrom daemon.cli import main\n"
        "try:\n    main(prog_name='watchkeeper')\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('boto3', 'kubernetes', 'httpx', 'apprise', "
        "'pydantic', 'rich') if m in sys.modules))"
    )
    lines = ("watchkeeper check ", "watchkeeper investigate ", "watchkeeper keys set ")
    for line in lines:
        env = environment(
            _WATCHKEEPER_COMPLETE="bash_complete",
            COMP_WORDS=line,
            COMP_CWORD=str(len(line.split())),
            WATCHKEEPER_CONFIG=str(estate_config),
        )
        out = subprocess.run([PY, "-c", probe], capture_output=True, text=True, env=env).stdout
        assert out.splitlines()[-1] == "HEAVY []", (line, out)
        assert len(out.splitlines()) > 1, line  # it did complete something


def test_completion_never_creates_a_state_database(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    assert complete("watchkeeper investigate ", config) == []
    assert not (tmp_path / "state").exists()


def test_the_completion_database_name_is_the_stores() -> None:
    from daemon.cli._complete import DB_NAME
    from daemon.store.database import DB_NAME as STORE_DB_NAME

    assert DB_NAME == STORE_DB_NAME


def test_the_lock_holder_is_found_with_or_without_the_kernel_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import daemon.store.lock as lock

    assert lock.lock_holder(tmp_path) is None  # no lock file at all
    with lock.StateLock(tmp_path):
        assert lock.lock_holder(tmp_path) == os.getpid()
        monkeypatch.setattr(lock, "_kernel_lock_pid", lambda stat: None)  # e.g. overlayfs
        assert lock.lock_holder(tmp_path) == os.getpid()
    assert lock.lock_holder(tmp_path) is None  # released: the stale pid in the file is ignored
