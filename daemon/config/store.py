"""`[store]`: where the state lives — the SQLite file in `daemon.state_dir` (the default), or a
PostgreSQL database several watchkeeper processes share — and, on PostgreSQL, the lease that
keeps exactly one of them active (`daemon.service.leader`).

The password is never part of `url`: it is `password = "secret:NAME"`, resolved only when the
store is opened, so it never reaches the config dump, a log line or a message.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.models import Duration
from daemon.secrets import SECRET_PREFIX, resolve


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
