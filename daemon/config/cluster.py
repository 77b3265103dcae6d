"""`[cluster]`: how several `watchkeeper run` processes sharing one PostgreSQL database divide
the work (`daemon.service.cluster`).

`mode = "single"` (the default) is active/standby: one process runs everything, the others
wait. `mode = "sharded"`: every live process runs its share of the checks (rendezvous hashing
over the live members), and the lease holder alone evaluates incidents, notifies, triages and
sweeps. `location` names where this process looks from, for checks with `locations` (vantage
points). One config file serves every node: set the node's name and location in its
environment (`WATCHKEEPER_STORE__NODE`, `WATCHKEEPER_CLUSTER__LOCATION`).
"""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.errors import ConfigProblem

if TYPE_CHECKING:
    from daemon.config.settings import Settings

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Node and location names: they go into the User-Agent of HTTP checks and into `status`, so
no spaces, quotes or separators."""


class ClusterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["single", "sharded"] = Field(
        default="single",
        description='"single": one active process runs everything, the others stand by. '
        '"sharded" (needs [store] url): every live process runs its share of the checks; the '
        "active one alone evaluates incidents, notifies and sweeps.",
    )
    location: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description='Where this process looks from, e.g. "eu-1": checks with locations run '
        "once from a node of each listed location. Usually set per node in the environment "
        "(WATCHKEEPER_CLUSTER__LOCATION).",
    )


def node_name(configured: str | None) -> str:
    """This process's name among the members (and in the leader lease): `[store] node`, else
    the host name."""
    return configured or socket.gethostname()


def cluster_problems(settings: Settings) -> list[ConfigProblem]:
    """Sharding needs the shared database; vantage points need sharding."""
    problems: list[ConfigProblem] = []
    sharded = settings.cluster.mode == "sharded"
    if sharded and settings.store.url is None:
        problems.append(
            ConfigProblem(
                "cluster.mode",
                '"sharded" needs a shared PostgreSQL database: set [store] url, or use "single"',
            )
        )
    if sharded and not re.match(NAME_PATTERN, node_name(settings.store.node)):
        problems.append(
            ConfigProblem(
                "store.node",
                "a sharded node's name is letters, digits, '.', '_' or '-' (at most 63): set "
                "[store] node or WATCHKEEPER_STORE__NODE",
            )
        )
    for spec in settings.checks:
        if spec.locations and not sharded:
            problems.append(
                ConfigProblem(
                    f"checks[{spec.name}].locations",
                    'vantage points need [cluster] mode = "sharded" (nodes in those locations)',
                )
            )
    return problems
