"""The native `teams` notify kind: an Adaptive Card (`daemon.notify.teams_card`) posted to a
Microsoft Teams Workflows webhook — the way to post to a channel since Office 365 connectors
were retired.

A Workflows webhook answers 202 Accepted with an empty body, 400 for a payload its trigger
refuses, 401/403 for a URL whose signature is not valid, 404 for a workflow that is gone,
429 with Retry-After. Errors name the URL masked (its `sig=` is the secret) and an error
code at most: refused content and a dead or unauthorised URL fail the row at once, the rest
is retried with the outbox's backoff, never sooner than Retry-After.
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
from daemon.notify.teams_card import teams_message

if TYPE_CHECKING:
    from daemon.notify.channels import Outgoing

READ_LIMIT = 16 * 1024
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{1,80}$")
HINTS = {
    400: "the workflow refused the card (please report it)",
    401: "the URL's signature is not valid: copy the workflow's URL again",
    403: "the URL's signature is not valid, or the workflow may not post there",
    404: "the workflow was deleted or its URL is wrong: copy the workflow's URL again",
    413: "the card is too large for Teams (please report it)",
}


@dataclass(frozen=True)
class TeamsChannel:
    url: str = field(repr=False)
    safe_url: str
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)

    async def send(self, outgoing: Outgoing, limit: timedelta) -> Failure | None:
        message = teams_message(outgoing.payload, outgoing.reference)
        answer = await post(
            self.url,
            self.safe_url,
            json.dumps(message, ensure_ascii=False).encode(),
            {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            limit=limit,
            ssl_context=self.ssl_context,
            transport=self.transport,
            read=READ_LIMIT,
        )
        return answer if isinstance(answer, Failure) else answer_failure(self.safe_url, answer)


def answer_failure(safe_url: str, answer: Answer) -> Failure | None:
    """None for a 2xx (Workflows answer 202), else why."""
    status = answer.status
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return Failure(redirect_reason(safe_url, status))
    code = _error_code(answer.body)
    said = f"{safe_url} answered HTTP {status}" + (f" {code}" if code else "")
    if status == 429:
        wait = answer.retry_after()
        after = "" if wait is None else f"; retrying after {wait.total_seconds():g}s"
        return Failure(f"{said}: Teams asks to slow down{after}", retry_after=wait)
    hint = HINTS.get(status)
    permanent = 400 <= status < 500 and status not in (408, 409, 425)
    retry_after = answer.retry_after() if status == 503 else None
    return Failure(
        said + (f": {hint}" if hint else ""), permanent=permanent, retry_after=retry_after
    )


def _error_code(body: bytes) -> str | None:
    """`error.code` of a Workflows error answer (`TriggerInputSchemaMismatch`), never its
    message, which may quote what was sent."""
    try:
        reply = json.loads(body)
    except ValueError:
        return None
    error = reply.get("error") if isinstance(reply, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _CODE.match(code) else None
