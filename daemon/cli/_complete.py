"""Shell completion of check names and tags, incident ids, providers and models (click's
`shell_complete`; `eval "$(_WATCHKEEPER_COMPLETE=bash_source watchkeeper)"` installs it).

A completion runs on every Tab press, so it stays light: the config is read as raw TOML (no
pydantic; an invalid config still completes), the state database is opened read-only and never
created, migrated or locked, and nothing imports boto3, kubernetes, httpx or apprise. Any
failure means "no suggestions" — never a traceback into the shell.

With `[store] url` (PostgreSQL) the rows come from that database over a read-only session, in a
background thread given PG_DEADLINE_S: an unreachable server costs a Tab press that long, never
a hung shell.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

MAX_INCIDENTS = 100
PG_DEADLINE_S = 1.5
"""The longest a completion waits for PostgreSQL (libpq's connect_timeout cannot go below 2 s)."""
DB_NAME = "watchkeeper.db"
"""`daemon.store.database.DB_NAME` (a test pins it): importing the store would load pydantic."""


def complete_checks(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Configured check names not already on the command line."""
    try:
        _, data = _config(ctx)
        given = set(ctx.params.get(param.name or "", ()) or ())
        names = [
            str(c["name"]) for c in data.get("checks", []) if isinstance(c, dict) and "name" in c
        ]
        return _items((n for n in names if n not in given), incomplete)
    except Exception:
        return []


def complete_heartbeats(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Configured heartbeat check names."""
    try:
        _, data = _config(ctx)
        names = [
            str(c["name"])
            for c in data.get("checks", [])
            if isinstance(c, dict) and c.get("type") == "heartbeat" and "name" in c
        ]
        return _items(names, incomplete)
    except Exception:
        return []


def complete_tags(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Tags used by configured checks."""
    try:
        _, data = _config(ctx)
        found = sorted(
            {
                str(tag)
                for check in data.get("checks", [])
                if isinstance(check, dict) and isinstance(check.get("tags"), list)
                for tag in check["tags"]
            }
        )
        return _items(found, incomplete)
    except Exception:
        return []


def complete_incidents(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Incident ids, newest first, each with its check and state as the description."""
    try:
        path, data = _config(ctx)
        rows = _query(
            path,
            data,
            "SELECT id, check_name, status FROM incidents ORDER BY id DESC LIMIT ?",
            (MAX_INCIDENTS,),
        )
        return [
            CompletionItem(str(i), help=f"{check} ({status})")
            for i, check, status in rows
            if str(i).startswith(incomplete)
        ]
    except Exception:
        return []


def complete_providers(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """The built-in providers and the ones the config declares."""
    try:
        from daemon.llm import PROVIDERS

        _, data = _config(ctx)
        declared = data.get("providers", {})
        return _items([*PROVIDERS, *(p for p in declared if p not in PROVIDERS)], incomplete)
    except Exception:
        return []


def complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """provider/model references: the config's chains and prices, runtime routes, and the
    default chains. After a comma (`route set rca a/b,`), the next reference of the chain."""
    try:
        head, _, tail = incomplete.rpartition(",")
        prefix = head + "," if head else ""
        return [CompletionItem(prefix + ref) for ref in _known_models(ctx) if ref.startswith(tail)]
    except Exception:
        return []


def _known_models(ctx: click.Context) -> list[str]:
    import json

    from daemon.config.ai import CLOUD_DEFAULTS, LOCAL_DEFAULT, SUMMARY_DEFAULTS

    path, data = _config(ctx)
    refs: list[str] = []
    routing = data.get("routing", {})
    for chain in routing.values() if isinstance(routing, dict) else ():
        refs += [str(r) for r in chain] if isinstance(chain, list) else []
    refs += [str(r) for r in data.get("prices", {})]
    for (chain,) in _query(path, data, "SELECT refs_json FROM routing_overrides"):
        refs += [str(r) for r in json.loads(chain)]
    refs += [*CLOUD_DEFAULTS, *SUMMARY_DEFAULTS, LOCAL_DEFAULT]
    return list(dict.fromkeys(refs))


def _items(values: Iterable[str], incomplete: str) -> list[Any]:
    return [CompletionItem(v) for v in dict.fromkeys(values) if v.startswith(incomplete)]


def _config(ctx: click.Context) -> tuple[Path | None, dict[str, Any]]:
    """The config file the command would read (as `find_config` chooses it), parsed raw."""
    import tomllib

    from daemon.config.paths import default_config_paths

    path: Path | None = None
    node: click.Context | None = ctx
    while node is not None and path is None:
        given = node.params.get("config_path")
        path = Path(given).expanduser() if given else None
        node = node.parent
    if path is None and os.environ.get("WATCHKEEPER_CONFIG"):
        path = Path(os.environ["WATCHKEEPER_CONFIG"]).expanduser()
    if path is None:
        path = next((p for p in default_config_paths() if p.is_file()), None)
    if path is None or not path.is_file():
        return None, {}
    return path, tomllib.loads(path.read_text(encoding="utf-8"))


def _state_dir(path: Path | None, data: dict[str, Any]) -> Path:
    from daemon.config.paths import default_state_dir

    configured = os.environ.get("WATCHKEEPER_DAEMON__STATE_DIR") or (
        data.get("daemon", {}).get("state_dir")
    )
    if not configured:
        return default_state_dir()
    state_dir = Path(str(configured)).expanduser()
    if not state_dir.is_absolute() and path is not None:
        state_dir = path.parent / state_dir
    return state_dir


def _query(
    path: Path | None, data: dict[str, Any], sql: str, args: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows from the state database the config names: PostgreSQL with `[store] url`, else the
    SQLite file."""
    store = data.get("store", {})
    url = os.environ.get("WATCHKEEPER_STORE__URL") or (
        store.get("url") if isinstance(store, dict) else None
    )
    if isinstance(url, str) and url.strip().startswith(("postgresql:", "postgres:")):
        password = os.environ.get("WATCHKEEPER_STORE__PASSWORD") or store.get("password")
        return _pg_query(url.strip(), password if isinstance(password, str) else None, sql, args)
    return _sqlite_query(_state_dir(path, data), sql, args)


def _pg_query(
    url: str, password: str | None, sql: str, args: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Rows from PostgreSQL, or none when it cannot answer within PG_DEADLINE_S. The thread is
    a daemon one: if the server never answers, the shell gets its (empty) answer anyway and the
    process exits without waiting for it."""
    import threading

    rows: list[tuple[Any, ...]] = []

    def fetch() -> None:
        try:
            import psycopg

            from daemon.secrets import resolve

            extra: dict[str, Any] = {"password": resolve(password)} if password else {}
            with psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=2,
                application_name="watchkeeper-complete",
                options="-c default_transaction_read_only=on -c statement_timeout=1000",
                **extra,
            ) as conn:
                found = conn.execute(sql.replace("?", "%s"), args).fetchall()
            rows.extend(tuple(row) for row in found)
        except Exception:  # noqa: S110 - completion: any failure is "no suggestions"
            pass

    worker = threading.Thread(target=fetch, name="complete-pg", daemon=True)
    worker.start()
    worker.join(PG_DEADLINE_S)
    return [] if worker.is_alive() else rows


def _sqlite_query(state_dir: Path, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Rows from the SQLite file opened read-only; none when it does not exist."""
    import sqlite3

    db = state_dir / DB_NAME
    if not db.is_file():
        return []
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=0.5)
    try:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()
