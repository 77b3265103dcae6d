"""Turn pydantic validation errors into `file: dotted.key: what is wrong, what to do` lines.

Keys are shown with the entry's name (`checks[api].port`) and quoted when they are not bare
TOML keys, so no input can break the one-problem-per-line format. A value that came from a
`WATCHKEEPER_*` variable is reported as `environment: VARIABLE: …`. Never shows input values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from daemon.errors import ConfigProblem
from jobs import CHECK_TYPES


def problems_from_validation(
    exc: ValidationError,
    data: dict[str, Any],
    env: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[ConfigProblem]:
    """One problem per error. `data` is what was validated (the file merged with the
    environment); `env` the part the `WATCHKEEPER_*` variables in `environ` gave."""
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        found = env_variable(loc, env or {}, environ or {})
        if found is None:
            problems.append(ConfigProblem(dotted(loc, data), _explain(error)))
            continue
        variable, depth = found
        # the key inside the variable's JSON: `max_concurrency`, or `checks[api].port` for an
        # entry of a list (its name is the entry's, so the table stays in front)
        full, head = dotted(loc, data), dotted(loc[:depth], data)
        inner = full.removeprefix(head + ".") if depth < len(loc) else ""
        message = f"{inner}: {_explain(error)}" if inner else _explain(error)
        problems.append(ConfigProblem(variable, message, source="environment"))
    return problems


ENV_PREFIX = "WATCHKEEPER_"


def env_variable(
    loc: tuple[int | str, ...], env: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[str, int] | None:
    """The variable that set the value at `loc`, and how many parts of `loc` its name
    covers — or None when the value came from the file. `WATCHKEEPER_DAEMON__MAX_CONCURRENCY`
    covers two; `WATCHKEEPER_DAEMON='{"max_concurrency": …}'` covers one (the rest is inside
    its JSON). A list set from the environment replaces the file's, so whatever is wrong
    inside it is the variable's."""
    names = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        head = loc[:depth]
        if not all(isinstance(part, str) for part in head):
            continue
        name = names.get(ENV_PREFIX + "__".join(str(part) for part in head).upper())
        if name is not None and _from_env(loc, env):
            return name, depth
    return None


def _from_env(loc: tuple[int | str, ...], env: Mapping[str, Any]) -> bool:
    node: Any = env
    for part in loc:
        if isinstance(node, list):
            return True
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def dotted(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """`("checks", 0, "http", "url")` → `checks[api-health].url` (name when it has one)."""
    parts: list[str] = []
    node: Any = data
    index = 0
    while index < len(loc):
        item = loc[index]
        if isinstance(item, int) and isinstance(node, list):
            entry = node[item] if item < len(node) else None
            label = entry.get("name") if isinstance(entry, dict) else None
            shown = _key_text(label) if isinstance(label, str) and label else str(item)
            parts[-1:] = [f"{parts[-1] if parts else ''}[{shown}]"]
            node = entry
        else:
            parts.append(_key_text(str(item)))
            node = node.get(item) if isinstance(node, dict) else None
        index += 1
    return ".".join(parts)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _key_text(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted — so a key holding a
    line break or a colon can never break the one-problem-per-line format."""
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _explain(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return (
            "unknown key; remove it or check its spelling "
            "(`watchkeeper config schema` lists every key)"
        )
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        types = ", ".join(sorted(CHECK_TYPES))
        return f"unknown check type {error['ctx']['tag']!r}; use one of: {types}"
    if kind == "union_tag_not_found":
        return 'missing `type`; every check needs one, e.g. type = "http"'
    message = str(error["msg"]).removeprefix("Value error, ")
    return message


def nul_problems(
    data: Any, loc: tuple[int | str, ...] = (), root: Any = None
) -> list[ConfigProblem]:
    """Every string (or table key) holding a NUL character: no path, argument, environment
    value or URL can carry one, and it would only fail later, at run time."""
    root = data if root is None else root
    if isinstance(data, str):
        return [ConfigProblem(dotted(loc, root), NUL_MESSAGE)] if "\x00" in data else []
    problems: list[ConfigProblem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if "\x00" in str(key):
                problems.append(ConfigProblem(dotted(loc, root) or "(top level)", NUL_MESSAGE))
                continue
            problems += nul_problems(value, (*loc, key), root)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            problems += nul_problems(value, (*loc, index), root)
    return problems


NUL_MESSAGE = "contains a NUL character (\\u0000), which no path, argument or URL can hold"
