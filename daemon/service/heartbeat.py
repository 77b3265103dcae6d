"""Watching the watchman: the outbound heartbeat (`[daemon] heartbeat_url`) that tells an outside
monitor (healthchecks.io, Uptime Kuma, another watchkeeper) this daemon is doing its job.

A ping follows a *committed* cycle, never a timer: when cycles stop committing (a wedged
store, a full disk, a dead scheduler) the pings stop and the outside monitor notices. At most
one request is in flight, at most one per `heartbeat_every`, each within `heartbeat_timeout`;
a failing endpoint is logged once per streak and never touches checks. The URL carries a
token, so it never appears in a log line (masked, and registered with the log redactor).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import structlog

from daemon import USER_AGENT
from daemon.errors import SecretError
from daemon.logging import add_known_secret, redact

if TYPE_CHECKING:
    import httpx

    from daemon.config.settings import DaemonSettings

log = structlog.get_logger(__name__)

TICK_S = 1.0
"""How often the loop looks for a new commit or a change of health (it sends far less)."""
FAIL_BODY_MAX = 300

Kind = Literal["success", "fail"]


def shown(url: str) -> str:
    """What a log line may say about a heartbeat URL: scheme and host, never the path or query
    (healthchecks.io and Uptime Kuma put the token there), e.g. `https://hc-ping.com/***`."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(the heartbeat URL)"
    if ":" in host:
        host = f"[{host}]"
    rest = "/***" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{rest}"


@dataclass
class Heartbeat:
    """Pings `heartbeat_url` after committed cycles and `heartbeat_fail_url` when the daemon
    turns unhealthy. Everything it reads comes from callables, so a reload applies at once."""

    settings: Callable[[], DaemonSettings]
    cycles: Callable[[], int]
    """The pipeline's count of committed cycles: a ping needs it to have grown."""
    problems: Callable[[], list[str]]
    """Why the daemon is unhealthy (`Service.problems`); empty when healthy."""
    resolve: Callable[[str], str]
    clock: Callable[[], float] = time.monotonic
    pinged_cycles: int = 0
    last_attempt: float | None = None
    fail_sent: bool = False
    streak: dict[Kind, int] = field(default_factory=lambda: {"success": 0, "fail": 0})
    """Failed deliveries in a row, per kind: the first is logged, the rest only counted."""
    sent: dict[Kind, int] = field(default_factory=lambda: {"success": 0, "fail": 0})
    _client: httpx.AsyncClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: look every TICK_S, send when due, one request at a time."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=TICK_S)
                if not stop.is_set():
                    await self.tick()
        finally:
            if self._client is not None:
                await self._client.aclose()

    async def tick(self) -> None:
        """One look: a fail ping when health has just turned bad, else a success ping when a
        new cycle was committed and `heartbeat_every` has passed since the last attempt."""
        daemon = self.settings()
        problems = self.problems()
        if not problems:
            self.fail_sent = False
        elif daemon.heartbeat_fail_url and not self.fail_sent:
            self.fail_sent = True
            await self.send("fail", daemon.heartbeat_fail_url, daemon, "; ".join(problems))
        if not daemon.heartbeat_url or problems:
            return
        committed = self.cycles()
        now = self.clock()
        every = daemon.heartbeat_every.total_seconds()
        due = self.last_attempt is None or now - self.last_attempt >= every
        if committed > self.pinged_cycles and due:
            self.pinged_cycles, self.last_attempt = committed, now
            await self.send("success", daemon.heartbeat_url, daemon)

    async def send(self, kind: Kind, ref: str, daemon: DaemonSettings, why: str = "") -> bool:
        """One request within `heartbeat_timeout`: GET for success; POST with the reason as
        plain text for fail (healthchecks.io shows the body; Uptime Kuma reads only the URL's
        query, e.g. `?status=down`). Never raises; logs once per failure streak."""
        try:
            url = self.resolve(ref)
        except SecretError as exc:
            self._failed(kind, "(secret reference)", str(exc))
            return False
        add_known_secret(url)  # a library's debug line quoting it is masked too
        where = shown(url)
        limit = daemon.heartbeat_timeout.total_seconds()
        try:
            async with asyncio.timeout(limit):
                client = self._http()
                if kind == "success":
                    response = await client.get(url, timeout=limit)
                else:
                    body = redact(why)[:FAIL_BODY_MAX].encode()
                    response = await client.post(
                        url,
                        content=body,
                        headers={"Content-Type": "text/plain; charset=utf-8"},
                        timeout=limit,
                    )
        except TimeoutError:
            self._failed(kind, where, f"no answer within {limit:g} s")
            return False
        except Exception as exc:  # httpx's transport errors, a malformed URL from a secret
            self._failed(kind, where, redact(f"{type(exc).__name__}: {exc}")[:200])
            return False
        if not 200 <= response.status_code < 300:
            self._failed(kind, where, f"answered HTTP {response.status_code}")
            return False
        self.sent[kind] += 1
        if self.streak[kind]:
            log.info(
                "heartbeat delivered again", kind=kind, url=where, failed_before=self.streak[kind]
            )
            self.streak[kind] = 0
        return True

    def _failed(self, kind: Kind, where: str, reason: str) -> None:
        self.streak[kind] += 1
        if self.streak[kind] == 1:
            log.warning(
                "heartbeat not delivered; logged once until it is delivered again",
                kind=kind,
                url=where,
                reason=reason.replace(where, "***"),
            )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                headers={"User-Agent": USER_AGENT}, follow_redirects=False, timeout=10.0
            )
        return self._client
