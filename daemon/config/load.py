"""Find, read and validate the configuration: one TOML file plus `WATCHKEEPER_*` environment
overrides, cross-checked, every problem as `file: dotted.key: what is wrong, what to do`.

Nothing here resolves or prints a secret value (`secret:NAME` references stay references).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from daemon.config.checks import checks_json_schema
from daemon.config.cross import cross_check, state_dir_problems
from daemon.config.paths import default_config_paths
from daemon.config.problems import nul_problems, problems_from_validation
from daemon.config.settings import ENV_PREFIX, Settings, toml_data
from daemon.errors import ConfigError, ConfigProblem


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """`--config`, else `$WATCHKEEPER_CONFIG`, else the platform defaults."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(str(path), [ConfigProblem("", "file not found")])
        return path
    env = os.environ.get("WATCHKEEPER_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                str(path), [ConfigProblem("", "file not found (from $WATCHKEEPER_CONFIG)")]
            )
        return path
    for candidate in default_config_paths():
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(p) for p in default_config_paths())
    raise ConfigError(
        "watchkeeper",
        [
            ConfigProblem(
                "",
                f"no config file found (looked in {looked}); pass --config PATH or set "
                "WATCHKEEPER_CONFIG — config.example.toml is a working start",
            )
        ],
    )


def load_settings(path: Path) -> Settings:
    """Parse, validate and cross-check one config file. Raises ConfigError with every problem."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("", "not UTF-8 text")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("", f"invalid TOML: {exc}")]) from exc
    nul = nul_problems(data)
    if nul:
        raise ConfigError(source, nul)
    token = toml_data.set(data)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(source, problems_from_validation(exc, data)) from None
    except SettingsError as exc:  # an environment override that is not valid JSON
        raise ConfigError("environment", [_override_problem(exc)]) from None
    finally:
        toml_data.reset(token)
    state_dir = settings.daemon.state_dir.expanduser()
    if not state_dir.is_absolute():
        state_dir = (path.parent / state_dir).resolve()
    settings.daemon.state_dir = state_dir
    problems = cross_check(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _override_problem(exc: SettingsError) -> ConfigProblem:
    """pydantic-settings names the field (`error parsing value for field "daemon"`), never the
    value: say which variable and what it must hold, and quote neither."""
    field = re.search(r'field "([^"]+)"', str(exc))
    variable = f"{ENV_PREFIX}{field.group(1).upper()}" if field else f"a {ENV_PREFIX}* variable"
    return ConfigProblem(
        variable,
        "not valid JSON: a table or list set from the environment must be JSON, e.g. "
        f'{ENV_PREFIX}DAEMON=\'{{"log_level": "debug"}}\', or set one key with '
        f"{ENV_PREFIX}DAEMON__LOG_LEVEL=debug",
    )


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (taplo, Even Better TOML)."""
    schema = Settings.model_json_schema()
    every = checks_json_schema()
    schema.setdefault("$defs", {}).update(every.pop("$defs", {}))
    schema["properties"]["checks"] = {**every, "title": "Checks", "description": "[[checks]]"}
    schema["title"] = "watchkeeper configuration"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def check_state_dir(path: Path) -> list[ConfigProblem]:
    """The state directory must exist (or be creatable) and be writable by us."""
    return state_dir_problems(path)
