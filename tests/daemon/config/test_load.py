"""Loading: environment overrides that are not JSON are a configuration error naming the
variable (exit 2 from the CLI), never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.cli import main
from daemon.config.load import load_settings
from daemon.errors import ConfigError


@pytest.mark.parametrize(("variable", "value"), [("DAEMON", "{oops"), ("CHECKS", "not json")])
def test_a_malformed_table_override_names_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n')
    monkeypatch.setenv(f"WATCHKEEPER_{variable}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    (problem,) = caught.value.problems
    assert problem.key == f"WATCHKEEPER_{variable}"
    assert problem.message.startswith("not valid JSON")
    assert value not in str(caught.value)
    result = CliRunner().invoke(main, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2
    assert f"environment: WATCHKEEPER_{variable}: not valid JSON" in result.output
    assert "internal error" not in result.output


def test_a_nul_character_anywhere_is_refused_at_load_naming_each_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[daemon]\nstate_dir = "st\\u0000ate"\n'
        '[[checks]]\nname = "c"\ntype = "command"\ncommand = ["echo", "a\\u0000b"]\n'
        'env = {X = "a\\u0000"}\ncwd = "/tm\\u0000p"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [p.key for p in caught.value.problems] == [
        "daemon.state_dir",
        "checks[c].command[1]",
        "checks[c].env.X",
        "checks[c].cwd",
    ]
    assert all("NUL character" in p.message for p in caught.value.problems)


def test_a_provider_url_is_never_quoted_whole(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[providers.lm]\napi = "openai"\nbase_url = "http://u:pw-9f3@127.0.0.1:99999/v1?k=t0k"\n'
        '[providers.gw]\napi = "openai"\nbase_url = "https://u:pw-9f3@gw.example.com/v1?k=t0k"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert "providers.lm.base_url: http://***@127.0.0.1:99999/v1?k=*** has a port out" in text
    assert "providers.gw.base_url: https://***@gw.example.com/v1?k=*** holds credentials" in text
    assert "pw-9f3" not in text and "t0k" not in text


def test_check_urls_are_masked_in_config_problems(tmp_path: Path) -> None:
    """`config validate` prints to stderr, and under systemd to the journal."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[[checks]]\nname = "h"\ntype = "http"\nurl = "https://u:pw-9f3@example.com/?token=t0k"\n'
        '[[checks]]\nname = "p"\ntype = "prometheus"\nurl = "http://prom:99999/?token=t0k"\n'
        'query = "up"\nop = ">"\nthreshold = 1\n'
    )
    result = CliRunner().invoke(main, ["config", "validate", "--config", str(path)])
    assert result.exit_code == 2
    assert "checks[h].url: url must not hold credentials" in result.output
    assert "https://***@example.com/?token=***" in result.output
    assert (
        "checks[p].url: url port 99999 is out of range (1-65535) in http://prom:99999/?token=***"
        in (result.output)
    )
    assert "pw-9f3" not in result.output and "t0k" not in result.output
