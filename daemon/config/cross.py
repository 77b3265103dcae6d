"""Rules that span config entries: unique names, dependencies and cycles, schedules, notify
URLs, the model and sweep tables — and whether the state directory is usable.

Messages name the key and what to do; they never print a URL or a secret value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from daemon.config.ai import ai_problems
from daemon.config.cluster import cluster_problems
from daemon.config.settings import (
    ALL_NOTIFY_EVENTS,
    NotifyTarget,
    Settings,
    apprise_url_problem,
    https_url_problem,
    notify_target_problems,
    webhook_url_problem,
)
from daemon.config.sweeps import sweep_problems
from daemon.errors import ConfigProblem
from daemon.secrets import SECRET_PREFIX
from jobs.base import CheckSpec


def cross_check(
    settings: Settings, absent: Mapping[str, Collection[str]] | None = None
) -> list[ConfigProblem]:
    """Rules that span entries: unique names, dependencies, schedules, notification URLs.

    `absent` names entries by table (`checks`, `notify`, `providers`) that are in the file but
    failed validation, so are not in `settings`: they exist, so referring to them is fine (their
    own problems are reported already)."""
    absent = absent or {}
    problems: list[ConfigProblem] = []
    problems += _unique([c.name for c in settings.checks], "checks")
    problems += _unique([n.name for n in settings.notify], "notify")
    names = {c.name for c in settings.checks} | set(absent.get("checks", ()))
    for spec in settings.checks:
        for dep in spec.depends_on:
            if dep not in names:
                problems.append(
                    ConfigProblem(
                        f"checks[{spec.name}].depends_on",
                        f"{dep!r} is not a configured check; fix the name or add that check",
                    )
                )
            elif dep == spec.name:
                problems.append(
                    ConfigProblem(
                        f"checks[{spec.name}].depends_on", "a check cannot depend on itself"
                    )
                )
        problems += _schedule_problems(spec)
    problems += _cycle_problems(settings.checks)
    problems += _crontab_problem("digest.cron", settings.digest.cron)
    problems += _maintenance_problems(settings, names)
    problems += _notify_problems(settings.notify)
    unknown = {f"unknown provider {name!r}" for name in absent.get("providers", ())}
    problems += [
        p
        for p in ai_problems(settings.providers, settings.routing, settings.prices, settings.budget)
        if not any(p.message.startswith(u) for u in unknown)
    ]
    targets: dict[str, list[str]] = {t.name: list(t.events) for t in settings.notify}
    targets.update({name: list(ALL_NOTIFY_EVENTS) for name in absent.get("notify", ())})
    problems += sweep_problems(settings.sweeps, targets)
    problems += cluster_problems(settings)
    return problems


def _maintenance_problems(settings: Settings, checks: set[str]) -> list[ConfigProblem]:
    problems = _unique([w.name for w in settings.maintenance], "maintenance")
    for window in settings.maintenance:
        key = f"maintenance[{window.name}]"
        if window.cron is not None:
            problems += _crontab_problem(f"{key}.cron", window.cron)
        problems += [
            ConfigProblem(f"{key}.checks", f"{name!r} is not a configured check; fix the name")
            for name in window.checks
            if name not in checks
        ]
    return problems


def _unique(names: list[str], table: str) -> list[ConfigProblem]:
    seen: set[str] = set()
    problems: list[ConfigProblem] = []
    for name in names:
        if name in seen:
            problems.append(
                ConfigProblem(f"{table}[{name}].name", "duplicate name; names must be unique")
            )
        seen.add(name)
    return problems


def _schedule_problems(spec: CheckSpec) -> list[ConfigProblem]:
    key = f"checks[{spec.name}]"
    if spec.interval is not None and spec.cron is not None:
        return [ConfigProblem(f"{key}.cron", "set either interval or cron, not both")]
    if spec.cron is not None:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(spec.cron)
        except ValueError as exc:
            return [
                ConfigProblem(
                    f"{key}.cron",
                    f"{spec.cron!r} is not a crontab expression ({exc}); "
                    "use five fields, e.g. '*/5 * * * *'",
                )
            ]
    return []


def _crontab_problem(key: str, expression: str) -> list[ConfigProblem]:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        return [ConfigProblem(key, f"{expression!r} is not a crontab expression ({exc})")]
    return []


def _cycle_problems(checks: list[CheckSpec]) -> list[ConfigProblem]:
    graph = {c.name: [d for d in c.depends_on if d != c.name] for c in checks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [node, dep]
            if dep in graph and state.get(dep) is None:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[node] = 2
        return None

    for name in graph:
        if state.get(name) is None:
            cycle = visit(name, [name])
            if cycle:
                return [
                    ConfigProblem(
                        f"checks[{cycle[0]}].depends_on",
                        "dependency cycle " + " → ".join(cycle) + "; remove one of these links",
                    )
                ]
    return []


def _apprise_accepts(apprise: Any, url: str) -> bool:
    """Whether apprise can parse `url` — with apprise's own logging muted meanwhile: it logs an
    unparseable URL verbatim, and a notification URL usually carries a token."""
    import logging

    logger = logging.getLogger("apprise")
    previous = logger.disabled
    logger.disabled = True
    try:
        return bool(apprise.Apprise().add(url))
    finally:
        logger.disabled = previous


def _notify_problems(targets: list[NotifyTarget]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for target in targets:
        problems += [
            ConfigProblem(f"notify[{target.name}].{key}", message)
            for key, message in notify_target_problems(target)
        ]
        if target.kind == "webhook":
            problems += _webhook_problems(target)
        elif target.kind in ("slack", "teams") and target.url is not None:
            what = "a Slack webhook URL" if target.kind == "slack" else "a Teams Workflows URL"
            if not target.url.startswith(SECRET_PREFIX):  # else checked the same at delivery
                problem = https_url_problem(target.url, what)
                if problem is not None:
                    problems.append(ConfigProblem(f"notify[{target.name}].url", problem))
    plain = {
        t.name: t.url
        for t in targets
        if t.kind == "apprise" and t.url is not None and not t.url.startswith(SECRET_PREFIX)
    }
    if not plain:
        return problems
    import apprise

    for name, url in plain.items():
        if not _apprise_accepts(apprise, url):
            problems.append(ConfigProblem(f"notify[{name}].url", apprise_url_problem(url)))
    return problems


def _webhook_problems(target: NotifyTarget) -> list[ConfigProblem]:
    if target.url is None or target.url.startswith(SECRET_PREFIX):
        return []  # resolved (and checked the same way) at delivery
    problem = webhook_url_problem(target.url)
    return [] if problem is None else [ConfigProblem(f"notify[{target.name}].url", problem)]


def state_dir_problems(path: Path) -> list[ConfigProblem]:
    """The state directory must exist (or be creatable) and be writable by us."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [
            ConfigProblem(
                "daemon.state_dir",
                f"cannot write to {path}: {reason}; choose a writable directory "
                "(under systemd, StateDirectory= provides one)",
            )
        ]
    return []
