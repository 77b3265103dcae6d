"""Owns the sweeps: the rule contract (base), the one rule style (rule), rules per cloud, rules().
May import daemon.models, daemon.util, daemon.errors, jobs.base, jobs.aws.api, jobs.kubernetes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.sweeps.base import Rule

# Each module exposes `RULES: list[Rule]`; imported only when a sweep asks, so listing the
# modules costs nothing and heavy clients load only when a sweep runs.
RULE_MODULES: dict[str, tuple[str, ...]] = {
    "security": (
        "jobs.sweeps.aws.security",
        "jobs.sweeps.aws.security_account",
        "jobs.sweeps.aws.security_policies",
        "jobs.sweeps.aws.security_config",
        "jobs.sweeps.aws.security_access",
        "jobs.sweeps.aws.security_exposure",
        "jobs.sweeps.k8s.security",
        "jobs.sweeps.k8s.security_workloads",
        "jobs.sweeps.k8s.rbac",
        "jobs.sweeps.k8s.network",
    ),
    "cost": (
        "jobs.sweeps.aws.cost",
        "jobs.sweeps.aws.cost_services",
        "jobs.sweeps.aws.cost_modernise",
        "jobs.sweeps.aws.cost_idle",
        "jobs.sweeps.k8s.cost",
    ),
}


def rules(kind: str) -> list[Rule]:
    found: list[Rule] = []
    for name in RULE_MODULES[kind]:
        found += importlib.import_module(name).RULES
    return found
