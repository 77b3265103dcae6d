"""Shell completion of check names and tags, read from the config file as TOML.

Completion must answer in a blink and never fail loudly: it reads the file with `tomllib`
(no validation, no state directory) and offers nothing when the file cannot be read.
"""

from __future__ import annotations

from typing import Any

import click
from click.shell_completion import CompletionItem


def _checks(ctx: click.Context) -> list[dict[str, Any]]:
    import tomllib

    from daemon.config.load import find_config

    root = ctx.find_root()
    explicit = ctx.params.get("config_path") or (root.obj or {}).get("config_path")
    try:
        data = tomllib.loads(find_config(explicit).read_text(encoding="utf-8"))
    except Exception:  # no config, unreadable, invalid TOML: nothing to offer
        return []
    checks = data.get("checks")
    return [c for c in checks if isinstance(c, dict)] if isinstance(checks, list) else []


def check_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Configured check names starting with `incomplete`, with their type as help."""
    return [
        CompletionItem(name, help=str(check.get("type", "")))
        for check in _checks(ctx)
        if isinstance(name := check.get("name"), str) and name.startswith(incomplete)
    ]


def tags(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Tags used by configured checks, starting with `incomplete`."""
    found = {
        tag
        for check in _checks(ctx)
        if isinstance(check.get("tags"), list)
        for tag in check["tags"]
        if isinstance(tag, str)
    }
    return [CompletionItem(tag) for tag in sorted(found) if tag.startswith(incomplete)]
