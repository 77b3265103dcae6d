"""`coordination.k8s.io/v1` Leases for the loopback Kubernetes API (`tests.peers.kubernetes`):
GET, POST and PUT as the API server answers them — a resourceVersion per write, 409 Conflict
for a PUT of a stale resourceVersion, 409 AlreadyExists for a second create, 404 NotFound with
the real Status bodies, and 422 Invalid for a body whose name does not match the path.
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
GROUP = "coordination.k8s.io"
QUALIFIED = f"leases.{GROUP}"


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """The API server's error body (`kind: Status`), as every failed request gets it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def _status(code: int, reason: str, message: str, name: str) -> Obj:
    details = {"name": name, "group": GROUP, "kind": "leases"} if name else {}
    return status_body(code, reason, message, details)


@dataclass
class Leases:
    """The Lease objects, by (namespace, name); thread-safe (the server is threading)."""

    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    version: int = 1000
    writes: list[tuple[str, str, int]] = field(default_factory=list)
    """(method, name, status code) of every POST and PUT, in order."""
    down: bool = False
    """True: every lease request is answered 503, as an API server that lost etcd."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, namespace: str, name: str) -> Obj | None:
        with self.lock:
            found = self.objects.get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def handle(
        self, method: str, namespace: str, rest: list[str], body: Obj | None
    ) -> tuple[int, Obj]:
        """(status code, JSON document) for `method` on .../namespaces/NS/leases[/NAME]."""
        if self.down:
            return 503, _status(503, "ServiceUnavailable", "etcdserver: request timed out", "")
        with self.lock:
            if method == "GET" and len(rest) == 2:
                return self._get(namespace, rest[1])
            if method == "POST" and len(rest) == 1 and body is not None:
                return self._record(method, body, self._create(namespace, body))
            if method == "PUT" and len(rest) == 2 and body is not None:
                return self._record(method, body, self._replace(namespace, rest[1], body))
        return 405, _status(405, "MethodNotAllowed", "the server does not allow this method", "")

    def _record(self, method: str, body: Obj, answer: tuple[int, Obj]) -> tuple[int, Obj]:
        self.writes.append((method, str(body.get("metadata", {}).get("name")), answer[0]))
        return answer

    def _get(self, namespace: str, name: str) -> tuple[int, Obj]:
        found = self.objects.get((namespace, name))
        if found is None:
            return 404, _status(404, "NotFound", f'{QUALIFIED} "{name}" not found', name)
        return 200, found

    def _create(self, namespace: str, body: Obj) -> tuple[int, Obj]:
        name = str(body.get("metadata", {}).get("name", ""))
        if (namespace, name) in self.objects:
            return 409, _status(409, "AlreadyExists", f'{QUALIFIED} "{name}" already exists', name)
        stored = self._stamp(namespace, body)
        stored["metadata"]["uid"] = str(uuid.uuid4())
        stored["metadata"]["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.objects[(namespace, name)] = stored
        return 201, stored

    def _replace(self, namespace: str, name: str, body: Obj) -> tuple[int, Obj]:
        meta = body.get("metadata", {})
        if meta.get("name") != name:
            message = (
                f'Lease.{GROUP} "{name}" is invalid: metadata.name: Invalid value: '
                f'"{meta.get("name")}": field is immutable'
            )
            return 422, _status(422, "Invalid", message, name)
        found = self.objects.get((namespace, name))
        if found is None:
            return 404, _status(404, "NotFound", f'{QUALIFIED} "{name}" not found', name)
        given = meta.get("resourceVersion")
        if given and given != found["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on {QUALIFIED} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
            return 409, _status(409, "Conflict", message, name)
        stored = self._stamp(namespace, body)
        for kept in ("uid", "creationTimestamp"):
            stored["metadata"][kept] = found["metadata"].get(kept)
        self.objects[(namespace, name)] = stored
        return 200, stored

    def _stamp(self, namespace: str, body: Obj) -> Obj:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["apiVersion"] = f"{GROUP}/v1"
        stored["kind"] = "Lease"
        meta = stored.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["resourceVersion"] = str(self.version)
        stored["spec"] = {k: v for k, v in stored.get("spec", {}).items() if v is not None}
        return stored
