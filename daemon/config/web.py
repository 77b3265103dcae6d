"""`[web]`: the console, public status page, /metrics and MCP on the daemon's listener."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.secrets import SECRET_PREFIX
from daemon.util.net import parse_listen

DEFAULT_LISTEN = "127.0.0.1:8787"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0 included) is reachable."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StatusPageSettings(BaseModel):
    """`[web.status]`: the public status page at /status — opt-in, and only what is listed."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False, description="Serve /status (without authentication, like /healthz)."
    )
    title: str = Field(default="Service status", max_length=120)
    logo: str | None = Field(
        default=None,
        description="Logo URL shown on /status: a path on your site or an https:// URL.",
    )
    checks: list[str] = Field(
        default_factory=list,
        description='The checks shown: names, or "tag:NAME" for every check with that tag '
        "(each tag is a group on the page). Nothing else is ever shown: no evidence, hosts, "
        "costs or internals.",
    )

    @field_validator("logo")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not (value.startswith("https://") or value.startswith("/")):
            raise ValueError("logo must be an https:// URL or a path starting with /")
        return value


class WebSettings(BaseModel):
    """`[web]`: the listener's console. Off unless `enabled`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Serve the web console, /metrics, /api and MCP (read-only) on `listen`.",
    )
    listen: str = Field(
        default=DEFAULT_LISTEN,
        description="host:port. Loopback by default; any other address needs `token` or "
        "`trusted_proxy_header`. The same address as daemon.health_listen shares one "
        "listener; another address gets its own (/healthz and pings stay on both).",
    )
    token: str | None = Field(
        default=None,
        description="secret:NAME of a bearer token required for everything but /healthz, "
        "/status and heartbeat pings (Authorization: Bearer …, or ?token= once in a browser).",
    )
    trusted_proxy_header: str | None = Field(
        default=None,
        description="A header your authenticating reverse proxy sets (e.g. X-Forwarded-User): "
        "requests carrying it from one of trusted_proxies are let in.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses of that proxy; the header from anyone else is ignored.",
    )
    mcp_investigate: bool = Field(
        default=False,
        description="Offer agents the MCP tool `investigate`: a root-cause analysis of an "
        "incident now, on the `rca` route, within [budget] (it costs what that model costs). "
        "Off: agents can only read.",
    )
    status: StatusPageSettings = Field(default_factory=StatusPageSettings)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)  # ValueError: not host:port
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(SECRET_PREFIX) or not value.removeprefix(SECRET_PREFIX).strip():
            raise ValueError("write the token as secret:NAME, never the value itself")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_address(item)  # ValueError names the bad one
        return value

    @model_validator(mode="after")
    def _loopback_or_auth(self) -> WebSettings:
        host, _ = parse_listen(self.listen)
        if self.enabled and not is_loopback(host) and not (self.token or self.trusted_proxy_header):
            raise ValueError(
                f"listen = {self.listen!r} is reachable from other machines: set token = "
                '"secret:NAME" (or trusted_proxy_header behind an authenticating proxy), or '
                "listen on 127.0.0.1"
            )
        return self

    @property
    def authenticated(self) -> bool:
        """Whether requests must prove who they are (the console is not loopback-only)."""
        host, _ = parse_listen(self.listen)
        return not is_loopback(host) or bool(self.token or self.trusted_proxy_header)
