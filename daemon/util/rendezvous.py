"""Rendezvous (highest-random-weight) hashing: which live node runs which check.

Every node scores each (check, node) pair with the same hash and the check goes to the node
with the highest score. Every node computes the same answer from the same member list, with no
coordinator and no stored assignment; when a node leaves, only the checks it owned move (each to
its own runner-up), and a node that joins takes from each other node only the checks it now
outscores them on — about 1/n of all checks. Ties are broken by name, so the answer never
depends on the order the members were listed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping


def score(key: str, node: str) -> int:
    """The pair's weight: 64 bits of BLAKE2b (stable across processes and versions, unlike
    Python's salted `hash`)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, key=node.encode()[:64]).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, nodes: Collection[str]) -> str | None:
    """The node that runs `key` (None: no node)."""
    if not nodes:
        return None
    return max(nodes, key=lambda node: (score(key, node), node))


def assign(keys: Iterable[str], nodes: Collection[str]) -> dict[str, str]:
    """key → its node, for every key (empty when there is no node)."""
    if not nodes:
        return {}
    members = sorted(nodes)
    return {key: max(members, key=lambda node: (score(key, node), node)) for key in keys}


def shares(assignment: Mapping[str, str], nodes: Collection[str]) -> dict[str, int]:
    """How many keys each node got (every node listed, 0 included)."""
    counts = dict.fromkeys(nodes, 0)
    for node in assignment.values():
        counts[node] = counts.get(node, 0) + 1
    return counts
