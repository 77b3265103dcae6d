"""The Kubernetes election backend against the loopback API server (its Leases speak the real
JSON, resourceVersion checks and Status bodies included) and a real PostgreSQL that fences:
what the Lease looks like, who wins a race, takeover after the term, and a deposed node that
cannot commit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from daemon.config.store import KubernetesLeaseSettings, StoreSettings
from daemon.errors import StateError
from daemon.models import EngineState, Ping
from daemon.service.kube_lease import ElectionError, KubernetesLeader, pod_namespace
from daemon.service.leader import Leader, election
from daemon.store import Store
from daemon.store.lease import Deposed
from tests.peers.kubernetes import TOKEN, FakeKubernetes

TERM = timedelta(seconds=3)
T0 = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
NS = "ops"


@pytest.fixture
def k8s() -> Iterator[FakeKubernetes]:
    server = FakeKubernetes().start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(k8s: FakeKubernetes, tmp_path: Path) -> Path:
    return k8s.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def elect(postgres_url: str, kubeconfig: Path) -> Iterator[Callable[[str], KubernetesLeader]]:
    """Makes a node electing through the Lease `ops/wk`; all are closed afterwards."""
    made: list[KubernetesLeader] = []

    def make(node: str) -> KubernetesLeader:
        settings = KubernetesLeaseSettings(name="wk", namespace=NS, kubeconfig=str(kubeconfig))
        made.append(KubernetesLeader(postgres_url, None, TERM, node, settings))
        return made[-1]

    yield make
    for leader in made:
        leader.close()


def test_the_store_setting_chooses_the_backend(postgres_url: str, kubeconfig: Path) -> None:
    chosen = StoreSettings.model_validate(
        {
            "url": postgres_url,
            "election": "kubernetes",
            "kubernetes": {"kubeconfig": str(kubeconfig), "namespace": NS},
        }
    )
    made = election(chosen, None)
    assert (
        isinstance(made, KubernetesLeader) and made.namespace == NS and made.name == "watchkeeper"
    )
    plain = election(StoreSettings.model_validate({"url": postgres_url}), None)
    assert type(plain) is Leader
    with pytest.raises(ValueError, match="needs url"):
        StoreSettings.model_validate({"election": "kubernetes"})
    with pytest.raises(ValueError, match="Kubernetes object name"):
        KubernetesLeaseSettings(name="Not_A_Name")


def test_the_pod_namespace_comes_from_the_service_account(tmp_path: Path) -> None:
    assert pod_namespace(tmp_path) == "default"
    (tmp_path / "namespace").write_text("monitoring\n")
    assert pod_namespace(tmp_path) == "monitoring"


def test_the_first_node_creates_the_lease_as_client_go_writes_it(
    elect: Callable[[str], KubernetesLeader], k8s: FakeKubernetes
) -> None:
    a, b = elect("node-a"), elect("node-b")
    won = a._try()
    assert won is not None and won.epoch == 1 and won.node == "node-a"
    stored = k8s.cluster.leases.get(NS, "wk")
    assert stored is not None
    spec = stored["spec"]
    assert spec["holderIdentity"] == a.holder
    assert spec["leaseDurationSeconds"] == 3
    assert spec["leaseTransitions"] == 1
    for stamp in ("acquireTime", "renewTime"):  # MicroTime: RFC 3339 with microseconds
        assert datetime.fromisoformat(spec[stamp]).tzinfo is not None
    assert k8s.cluster.leases.writes == [("POST", "wk", 201)]
    assert b._try() is None  # held, and just seen: not expired for b
    row, _ = a._lease_store().lease.current()
    assert row is not None and (row.holder, row.epoch) == (a.holder, 1)
    renewed = a._renew(won)
    assert renewed is not None and renewed.epoch == 1
    after = k8s.cluster.leases.get(NS, "wk")
    assert after is not None
    assert after["spec"]["renewTime"] > spec["renewTime"]
    assert after["spec"]["acquireTime"] == spec["acquireTime"]
    assert after["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]


def test_a_stale_write_gets_409_and_loses_the_race(
    elect: Callable[[str], KubernetesLeader], k8s: FakeKubernetes
) -> None:
    a, b = elect("node-a"), elect("node-b")
    assert b._get() is None
    assert a._try() is not None
    assert b._create(1) is None  # both saw 404; a created it first: AlreadyExists
    stale = b._get()
    assert stale is not None
    assert a.lease is None and a._record is not None
    renewed = a._renew(a._lease_store().lease.current()[0])  # type: ignore[arg-type]
    assert renewed is not None
    assert b._put(stale, 2, acquire=True) is None  # stale resourceVersion: Conflict
    assert [code for _, _, code in k8s.cluster.leases.writes] == [201, 409, 200, 409]
    held = k8s.cluster.leases.get(NS, "wk")
    assert held is not None and held["spec"]["holderIdentity"] == a.holder
    # the wire: the Status bodies the API server sends
    base = f"{k8s.url}/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stale_body = {**held, "metadata": {**held["metadata"], "resourceVersion": "1"}}
    conflict = httpx.put(f"{base}/wk", json=stale_body, headers=auth)
    assert conflict.status_code == 409
    assert conflict.json()["reason"] == "Conflict" and conflict.json()["kind"] == "Status"
    assert "the object has been modified" in conflict.json()["message"]
    missing = httpx.get(f"{base}/other", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["message"] == 'leases.coordination.k8s.io "other" not found'
    assert missing.json()["details"] == {
        "name": "other",
        "group": "coordination.k8s.io",
        "kind": "leases",
    }
    # a release that meets a 409 (someone wrote the Lease meanwhile) is let go: it runs out
    k8s.cluster.leases.objects[(NS, "wk")]["metadata"]["resourceVersion"] = "99999"
    a.lease = renewed
    a.release()
    assert a.lease is None and k8s.cluster.leases.writes[-1] == ("PUT", "wk", 409)


def test_a_standby_takes_over_after_the_term_and_the_deposed_node_cannot_commit(
    elect: Callable[[str], KubernetesLeader], k8s: FakeKubernetes, postgres_url: str
) -> None:
    a, b = elect("node-a"), elect("node-b")
    old = Store.open(Path("old"), postgres_url)
    try:
        won = a._try()
        assert won is not None
        old.db.fence = old.lease.fence(a.holder, won.epoch)
        old.incidents.commit_cycle([], EngineState(next_incident_id=2), [], [], [], now=T0)
        # node-a stops renewing (wedged, or cut off from the API server): node-b watches
        start = time.monotonic()
        taken = None
        while taken is None and time.monotonic() - start < 10:
            taken = b._try()
            if taken is None:
                time.sleep(b.poll)
        waited = time.monotonic() - start
        assert taken is not None and taken.epoch == 2, "node-b never took over"
        assert waited >= TERM.total_seconds()  # never before the holder's term ran out
        stored = k8s.cluster.leases.get(NS, "wk")
        assert stored is not None
        assert stored["spec"]["holderIdentity"] == b.holder
        assert stored["spec"]["leaseTransitions"] == 2
        # node-a, deposed, cannot commit: the database's row names epoch 2
        with pytest.raises(Deposed):
            old.incidents.commit_cycle([], EngineState(next_incident_id=9), [], [], [], now=T0)
        # a job's ping that reached it meanwhile is still recorded: a fact, not engine state
        old.heartbeats.record(Ping("nightly", T0, "success", 0, "late", "http 127.0.0.1"))
        assert [p.message for p in b._lease_store().heartbeats.recent("nightly")] == ["late"]
        assert a._renew(won) is None  # it learns it lost at its next renewal
        assert a._lease_store().lease.claim(a.holder, "node-a", 1, TERM) is None  # never back
        assert b._lease_store().incidents.engine_state().next_incident_id == 2
    finally:
        old.close()


def test_a_released_lease_is_taken_at_once_and_a_recreated_one_moves_past_the_epoch(
    elect: Callable[[str], KubernetesLeader], k8s: FakeKubernetes
) -> None:
    a, b = elect("node-a"), elect("node-b")
    a.lease = a._try()
    assert b._try() is None
    a.release()  # a clean stop: holderIdentity "" (as client-go releases)
    released = k8s.cluster.leases.get(NS, "wk")
    assert released is not None and released["spec"]["holderIdentity"] == ""
    taken = b._try()
    assert taken is not None and taken.epoch == 2
    # someone deletes the Lease: leaseTransitions would start again below the database's
    # epoch, so the next winner moves it past it
    k8s.cluster.leases.objects.clear()
    c = elect("node-c")
    again = c._try()
    assert again is not None and again.epoch == 3
    recreated = k8s.cluster.leases.get(NS, "wk")
    assert recreated is not None and recreated["spec"]["leaseTransitions"] == 3
    assert b._renew(taken) is None


def test_an_unreachable_api_server_is_one_line_naming_the_lease(
    elect: Callable[[str], KubernetesLeader], k8s: FakeKubernetes
) -> None:
    a = elect("node-a")
    k8s.cluster.leases.down = True
    with pytest.raises(ElectionError) as caught:
        a._try()
    message = str(caught.value)
    assert "\n" not in message and "ops/wk" in message and "503" in message
    assert isinstance(caught.value, StateError)
    assert TOKEN not in message
