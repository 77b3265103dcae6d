"""Nightly sweeps: security and cost rules over AWS and Kubernetes, registered by module.

Each module listed here exposes `RULES: list[Rule]`; heavy clients load only when a sweep runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.sweeps.base import Rule

RULE_MODULES: dict[str, tuple[str, ...]] = {
    "security": (
        "jobs.sweeps.aws.security",
        "jobs.sweeps.aws.security_account",
        "jobs.sweeps.k8s.security",
    ),
    "cost": ("jobs.sweeps.aws.cost", "jobs.sweeps.k8s.cost"),
}


def rules(kind: str) -> list[Rule]:
    found: list[Rule] = []
    for name in RULE_MODULES[kind]:
        found += importlib.import_module(name).RULES
    return found
