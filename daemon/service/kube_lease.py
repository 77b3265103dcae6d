"""The Kubernetes election backend: a `coordination.k8s.io/v1` Lease says which watchkeeper is
active, used as client-go's leaderelection uses it; the shared database still fences writes.

The Lease carries holderIdentity, leaseDurationSeconds, acquireTime, renewTime and
leaseTransitions; every write is a PUT of the object as read, so the API server's
resourceVersion check lets exactly one of two racing processes win (the other gets 409
Conflict, or 409 AlreadyExists on the first create, and stays a standby). As in client-go, a
standby judges expiry on its own monotonic clock: the holder's lease has run out when the
object has not changed for leaseDurationSeconds since this process saw it change, so no two
machines' clocks are compared. The active process renews every third of the term and stops
(deposed) when no renewal got through for two thirds of it, before any standby can see the
lease expire.

Fencing: the Lease elects, the database fences. Each change of holder bumps leaseTransitions,
and the API server's optimistic concurrency hands each value to one holder only. The winner
then claims the database's lease row at that value as its epoch (`LeaderLease.claim`), which
only ever increases, and every write transaction checks the row's holder and epoch under a
share lock. A deposed or partitioned process therefore cannot commit once the new holder's
claim is in, and the claim waits for the old holder's open transactions: its writes come
before the new epoch or not at all. When leaseTransitions is behind the database (the Lease was
deleted and created again), the winner moves it past the database's epoch before claiming.

Never imported by `watchkeeper --help`; the kubernetes client is imported when it is used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import StateError
from daemon.service.leader import Leader
from daemon.store.lease import Lease

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Lease, V1LeaseSpec

    from daemon.config.store import KubernetesLeaseSettings

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
GROUP = "coordination.k8s.io"


class ElectionError(StateError):
    """The Kubernetes API could not be asked (unreachable, refused, forbidden): one line."""


def pod_namespace(account: Path = SERVICE_ACCOUNT) -> str:
    """The namespace of the pod this runs in, as its service account says; else `default`."""
    with suppress(OSError):
        found = (account / "namespace").read_text(encoding="utf-8").strip()
        if found:
            return found
    return "default"


class KubernetesLeader(Leader):
    """`Leader` whose election is a Kubernetes Lease; fencing stays the database's row."""

    def __init__(
        self,
        url: str,
        password: str | None,
        term: timedelta,
        node: str | None,
        settings: KubernetesLeaseSettings,
    ) -> None:
        from jobs.kubernetes.api import require_client_package
        from jobs.kubernetes.errors import KubernetesError

        try:
            require_client_package()
        except KubernetesError as exc:
            raise StateError(f'[store] election = "kubernetes": {exc}') from None
        super().__init__(url, password, term, node)
        self.settings = settings
        self.name = settings.name
        self.namespace = settings.namespace or pod_namespace()
        self._client: ApiClient | None = None
        self._record: V1Lease | None = None
        """The Lease as this process last wrote it (renewals PUT it back)."""
        self._observed: tuple[str, float] | None = None
        """(resourceVersion, monotonic time this process first saw it): expiry, client-go style."""

    @property
    def poll(self) -> float:
        return self.term.total_seconds() / 5

    @property
    def renew_deadline(self) -> float:
        return self.term.total_seconds() * 2 / 3

    @property
    def duration_s(self) -> int:
        return max(1, math.ceil(self.term.total_seconds()))

    @property
    def timeout_s(self) -> float:
        return min(5.0, self.term.total_seconds() / 3)

    # -- the two hooks of Leader ----------------------------------------------------------

    def _try(self) -> Lease | None:
        record = self._get()
        rows = self._lease_store().lease
        if record is None:
            epoch = rows.epoch() + 1
            record = self._create(epoch)
        else:
            holder = _spec(record).holder_identity or ""
            if holder and holder != self.holder and not self._expired(record):
                return None
            epoch = self._next_epoch(record, holder == self.holder)
            record = self._put(record, epoch, acquire=holder != self.holder)
        if record is None:
            return None  # another process won the race (409)
        self._record = record
        return rows.claim(self.holder, self.node, epoch, self.term)

    def _renew(self, lease: Lease) -> Lease | None:
        """The row first, then the Lease: a process cut off from the database stops renewing
        the Lease too, so a standby (which may reach the database) can take over."""
        renewed = self._lease_store().lease.renew(self.holder, lease.epoch, self.term)
        if renewed is None:
            return None
        record = self._record or self._get()
        for _ in range(2):
            if not self._ours(record, lease.epoch):
                return None
            assert record is not None
            written = self._put(record, lease.epoch, acquire=False)
            if written is not None:
                self._record = written
                return renewed
            record = self._get()  # 409: changed since we wrote it; see by whom
        raise ElectionError(f"the Lease {self._where} keeps changing under this process")

    def release(self) -> None:
        """After a clean stop: empty holderIdentity (client-go's release), then the row. Best
        effort: a release that does not get through (409: no longer ours; the API away) leaves
        the Lease to run out."""
        record = self._record
        if self.lease is not None and self._ours(record, self.lease.epoch):
            assert record is not None
            spec = _spec(record)
            spec.holder_identity, spec.lease_duration_seconds, spec.renew_time = "", 1, _now()
            with suppress(Exception):
                self._call(
                    "update",
                    self._api().replace_namespaced_lease,
                    self.name,
                    self.namespace,
                    record,
                )
        self._record = None
        super().release()

    def close(self) -> None:
        super().close()
        if self._client is not None:
            with suppress(Exception):
                self._client.close()  # type: ignore[no-untyped-call]
            self._client = None

    # -- the Lease ------------------------------------------------------------------------

    def _ours(self, record: V1Lease | None, epoch: int) -> bool:
        return (
            record is not None
            and _spec(record).holder_identity == self.holder
            and (_spec(record).lease_transitions or 0) == epoch
        )

    def _expired(self, record: V1Lease) -> bool:
        version = _version(record)
        now = time.monotonic()
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, now)
            return False
        duration = _spec(record).lease_duration_seconds or self.duration_s
        return now - self._observed[1] >= duration

    def _next_epoch(self, record: V1Lease, ours: bool) -> int:
        """leaseTransitions for this holder: one more on a change of holder, and always past
        the database's epoch unless the row is already ours at this value."""
        transitions = int(_spec(record).lease_transitions or 0)
        row, _ = self._lease_store().lease.current()
        if row is not None and row.holder == self.holder and row.epoch == transitions:
            return transitions
        floor = (row.epoch if row is not None else 0) + 1
        return max(transitions if ours else transitions + 1, floor)

    def _get(self) -> V1Lease | None:
        from kubernetes.client.exceptions import ApiException

        try:
            record: V1Lease = self._call(
                "get", self._api().read_namespaced_lease, self.name, self.namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._problem("get", exc) from exc
        return record

    def _create(self, epoch: int) -> V1Lease | None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        now = _now()
        body = client.V1Lease(
            api_version=f"{GROUP}/v1",
            kind="Lease",
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.holder,
                lease_duration_seconds=self.duration_s,
                acquire_time=now,
                renew_time=now,
                lease_transitions=epoch,
            ),
        )
        try:
            created: V1Lease = self._call(
                "create", self._api().create_namespaced_lease, self.namespace, body
            )
        except ApiException as exc:
            if exc.status == 409:  # AlreadyExists: another process created it first
                return None
            raise self._problem("create", exc) from exc
        return created

    def _put(self, record: V1Lease, epoch: int, *, acquire: bool) -> V1Lease | None:
        """PUT `record` (its resourceVersion included) as held by this process; None on 409."""
        from kubernetes.client.exceptions import ApiException

        now = _now()
        spec = _spec(record)
        spec.holder_identity = self.holder
        spec.lease_duration_seconds = self.duration_s
        spec.renew_time = now
        spec.lease_transitions = epoch
        if acquire or spec.acquire_time is None:
            spec.acquire_time = now
        try:
            written: V1Lease = self._call(
                "update", self._api().replace_namespaced_lease, self.name, self.namespace, record
            )
        except ApiException as exc:
            if exc.status == 409:  # Conflict: someone wrote it since we read it
                return None
            raise self._problem("update", exc) from exc
        self._observed = (_version(written), time.monotonic())
        return written

    # -- the client -----------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _api(self) -> Any:
        from kubernetes import client

        if self._client is None:
            from jobs.kubernetes.api import Target, build_client
            from jobs.kubernetes.errors import KubernetesError

            kubeconfig = self.settings.kubeconfig
            target = Target(kubeconfig or "", self.settings.context, kubeconfig is None)
            try:
                self._client = build_client(target)
            except KubernetesError as exc:
                raise ElectionError(f"[store] election = kubernetes: {exc}") from exc
        return client.CoordinationV1Api(self._client)

    def _call(self, verb: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One API call under the timeout; network failures as ElectionError, HTTP errors as
        the client raised them (the caller decides what 404 and 409 mean)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=self.timeout_s)
        except ApiException:
            raise
        except Exception as exc:  # urllib3, OSError, an answer the client cannot read
            raise self._problem(verb, exc) from exc

    def _problem(self, verb: str, exc: BaseException) -> ElectionError:
        from jobs.kubernetes.errors import Request, describe_api_error, is_timeout

        request = Request(f"leases/{self.name}", self.namespace, GROUP, verb=verb)
        host = self._client.configuration.host if self._client is not None else "?"
        if is_timeout(exc):
            return ElectionError(
                f"the Kubernetes API at {host} did not answer within {self.timeout_s:g} s"
            )
        described = describe_api_error(
            exc, request, host, in_cluster=self.settings.kubeconfig is None
        )
        return ElectionError(f"Kubernetes Lease {self._where}: {described}")


def _spec(record: V1Lease) -> V1LeaseSpec:
    """The Lease's spec (an object whose spec is null gets an empty one, as the server would)."""
    if record.spec is None:
        from kubernetes import client

        record.spec = client.V1LeaseSpec()
    return record.spec


def _version(record: V1Lease) -> str:
    return str(record.metadata.resource_version) if record.metadata is not None else ""


def _now() -> datetime:
    return datetime.now(UTC)
