"""Sharded mode's assignment, pure: which live member runs which check.

Checks without `locations` are spread over every live member by rendezvous hashing of their
name (`daemon.util.rendezvous`); a check with `locations` runs once in each listed location,
on the member of that location the same hashing picks. Every node computes this from the same
member list, so all agree without a coordinator. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from daemon.util.rendezvous import owner

if TYPE_CHECKING:
    from daemon.store.members import Member
    from jobs.base import CheckSpec


def plan(specs: Sequence[CheckSpec], members: Sequence[Member]) -> dict[str, set[str]]:
    """node → the names of the checks it runs. A check without locations goes to one live
    member; a check with locations to one live member of each listed location (none where the
    location has no live member: `unstaffed` says so)."""
    nodes = sorted(m.node for m in members)
    located: dict[str, list[str]] = {}
    for member in members:
        if member.location is not None:
            located.setdefault(member.location, []).append(member.node)
    runs: dict[str, set[str]] = {node: set() for node in nodes}
    for spec in specs:
        places: list[str | None] = [*spec.locations] or [None]
        for where in places:
            who = owner(spec.name, nodes if where is None else located.get(where, ()))
            if who is not None:
                runs[who].add(spec.name)
    return runs


def unstaffed(specs: Sequence[CheckSpec], members: Sequence[Member]) -> dict[str, list[str]]:
    """Listed locations with no live member → the checks that list them."""
    here = {m.location for m in members}
    missing: dict[str, list[str]] = {}
    for spec in specs:
        for where in spec.locations:
            if where not in here:
                missing.setdefault(where, []).append(spec.name)
    return missing
