"""/metrics with several processes on one database: `watchkeeper_leader{node}` names the active
node as the lease row does, `watchkeeper_cluster_role{node,role}` this node's role, and node
names (configured or host names) come back intact through the exposition format's escaping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from daemon.config.settings import Settings
from daemon.store import Store
from daemon.web.metrics import exposition

ODD = 'eu "1"\\zone\nb'
"""A node name with every character the text format escapes: quote, backslash, line feed."""


def scrape(body: bytes, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name
    }


def test_a_single_process_says_nothing_about_roles(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        body = exposition(store, Settings(), None)
    assert scrape(body, "watchkeeper_leader") == {}
    assert scrape(body, "watchkeeper_cluster_role") == {}


def test_a_standby_names_the_active_node_and_its_own_role(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        held = store.lease.acquire("a:1:x", ODD, timedelta(seconds=30))
        assert held is not None
        body = exposition(store, Settings(), None, cluster=("node-b", "standby"))
        assert b'node="eu \\"1\\"\\\\zone\\nb"' in body  # escaped as the format requires
        assert scrape(body, "watchkeeper_leader") == {
            (("node", ODD),): 1.0,
            (("node", "node-b"),): 0.0,
        }
        assert scrape(body, "watchkeeper_cluster_role") == {
            (("node", "node-b"), ("role", "active")): 0.0,
            (("node", "node-b"), ("role", "standby")): 1.0,
            (("node", "node-b"), ("role", "member")): 0.0,
        }
        store.lease.release("a:1:x", held.epoch)  # nobody active: no node has 1
        body = exposition(store, Settings(), None, cluster=("node-b", "standby"))
        assert scrape(body, "watchkeeper_leader") == {(("node", "node-b"),): 0.0}


def test_the_active_node_is_one_series(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store.lease.acquire("a:1:x", ODD, timedelta(seconds=30)) is not None
        body = exposition(store, Settings(), None, cluster=(ODD, "active"))
    assert scrape(body, "watchkeeper_leader") == {(("node", ODD),): 1.0}
    roles = scrape(body, "watchkeeper_cluster_role")
    assert roles[(("node", ODD), ("role", "active"))] == 1.0
    assert roles[(("node", ODD), ("role", "standby"))] == 0.0
