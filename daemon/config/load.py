"""Find, read and validate the configuration: one TOML file plus `WATCHKEEPER_*` environment
overrides, cross-checked, every problem as `file: dotted.key: what is wrong, what to do`.

Nothing here resolves or prints a secret value (`secret:NAME` references stay references).
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

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
                "WATCHKEEPER_CONFIG — `watchkeeper init` writes a commented starter config",
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
        raise ConfigError(source, every_problem(exc, data)) from None
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


def every_problem(exc: ValidationError, data: dict[str, Any]) -> list[ConfigProblem]:
    """The schema's problems — each naming the file, or the `WATCHKEEPER_*` variable that
    set the value — and then the cross-entry rules over every entry that did validate, so one
    `config validate` run shows both."""
    env = _environment()
    merged = _merge(data, env)
    problems = problems_from_validation(exc, merged, env, os.environ)
    partial, absent = _what_validated(exc, merged)
    if partial is not None:
        covered = [p.key for p in problems if p.source is None]
        problems += [
            p for p in cross_check(partial, absent) if not any(_under(p.key, k) for k in covered)
        ]
    return problems


class _Merged(Settings):
    """Settings from one dict that already holds the file and the environment merged."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _environment() -> dict[str, Any]:
    """What the `WATCHKEEPER_*` variables set, as the settings see it."""
    from pydantic_settings import EnvSettingsSource

    try:
        return EnvSettingsSource(Settings)()
    except SettingsError:
        return {}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, tables merged key by key, anything else replaced — as the
    settings sources merge the environment over the file."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


LIST_TABLES = ("checks", "notify", "sweeps")
ATTEMPTS = 3


def _what_validated(
    exc: ValidationError, data: dict[str, Any]
) -> tuple[Settings | None, dict[str, set[str]]]:
    """Settings of `data` without what failed: an invalid list entry (a check, a target, a
    sweep) is left out whole, an invalid key of a table falls back to its default. Also the
    names of the entries left out (they exist, so referring to them is no problem)."""
    pruned = copy.deepcopy(data)
    absent: dict[str, set[str]] = {}
    errors = exc
    for _ in range(ATTEMPTS):
        _prune(pruned, (e["loc"] for e in errors.errors()), absent)
        try:
            return _Merged(**pruned), absent
        except ValidationError as again:
            errors = again
    return None, absent


def _prune(
    data: dict[str, Any], locs: Iterable[tuple[int | str, ...]], absent: dict[str, set[str]]
) -> None:
    removals: dict[int, tuple[list[Any], set[int]]] = {}
    for loc in locs:
        table = data.get(str(loc[0])) if loc else None
        if len(loc) >= 2 and loc[0] in LIST_TABLES and isinstance(table, list):
            index = loc[1]
            if isinstance(index, int) and index < len(table):
                entry = table[index]
                name = entry.get("name") if isinstance(entry, dict) else None
                if isinstance(name, str):
                    absent.setdefault(str(loc[0]), set()).add(name)
                removals.setdefault(id(table), (table, set()))[1].add(index)
            continue
        # Drop the deepest part of `loc` that exists: the bad value, or the table that lacks
        # a required key.
        node: Any = data
        trail: list[tuple[Any, int | str]] = []
        for part in loc:
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            ):
                trail.append((node, part))
                node = node[part]  # type: ignore[index]
            else:
                break
        if not trail:
            continue
        container, key = trail[-1]
        if isinstance(container, list) and isinstance(key, int):
            removals.setdefault(id(container), (container, set()))[1].add(key)
        else:
            container.pop(key, None)
            if len(trail) == 2 and loc[0] == "providers":
                absent.setdefault("providers", set()).add(str(key))
    for items, indexes in removals.values():
        for index in sorted(indexes, reverse=True):
            del items[index]


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith((prefix + ".", prefix + "["))


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
