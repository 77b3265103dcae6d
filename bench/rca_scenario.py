"""One `bench.rca` scenario: a failure pattern, the evidence the incident opens with, the
pieces an engineer needs to name the cause, and the look-ups a scripted model makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Plan = list[list[tuple[str, dict[str, Any]]]]
"""The model's tool calls, one list per turn. A string argument (at any depth) that is a key
of the scenario's placeholders (SHOP_URL, an ARN the setup created) is replaced by its value."""


@dataclass
class Scenario:
    name: str
    check: str
    evidence: str
    pieces: list[str]
    plan: Plan
    values: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[Any, Any], None] = lambda k8s, prom: None
    history: list[str] = field(default_factory=list)
    """Earlier evidence of the check (oldest first), stored as ok results."""
    aws: Callable[[Any], dict[str, str]] | None = None
    """Arranges moto (given a tests.peers.aws.Aws); returns placeholders for the plan."""
    subject: str | None = None
    radius: list[str] | None = None
    """The incident's blast radius (None: the bench's default for the check)."""


def substitute(value: Any, placeholders: dict[str, str]) -> Any:
    if isinstance(value, str):
        return placeholders.get(value, value)
    if isinstance(value, list | tuple):
        return type(value)(substitute(v, placeholders) for v in value)
    if isinstance(value, dict):
        return {k: substitute(v, placeholders) for k, v in value.items()}
    return value
