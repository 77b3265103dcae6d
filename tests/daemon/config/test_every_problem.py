"""`config validate` reports every problem in one run — schema errors and the cross-entry rules
over the entries that did validate — and an environment override's problem names the
variable, not the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.errors import ConfigError

BROKEN = """
[daemon]
state_dir = "state"

[[checks]]
name = "db"
type = "tcp"
host = "127.0.0.1"
port = "not a port"

[[checks]]
name = "api"
type = "http"
url = "http://127.0.0.1:8080/health"
depends_on = ["db", "cache"]

[[sweeps]]
name = "nightly"
kind = "security"
aws = { regions = ["eu-west-1"] }
cron = "0 2 * * *"
notify = ["ops"]
"""


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value).splitlines()


def test_schema_and_cross_entry_problems_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BROKEN)
    lines = problems(path)
    assert any(line.startswith(f"{path}: checks[db].port: ") for line in lines), lines
    # cross-entry rules ran over what validated: a dependency on a check that is not there,
    # and a sweep naming a notify target nobody declared
    assert (
        f"{path}: checks[api].depends_on: 'cache' is not a configured check; fix the name or "
        "add that check" in lines
    ), lines
    assert any(line.startswith(f"{path}: sweeps[nightly].notify: 'ops' is not") for line in lines)
    # `db` is in the file (only its port is wrong): depending on it is not a problem
    assert not any("'db' is not a configured check" in line for line in lines), lines
    assert len(lines) == 3, lines


def test_a_broken_provider_does_not_make_routes_to_it_unknown(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[providers.lmstudio]\napi = "openai"\nbase_url = "http://127.0.0.1:1234/v1"\n'
        'max_retries = "many"\n[routing]\ntriage = ["lmstudio/qwen3", "nope/x"]\n'
    )
    lines = problems(path)
    assert any(line.startswith(f"{path}: providers.lmstudio.max_retries: ") for line in lines)
    assert any("unknown provider 'nope'" in line for line in lines), lines
    assert not any("unknown provider 'lmstudio'" in line for line in lines), lines


def test_an_override_from_the_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nstate_dir = "state"\nmax_concurrency = 0\n')
    monkeypatch.setenv("WATCHKEEPER_INCIDENTS__FLAP_THRESHOLD", "abc")
    lines = problems(path)
    assert any(
        line.startswith("environment: WATCHKEEPER_INCIDENTS__FLAP_THRESHOLD: Input should be")
        for line in lines
    ), lines
    # the file's own problem is still the file's
    assert any(line.startswith(f"{path}: daemon.max_concurrency: ") for line in lines), lines
    assert "abc" not in "\n".join(lines)  # the value is never quoted


def test_a_json_override_names_its_variable_and_the_key_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n')
    monkeypatch.setenv("WATCHKEEPER_DAEMON", '{"max_concurrency": "lots"}')
    (line,) = problems(path)
    assert line.startswith("environment: WATCHKEEPER_DAEMON: max_concurrency: Input should be")


def test_a_file_problem_under_a_table_the_environment_also_sets_stays_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nstate_dir = "state"\nmax_concurrency = "lots"\n')
    monkeypatch.setenv("WATCHKEEPER_DAEMON__LOG_LEVEL", "debug")
    (line,) = problems(path)
    assert line.startswith(f"{path}: daemon.max_concurrency: ")


def test_a_name_with_a_line_break_stays_on_its_problem_line(tmp_path: Path) -> None:
    """Names come from the file: a provider called "q\\nr" must not start a second line that
    reads like a problem of its own (found by the config fuzzer)."""
    path = tmp_path / "config.toml"
    path.write_text('[routing]\ntriage = ["x\\ny/m"]\n[providers."q\\nr"]\napi = "nope"\n')
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "config", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert any("unknown provider 'x\\ny'" in line for line in lines)
    assert any("providers.q\\nr.api: " in line for line in lines)
