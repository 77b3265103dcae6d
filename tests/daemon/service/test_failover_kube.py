"""Active/standby elected by a Kubernetes Lease (`[store] election = "kubernetes"`): two real
`watchkeeper run` processes against the loopback API server and a real PostgreSQL. The active
one is killed with -9 and the standby takes over within the lease; meanwhile the standby
answers heartbeat pings and /metrics names the active node and each node's role."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.store import Store
from tests.daemon.service.test_failover import (
    LEASE_S,
    Node,
    active_node,
    titles,
    wait_for,
    write_config,
)
from tests.peers.kubernetes import FakeKubernetes
from tests.peers.loopback import free_port
from tests.peers.receivers import WebhookReceiver

NS = "ops"


def kube_config(
    home: Path,
    node: str,
    url: str,
    receivers: tuple[int, int],
    flag: Path,
    kubeconfig: Path,
    web: int,
) -> Path:
    """write_config's, electing through the Lease, serving pings and /metrics on `web`, and
    calling the second receiver's /beat-NODE as its outbound heartbeat."""
    path = write_config(home, node, url, receivers[0], flag)
    text = path.read_text().replace("[store]\n", '[store]\nelection = "kubernetes"\n', 1)
    beat = (
        f'heartbeat_url = "http://127.0.0.1:{receivers[1]}/beat-{node}"\nheartbeat_every = "1s"\n'
    )
    text = text.replace("[daemon]\n", "[daemon]\n" + beat, 1)
    text += f"""
[[checks]]
name = "nightly-job"
type = "heartbeat"
period = "1h"
token = "secret:WK_PING_TOKEN"

[store.kubernetes]
namespace = "{NS}"
kubeconfig = "{kubeconfig}"

[web]
enabled = true
listen = "127.0.0.1:{web}"
"""
    path.write_text(text)
    return path


def samples(base: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    scraped = httpx.get(base + "/metrics", timeout=5)
    assert scraped.status_code == 200
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
        if s.name == name
    }


def beats(receiver: WebhookReceiver, node: str) -> int:
    """Outbound heartbeat calls `node` made."""
    with receiver.lock:
        return sum(1 for r in receiver.requests if r.path == f"/beat-{node}")


def holder(k8s: FakeKubernetes) -> str:
    lease = k8s.cluster.leases.get(NS, "watchkeeper")
    return "" if lease is None else str(lease["spec"].get("holderIdentity", ""))


@pytest.mark.reliability
def test_two_nodes_elect_through_a_kubernetes_lease_and_fail_over_on_kill_9(
    tmp_path: Path,
    postgres_url: str,
    webhook_receiver: WebhookReceiver,
    make_webhook_receiver: Callable[[], WebhookReceiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor = make_webhook_receiver()  # the outside monitor of heartbeat_url
    token = secrets.token_urlsafe(16)
    monkeypatch.setenv("WK_PING_TOKEN", token)
    k8s = FakeKubernetes().start()
    kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    ports = {"a": free_port(), "b": free_port()}
    url = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    a, b = (
        Node(
            kube_config(
                tmp_path / n,
                f"node-{n}",
                postgres_url,
                (webhook_receiver.port, monitor.port),
                flag,
                kubeconfig,
                ports[n],
            )
        )
        for n in ("a", "b")
    )
    takeover: dict[str, float] = {}
    try:
        a.start()
        wait_for(lambda: len(titles(webhook_receiver)) == 1, "incident #1 from node-a")
        assert holder(k8s).startswith("node-a:")
        b.start()
        wait_for(lambda: "standby: another watchkeeper is active" in b.output(), "node-b up")
        wait_for(lambda: httpx.get(url["b"] + "/healthz").status_code == 200, "node-b listens")

        # the standby records a job's ping (one Service in front of both replicas)
        assert httpx.post(f"{url['b']}/ping/{token}", content=b"from b").status_code == 200
        assert httpx.post(f"{url['a']}/ping/{token}/0", content=b"from a").status_code == 200
        assert httpx.post(f"{url['b']}/ping/not-a-token").status_code == 404
        with Store.open(tmp_path, postgres_url) as store:
            pings = store.heartbeats.recent("nightly-job")
        assert [(p.kind, p.message) for p in pings] == [
            ("success", "from a"),
            ("success", "from b"),
        ]

        # /metrics names the active node on both, and each node's own role
        leader_b = samples(url["b"], "watchkeeper_leader")
        assert leader_b == {(("node", "node-a"),): 1.0, (("node", "node-b"),): 0.0}
        assert samples(url["b"], "watchkeeper_cluster_role") == {
            (("node", "node-b"), ("role", "active")): 0.0,
            (("node", "node-b"), ("role", "standby")): 1.0,
            (("node", "node-b"), ("role", "member")): 0.0,
        }
        assert samples(url["a"], "watchkeeper_leader") == {(("node", "node-a"),): 1.0}
        assert (
            samples(url["a"], "watchkeeper_cluster_role")[(("node", "node-a"), ("role", "active"))]
            == 1.0
        )
        time.sleep(LEASE_S)  # renewals keep node-a active
        assert b.proc is not None and b.proc.poll() is None
        assert active_node(b.config) == "node-a"
        # only the active node calls heartbeat_url: it is the one committing cycles
        assert beats(monitor, "node-a") >= 2 and beats(monitor, "node-b") == 0

        a.kill9()
        killed = time.monotonic()
        wait_for(lambda: holder(k8s).startswith("node-b:"), "node-b to win the Lease")
        takeover["lease"] = time.monotonic() - killed
        wait_for(lambda: active_node(b.config) == "node-b", "node-b to lead")
        takeover["active"] = time.monotonic() - killed
        wait_for(
            lambda: samples(url["b"], "watchkeeper_leader") == {(("node", "node-b"),): 1.0},
            "node-b's /metrics to name itself",
        )
        wait_for(lambda: beats(monitor, "node-b") >= 1, "node-b's heartbeat, once active")

        a.start()  # back, as a standby; a clean stop of node-b hands over at once
        wait_for(lambda: a.output().count("standby: another watchkeeper") == 1, "node-a up")
        assert b.proc is not None
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(30) == 0, b.output()
        stopped = time.monotonic()  # it released the Lease on its way out
        wait_for(lambda: holder(k8s).startswith("node-a:"), "node-a to win the Lease again")
        takeover["handover"] = time.monotonic() - stopped
        wait_for(lambda: active_node(a.config) == "node-a", "node-a to lead again")
        time.sleep(LEASE_S)
        assert a.stop() == 0, a.output()
    finally:
        for node in (a, b):
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
        k8s.stop()
    print(
        "takeover after kill -9 (Lease / active in status), handover after a SIGTERM stop: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in takeover.items())
    )
    # the Lease: three holders, each one more transition; the database's epoch follows it
    lease = k8s.cluster.leases.get(NS, "watchkeeper")
    assert lease is not None
    assert lease["spec"]["holderIdentity"] == ""  # node-a released it on its clean stop
    assert lease["spec"]["leaseTransitions"] == 3
    assert not [w for w in k8s.cluster.leases.writes if w[2] not in (200, 201, 409)]
    with Store.open(tmp_path, postgres_url) as store:
        row, _ = store.lease.current()
        assert row is not None and row.epoch == 3 and row.node == "node-a"
        assert [i.id for i in store.incidents.recent(include_resolved=True)] == [1]
    assert titles(webhook_receiver) == ["[HIGH] dead-port failing — incident #1"]
    # a standby sees the Lease expire LEASE_S after it last saw it change, and looks every
    # LEASE_S / 5 (+ a margin for a loaded 2-core CI machine)
    assert takeover["lease"] <= LEASE_S + 2 * LEASE_S / 5 + 5.0, takeover
    assert takeover["handover"] < LEASE_S, takeover  # released: no waiting for expiry
