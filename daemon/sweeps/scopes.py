"""Before any rule runs: check once that each scope the rules need can be swept at all (AWS
accepts the credentials), so a missing credential is one error for the sweep, not one per rule.

A scope that fails keeps its rules from running; they count as failed (their earlier findings
stay, not re-checked — never resolved).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from daemon.logging import redact
from daemon.models import format_duration
from jobs.sweeps.base import CollectError, SweepContext
from jobs.sweeps.rule import Scope, SweepRule

if TYPE_CHECKING:
    from jobs.sweeps.base import Rule

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScopeFailure:
    """A scope that could not be swept, and the rules it kept from running."""

    scope: str
    error: str
    rules: tuple[str, ...]

    def as_detail(self) -> dict[str, object]:
        return {"scope": self.scope, "error": self.error, "rules": list(self.rules)}


def scope_of(rule: Rule) -> Scope | None:
    """What `rule` needs before it can judge: its frame's scope (rules written in the one rule
    style); a rule that declares none is never held back."""
    return rule.frame.scope if isinstance(rule, SweepRule) else None


async def check_scopes(
    rules: Sequence[Rule], sctx: SweepContext, limit_s: float, deadline: float
) -> tuple[list[Rule], list[ScopeFailure]]:
    """The rules that may run, and each failed scope with the rules it holds back. Every scope
    is checked once, by `deadline` (the loop's clock: the end of the sweep's `limit_s`)."""
    scopes: dict[str, Scope] = {}
    for rule in rules:
        scope = scope_of(rule)
        if scope is not None:
            scopes.setdefault(scope.name, scope)
    errors = dict(
        zip(
            scopes,
            await asyncio.gather(*(_check(s, sctx, limit_s, deadline) for s in scopes.values())),
            strict=True,
        )
    )
    failed = {name for name, error in errors.items() if error is not None}
    held: dict[str, list[str]] = {name: [] for name in failed}
    runnable: list[Rule] = []
    for rule in rules:
        scope = scope_of(rule)
        if scope is not None and scope.name in failed:
            held[scope.name].append(rule.meta.id)
        else:
            runnable.append(rule)
    failures = [
        ScopeFailure(name, errors[name] or "", tuple(sorted(held[name]))) for name in sorted(held)
    ]
    return runnable, failures


async def _check(scope: Scope, sctx: SweepContext, limit_s: float, deadline: float) -> str | None:
    """None when `scope` can be swept, else the one sentence saying why not."""
    try:
        async with asyncio.timeout_at(deadline):
            await scope.check(sctx)
    except CollectError as exc:
        return str(exc) or f"{scope.name} cannot be reached"
    except TimeoutError:
        span = format_duration(timedelta(seconds=limit_s)) if limit_s >= 1 else f"{limit_s:g}s"
        return f"timed out: {scope.name} did not answer within the sweep's {span} limit"
    except Exception as exc:
        log.exception("sweep scope check crashed", scope=scope.name)
        return "scope check crashed: " + redact(f"{type(exc).__name__}: {exc}")[:300]
    return None
