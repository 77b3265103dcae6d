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
