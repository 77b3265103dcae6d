"""A configured notify target made ready to send: its secrets resolved (and registered, so
every log line masks them), its URL checked, its channel built.

Blocking (keyring lookups, CA loading): the Notifier runs `ChannelFactory.build` off the event
loop. Errors are `TargetError`s that name the target and say what to do, never a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import apprise
import httpx
import structlog

from daemon.config.settings import (
    NotifyTarget,
    apprise_url_problem,
    https_url_problem,
    webhook_url_problem,
)
from daemon.errors import SecretError
from daemon.logging import add_known_secret
from daemon.notify.channels import Channel, mask_url
from daemon.notify.slack import DEFAULT_API_URL, SlackChannel
from daemon.notify.teams import TeamsChannel
from daemon.notify.via_apprise import AppriseChannel
from daemon.notify.webhook import WebhookChannel
from daemon.secrets import is_secret_ref

log = structlog.get_logger(__name__)


class TargetError(Exception):
    """A target cannot be used right now; the message is safe to store and show."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ChannelFactory:
    """Builds the channel of one target. `transport` replaces the network for the native
    HTTP channels (webhook, Slack, Teams) in tests of edge cases."""

    def __init__(
        self,
        resolve_secret: Callable[[str], str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._resolve = resolve_secret
        self._transport = transport

    def build(self, target: NotifyTarget | None, name: str) -> Channel:
        if target is None:
            raise TargetError(f"target {name!r} is no longer configured", permanent=True)
        channel: Channel
        if target.kind == "webhook":
            channel = self._webhook(target)
        elif target.kind == "slack":
            channel = self._slack(target)
        elif target.kind == "teams":
            channel = self._teams(target)
        else:
            channel = self._apprise(target)
        log.debug("notify.target_loaded", target=name, url=channel.safe_url)
        return channel

    def _secret(self, name: str, value: str, *, always_secret: bool = False) -> str:
        """`value`, or the secret it refers to — registered so every log line masks it (a
        literal too when `always_secret`: a Slack or Teams URL is itself the credential)."""
        try:
            resolved = self._resolve(value)
        except SecretError as exc:
            raise TargetError(f"target {name}: {exc}") from None
        if always_secret or is_secret_ref(value):
            add_known_secret(resolved)
        return resolved

    def _url(self, target: NotifyTarget, *, always_secret: bool = False) -> str:
        if target.url is None:  # config validation says so first; a reload may not have
            raise TargetError(f"target {target.name}: no url is configured", permanent=True)
        return self._secret(target.name, target.url, always_secret=always_secret).strip()

    def _webhook(self, target: NotifyTarget) -> WebhookChannel:
        url = self._url(target)
        problem = webhook_url_problem(url)
        if problem is not None:
            raise TargetError(f"target {target.name}: {problem}")
        signing = target.signing_secret
        headers = {key: self._secret(target.name, value) for key, value in target.headers.items()}
        for key, value in headers.items():
            if any(c in value for c in "\r\n\0"):
                raise TargetError(
                    f"target {target.name}: header {key!r} contains a line break or NUL"
                )
        return WebhookChannel(
            url=url,
            safe_url=mask_url(url),
            signing_secret=None if signing is None else self._secret(target.name, signing),
            headers=headers,
            ssl_context=httpx.create_ssl_context(),
            transport=self._transport,
        )

    def _slack(self, target: NotifyTarget) -> SlackChannel:
        if target.token is not None:
            token = self._secret(target.name, target.token, always_secret=True).strip()
            api = (target.api_url or DEFAULT_API_URL).rstrip("/")
            problem = https_url_problem(api, "api_url")
            if problem is not None:
                raise TargetError(f"target {target.name}: {problem}")
            endpoint = f"{api}/chat.postMessage"
            parts = urlsplit(endpoint)
            safe = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
            return SlackChannel(
                url=endpoint,
                safe_url=f"{safe} {target.channel}",
                token=token,
                channel=target.channel,
                ssl_context=httpx.create_ssl_context(),
                transport=self._transport,
            )
        url = self._url(target, always_secret=True)
        problem = https_url_problem(url, "a Slack webhook URL")
        if problem is not None:
            raise TargetError(f"target {target.name}: {problem}")
        return SlackChannel(
            url=url,
            safe_url=mask_url(url),
            ssl_context=httpx.create_ssl_context(),
            transport=self._transport,
        )

    def _teams(self, target: NotifyTarget) -> TeamsChannel:
        url = self._url(target, always_secret=True)
        problem = https_url_problem(url, "a Teams Workflows URL")
        if problem is not None:
            raise TargetError(f"target {target.name}: {problem}")
        return TeamsChannel(
            url=url,
            safe_url=mask_url(url),
            ssl_context=httpx.create_ssl_context(),
            transport=self._transport,
        )

    def _apprise(self, target: NotifyTarget) -> AppriseChannel:
        url = self._url(target)
        apobj = apprise.Apprise()
        if not apobj.add(url):
            raise TargetError(f"target {target.name}: {apprise_url_problem(url)}")
        plugins: list[Any] = list(apobj)  # apprise's url() is unannotated
        return AppriseChannel(apobj, ", ".join(mask_url(p.url(privacy=True)) for p in plugins))
