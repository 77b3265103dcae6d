"""The native `slack` notify kind: a Block Kit message (`daemon.notify.slack_blocks`) to an
incoming webhook, or with a bot token through the Web API's chat.postMessage.

Slack's answers become errors in words, never with the webhook URL or the token: an incoming
webhook answers 200 `ok`, or 400 `invalid_payload`/`invalid_blocks`, 403 `action_prohibited`,
404 `no_service`, 410 `channel_is_archived`, 429 with Retry-After; the Web API answers 200
with `{"ok": false, "error": "channel_not_found"}` (or `not_in_channel`, `invalid_auth`, …)
and 429 with Retry-After. What cannot succeed by sending the same message again (a refused
message, a removed webhook, a bad token, a channel the bot is not in) fails the row at once;
everything else is retried with the outbox's backoff, never sooner than Retry-After.
"""

from __future__ import annotations

import json
import re
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

from daemon import USER_AGENT
from daemon.notify.channels import Failure
from daemon.notify.post import Answer, post, redirect_reason
from daemon.notify.slack_blocks import slack_message

if TYPE_CHECKING:
    from daemon.notify.channels import Outgoing

DEFAULT_API_URL = "https://slack.com/api"
READ_LIMIT = 64 * 1024
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,60}$")

# What each of Slack's error codes means for the person reading `notify test` or the log.
HINTS = {
    "invalid_payload": "Slack could not read the message watchkeeper built (please report it)",
    "invalid_blocks": "Slack refused the message's blocks (please report it)",
    "invalid_blocks_format": "Slack refused the message's blocks (please report it)",
    "no_text": "Slack refused a message without text (please report it)",
    "msg_too_long": "the message is too long for Slack (please report it)",
    "action_prohibited": "a workspace admin restricted who may post to this channel",
    "restricted_action": "a workspace admin restricted who may post to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "no_service": "this incoming webhook was removed or its URL is wrong: create a new one",
    "no_service_id": "the webhook URL is incomplete: copy it again from Slack",
    "no_team": "the webhook's workspace no longer exists",
    "team_disabled": "the webhook's workspace is disabled",
    "invalid_token": "the webhook's token is not valid: create a new incoming webhook",
    "channel_is_archived": "the channel is archived: unarchive it or post somewhere else",
    "is_archived": "the channel is archived: unarchive it or post somewhere else",
    "channel_not_found": "no such channel for this token: check `channel` (an ID such as "
    "C0123ABC works for private channels the bot was invited to)",
    "not_in_channel": "the bot is not in the channel: invite it (/invite @your-bot)",
    "invalid_auth": "the bot token is not valid: check the secret `token` names",
    "not_authed": "no bot token was sent",
    "account_inactive": "the bot token belongs to a deleted user or app: issue a new one",
    "token_revoked": "the bot token was revoked: issue a new one",
    "token_expired": "the bot token expired: issue a new one",
    "missing_scope": "the bot token lacks the chat:write scope",
    "no_permission": "the bot token lacks permission for this channel",
    "ekm_access_denied": "the workspace's key management denied the post",
    "rate_limited": "Slack asks to slow down",
    "ratelimited": "Slack asks to slow down",
}

# Errors that sending the same message again cannot cure.
PERMANENT = frozenset(HINTS) - {"rate_limited", "ratelimited"}


@dataclass(frozen=True)
class SlackChannel:
    """A Slack target, its secrets resolved: `url` is the incoming webhook, or the Web API's
    chat.postMessage when `token` is set (then `channel` says where)."""

    url: str = field(repr=False)
    safe_url: str
    token: str | None = field(default=None, repr=False)
    channel: str | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)

    async def send(self, outgoing: Outgoing, limit: timedelta) -> Failure | None:
        message = slack_message(outgoing.payload, outgoing.reference)
        body = {**message, "unfurl_links": False, "unfurl_media": False}
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        if self.token is not None:
            body = {"channel": self.channel, **body}
            headers["Authorization"] = f"Bearer {self.token}"
        answer = await post(
            self.url,
            self.safe_url,
            json.dumps(body, ensure_ascii=False).encode(),
            headers,
            limit=limit,
            ssl_context=self.ssl_context,
            transport=self.transport,
            read=READ_LIMIT,
        )
        if isinstance(answer, Failure):
            return answer
        if self.token is not None:
            return api_failure(self.safe_url, answer)
        return webhook_failure(self.safe_url, answer)


def webhook_failure(safe_url: str, answer: Answer) -> Failure | None:
    """None when an incoming webhook accepted the message, else why."""
    if 200 <= answer.status < 300:
        return None
    return _http_failure(safe_url, answer, _code(answer.text()))


def api_failure(safe_url: str, answer: Answer) -> Failure | None:
    """None when chat.postMessage answered `{"ok": true}`, else why."""
    try:
        reply = json.loads(answer.body)
    except ValueError:
        reply = None
    code = _code(reply.get("error")) if isinstance(reply, dict) else None
    if answer.status == 200 and isinstance(reply, dict):
        if reply.get("ok") is True:
            return None
        code = code or "unknown_error"
        hint = HINTS.get(code)
        return Failure(
            f"{safe_url} answered {code}" + (f": {hint}" if hint else ""),
            permanent=code in PERMANENT,
        )
    if answer.status == 200:
        return Failure(f"{safe_url} answered HTTP 200 with a body that is not Slack's JSON")
    return _http_failure(safe_url, answer, code)


def _http_failure(safe_url: str, answer: Answer, code: str | None) -> Failure:
    status = answer.status
    if 300 <= status < 400:
        return Failure(redirect_reason(safe_url, status))
    said = f"{safe_url} answered HTTP {status}" + (f" {code}" if code else "")
    if status == 429:
        wait = answer.retry_after()
        after = "" if wait is None else f"; retrying after {wait.total_seconds():g}s"
        return Failure(f"{said}: Slack asks to slow down{after}", retry_after=wait)
    hint = HINTS.get(code or "")
    permanent = 400 <= status < 500 and status not in (408, 409, 425)
    return Failure(said + (f": {hint}" if hint else ""), permanent=permanent)


def _code(value: object) -> str | None:
    """Slack's error code when `value` is one (`no_service`): never any other text of an
    answer, which might echo what was sent."""
    return value if isinstance(value, str) and _CODE.match(value) else None
