from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.config.load import check_state_dir, find_config, json_schema, load_settings
from daemon.errors import ConfigError
from daemon.models import Severity
from jobs import CHECK_TYPES
from tests import DATA

MINIMAL = """
[daemon]
state_dir = "state"

[[checks]]
name = "api"
type = "tcp"
host = "127.0.0.1"
port = 8080
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    return str(info.value).splitlines()


def test_example_config_validates() -> None:
    settings = load_settings(DATA / "config.example.toml")
    names = [c.name for c in settings.checks]
    assert "watchkeeper-health" in names
    assert any(not c.enabled for c in settings.checks)


def test_example_config_is_safe_to_copy() -> None:
    """Copied to /etc as it is, it binds no port and notifies nobody: the enabled checks look
    only at this machine, no [[notify]] target is active, the health endpoint is opt-in."""
    settings = load_settings(DATA / "config.example.toml")
    assert settings.daemon.health_listen is None
    assert settings.notify == []
    assert sorted(c.name for c in settings.enabled_checks) == ["localhost-dns", "root-disk"]
    text = (DATA / "config.example.toml").read_text(encoding="utf-8")
    assert '# health_listen = "127.0.0.1:8787"' in text  # documented, commented out
    assert '# url = "json://127.0.0.1:8788/watchkeeper"' in text


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    spec = settings.check("api")
    assert spec.severity is Severity.HIGH
    assert spec.failure_threshold == 2
    assert spec.success_threshold == 1
    assert spec.timeout == timedelta(seconds=10)
    assert spec.enabled is True


def test_relative_state_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.daemon.state_dir == (tmp_path / "state").resolve()


def test_durations_accept_units(tmp_path: Path) -> None:
    text = MINIMAL + 'interval = "5m"\ntimeout = "1500ms"\n'
    spec = load_settings(write(tmp_path, text)).check("api")
    assert spec.interval == timedelta(minutes=5)
    assert spec.timeout == timedelta(seconds=1.5)


def test_invalid_toml_is_one_line_naming_the_file(tmp_path: Path) -> None:
    lines = problems(tmp_path, "[daemon\nstate_dir = 1")
    assert len(lines) == 1
    assert lines[0].startswith(str(tmp_path / "config.toml") + ": invalid TOML")


def test_unknown_key_is_named_with_its_dotted_path(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + "colour = 'red'\n")
    assert lines == [
        f"{tmp_path / 'config.toml'}: checks[api].colour: unknown key; remove it or "
        "check its spelling (`watchkeeper config schema` lists every key)"
    ]


def test_unknown_top_level_table_is_an_error(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + "[daemonn]\nx = 1\n")
    assert any(": daemonn: unknown key" in line for line in lines)


def test_wrong_type_names_key_and_problem(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL.replace("port = 8080", 'port = "eighty"'))
    assert len(lines) == 1
    assert ": checks[api].port: " in lines[0]
    assert "integer" in lines[0]


def test_bad_interval_explains_the_format(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + 'interval = "every minute"\n')
    assert ": checks[api].interval: " in lines[0]
    assert "'30s'" in lines[0]


def test_bad_cron_is_reported(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + 'cron = "every day at noon"\n')
    assert ": checks[api].cron: " in lines[0]
    assert "crontab" in lines[0]


def test_interval_and_cron_together_are_rejected(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + 'interval = "1m"\ncron = "* * * * *"\n')
    assert "either interval or cron" in lines[0]


def test_unknown_check_type_lists_the_known_ones(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL.replace('type = "tcp"', 'type = "pinger"'))
    known = ", ".join(sorted(CHECK_TYPES))
    assert f": checks[api]: unknown check type 'pinger'; use one of: {known}" in lines[0]


def test_duplicate_check_names_are_rejected(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + MINIMAL.split("\n", 4)[-1])
    assert any("checks[api].name: duplicate name" in line for line in lines)


def test_depends_on_a_missing_check(tmp_path: Path) -> None:
    lines = problems(tmp_path, MINIMAL + 'depends_on = ["db"]\n')
    assert lines[0].endswith(
        "checks[api].depends_on: 'db' is not a configured check; fix the name or add that check"
    )


def test_dependency_cycle_is_rejected_with_its_path(tmp_path: Path) -> None:
    text = """
[[checks]]
name = "a"
type = "tcp"
host = "127.0.0.1"
port = 1
depends_on = ["b"]

[[checks]]
name = "b"
type = "tcp"
host = "127.0.0.1"
port = 2
depends_on = ["c"]

[[checks]]
name = "c"
type = "tcp"
host = "127.0.0.1"
port = 3
depends_on = ["a"]
"""
    lines = problems(tmp_path, text)
    assert len(lines) == 1
    assert "dependency cycle a → b → c → a" in lines[0]


def test_unparseable_apprise_url_names_the_scheme_not_the_url(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[notify]]\nname = "ops"\nurl = "nosuchscheme://token-abc123@x"\n'
    lines = problems(tmp_path, text)
    assert ": notify[ops].url: apprise cannot use this URL (scheme 'nosuchscheme')" in lines[0]
    assert "token-abc123" not in lines[0]


def test_secret_notify_url_is_not_resolved_at_validation(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[notify]]\nname = "ops"\nurl = "secret:ops_webhook"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.notify[0].url == "secret:ops_webhook"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("port = 8080", "port = -1") + "severity = 'urgent'\n"
    lines = problems(tmp_path, text)
    assert len(lines) == 2
    assert any("checks[api].severity" in line for line in lines)
    assert any("checks[api].port" in line for line in lines)


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHKEEPER_DAEMON__LOG_LEVEL", "debug")
    monkeypatch.setenv("WATCHKEEPER_INCIDENTS__FLAP_THRESHOLD", "9")
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.daemon.log_level == "debug"
    assert settings.incidents.flap_threshold == 9
    assert settings.checks[0].name == "api"  # TOML still applies


def test_bad_environment_override_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHKEEPER_DAEMON__MAX_CONCURRENCY", "lots")
    lines = problems(tmp_path, MINIMAL)
    assert any(
        line.startswith("environment: WATCHKEEPER_DAEMON__MAX_CONCURRENCY: ") for line in lines
    ), lines


def test_explicit_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        find_config(tmp_path / "nope.toml")


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("WATCHKEEPER_CONFIG", str(path))
    assert find_config(None) == path


def test_no_config_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHKEEPER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if Path("/etc/watchkeeper/config.toml").exists():
        pytest.skip("this machine has a system-wide config")
    with pytest.raises(ConfigError, match="no config file found") as info:
        find_config(None)
    assert str(tmp_path / "watchkeeper" / "config.toml") in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_state_dir_is_a_problem(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    found = check_state_dir(locked / "state")
    assert found and found[0].key == "daemon.state_dir"
    assert "cannot write" in found[0].message


def test_state_dir_that_is_a_file_is_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    found = check_state_dir(blocker)
    assert found and found[0].key == "daemon.state_dir"


def test_json_schema_lists_every_check_type() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    for kind in ("http", "tcp", "tls", "dns", "command"):
        assert f'"const": "{kind}"' in text or f'"enum": ["{kind}"]' in text
    assert schema["properties"]["daemon"]
