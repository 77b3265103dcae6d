"""`[store]`: where the state lives — the SQLite file in `daemon.state_dir` (the default), or a
PostgreSQL database several watchkeeper processes share — and, on PostgreSQL, the lease that
keeps exactly one of them active (`daemon.service.leader`).

The password is never part of `url`: it is `password = "secret:NAME"`, resolved only when the
store is opened, so it never reaches the config dump, a log line or a message.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.models import Duration
from daemon.secrets import SECRET_PREFIX, resolve

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubernetesLeaseSettings(BaseModel):
    """`[store.kubernetes]`: the `coordination.k8s.io/v1` Lease that elects the active process
    when `[store] election = "kubernetes"` (`daemon.service.kube_lease`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="watchkeeper",
        description="The Lease object's name (the Role in the manifest names the same one).",
    )
    namespace: str | None = Field(
        default=None,
        description="The Lease's namespace (default: the pod's own, else `default`).",
    )
    kubeconfig: str | None = Field(
        default=None,
        description="A kubeconfig to reach the API with (default: the pod's service account, "
        "from /var/run/secrets/kubernetes.io/serviceaccount and KUBERNETES_SERVICE_HOST/PORT).",
    )
    context: str | None = Field(
        default=None, description="The kubeconfig's context (default: its current-context)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DNS_SUBDOMAIN.fullmatch(value):
            raise ValueError(
                "must be a Kubernetes object name: lower-case letters, digits, '-' and '.'"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.fullmatch(value):
            raise ValueError("must be a Kubernetes namespace: lower-case letters, digits and '-'")
        return value


class StoreSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        description="postgresql://USER@HOST[:PORT]/DBNAME (libpq parameters in the query, e.g. "
        "?sslmode=verify-full) to keep the state in PostgreSQL, shared by several watchkeeper "
        "processes of which one is active. Default: the SQLite file in daemon.state_dir.",
    )
    password: str | None = Field(
        default=None,
        description="The database password as secret:NAME (never in url). Leave out for "
        "peer, certificate or .pgpass authentication.",
    )
    lease: Duration = Field(
        default=timedelta(seconds=10),
        description="PostgreSQL only: how long the active process's lease lasts without a "
        "renewal (renewed every third of it). A standby takes over at most this long after "
        "the active one dies, wedges or loses the database.",
    )
    node: str | None = Field(
        default=None,
        description="This process's name in `status` and the lease (default: host:pid).",
    )
    election: Literal["database", "kubernetes"] = Field(
        default="database",
        description="PostgreSQL only: what elects the active process: the lease row in the "
        'database, or "kubernetes": a coordination.k8s.io Lease ([store.kubernetes]). Either '
        "way the database fences every write with the winner's epoch.",
    )
    kubernetes: KubernetesLeaseSettings = Field(default_factory=KubernetesLeaseSettings)

    @model_validator(mode="after")
    def _election(self) -> Self:
        if self.election == "kubernetes" and self.url is None:
            raise ValueError(
                'election = "kubernetes" needs url = "postgresql://…": the Lease elects, '
                "the shared database fences the writes"
            )
        return self

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            parts = urlsplit(value)
        except ValueError:
            raise ValueError("not a valid URL; write postgresql://USER@HOST/DBNAME") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (leave it out for the SQLite file)")
        if parts.password is not None:
            raise ValueError(
                'holds a password: remove it and write password = "secret:NAME" instead'
            )
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(SECRET_PREFIX) or not value.removeprefix(SECRET_PREFIX).strip():
            raise ValueError('write password = "secret:NAME", never the password itself')
        return value

    @field_validator("lease")
    @classmethod
    def _lease(cls, value: timedelta) -> timedelta:
        if not 3 <= value.total_seconds() <= 300:
            raise ValueError("lease must be between 3s and 300s")
        return value

    def resolved_password(self) -> str | None:
        """The password, looked up now (SecretError names the secret, never a value)."""
        return None if self.password is None else resolve(self.password)
