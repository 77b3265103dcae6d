"""The native `webhook` notify kind: one POST of a documented JSON payload per message, signed
with HMAC-SHA256 when the target has a `signing_secret` (for n8n, Zapier, your own receiver).

It must never follow a redirect (that would hand the payload and its signature to another
host) and never put a secret or a full URL into an error, a log line or the database: errors
name the target by its masked URL only (scheme://host:port/...).

Request
-------
`POST <url>` with the body below and these headers (plus the target's own `headers`)::

    Content-Type: application/json
    User-Agent: watchkeeper/0.1
    X-Watchkeeper-Event: opened            (the payload's `event`)
    X-Watchkeeper-Delivery: 1234           (the outbox row id: the same on every retry)
    X-Watchkeeper-Timestamp: 1795788120    (unix seconds; only with a signing_secret)
    X-Watchkeeper-Signature: v1=<hex>      (only with a signing_secret; see below)

Any 2xx means delivered. Anything else — a 3xx (never followed: point `url` at the final
address), 4xx, 5xx, a timeout, a refused connection — is retried with the outbox backoff until
`delivery.max_age` (after a 429 or 503, never sooner than its Retry-After). Delivery is at
least once: a message can arrive twice (a crash between the receiver's 2xx and our commit), so
de-duplicate on X-Watchkeeper-Delivery (row ids are never reused within one state database).
Each attempt has a fresh timestamp, signature and `sent_at`.

Payload of an incident event (`schema` "watchkeeper.event/1"); times are RFC 3339 UTC strings
such as "2026-11-27T14:02:00Z"::

    schema        "watchkeeper.event/1"; a new major number means an incompatible change
    event         the event kind: "opened", "changed", "reminder", "resolved", "flapping",
                  "investigation" (a root-cause analysis, or why there is none)
    event_id      int: the incident event's id (the same event sent to two targets has one id)
    at            when the event happened
    incident      object:
      id                 int
      fingerprint        16 hex chars: the failing check's identity, stable across restarts
      check              the root check's name
      severity           "critical" | "high" | "medium" | "low" | "info"
      previous_severity  the severity before a "changed" event, else null
      status             "open", or "resolved" on a resolved event
      opened_at          when the incident opened
      duration_s         number: seconds open as of this event (the total when resolved)
      blast_radius       [str]: checks depending on the root check, failing with it
    evidence      the root check's latest evidence: plain, untrusted text (escape it)
    detail        one extra line (why it changed, that it flaps), "" when none
    title         the human title every target gets
    text          the Markdown body every target gets
    triage        null, or what the local triage said: `by` (model, or "deterministic: why"),
                  `deterministic`, `summary`, `severity`, `raised_from` (null unless triage
                  raised it), `escalate`, `reason`, `correlations` [str]
    rca           null, or on an "investigation" event the analysis: `root_cause`,
                  `confidence` ("high"|"medium"|"low"), `evidence`, `blast_radius`,
                  `next_steps` ([str] each), `model`, `reason` (why it ran), `dropped` (context
                  left out to fit)
    costs         null, or the AI cost of this message: `calls` [{task, model, local,
                  input_tokens, output_tokens, cost_usd, outcome}], `incident_total_usd`,
                  `today_usd`, `month_usd`, `local_triage_saved_today_usd`,
                  `savings_reference_model`; an unknown cost is null, never 0
    ai_off        bool: no model could take part although one was wanted (none configured,
                  no key, unreachable): `ai_note` then stands in for the triage line
    ai_note       null, or the one line the message carries about an AI step that could not
                  run: "AI off: no model reachable — run `watchkeeper models`" (neither
                  triage nor RCA), "Triage off: …" (only triage was due), "RCA skipped: no
                  model usable for rca — …"; the detail is in `triage.by`, `rca_skipped`,
                  the ledger's skips and `watchkeeper models`
    links         object: name → URL (empty for now)
    sent_at       when this attempt was made
    rca_skipped   "investigation" events only: why no model answered, else null

Model output (`summary`, `root_cause`, …) is untrusted text like `evidence`: escape it.

Other messages — reports, budget notices, `watchkeeper notify test` — carry
`schema` "watchkeeper.message/1": `schema`, `event` ("report", "budget", "test"; "message" for
a row queued before payloads existed), `title`, `text`, `notify_type` ("info", "success",
"warning", "failure"), `links` ({}) and `sent_at`.

Verifying a signature
---------------------
Scheme `v1`: HMAC-SHA256 keyed with the secret's UTF-8 bytes, over the version, the delivery
id, the timestamp and the event — each followed by a newline, exactly as in their headers — and
then the raw body exactly as received. `X-Watchkeeper-Signature: v1=<hex>`. So a signed body
cannot be replayed under another delivery id (to slip past your de-duplication) or another
event. Verify before parsing the JSON, then trust those three headers; reject a timestamp far
from your clock (a replay). Remember the delivery ids you accepted for at least
`delivery.max_age` (24 h by default): retries of one message carry the same id that long.
`headers` is your framework's case-insensitive mapping (Flask, Starlette and Django's
`request.headers` all are); anything missing or malformed is simply a failed verification::

    import hashlib, hmac, time
    def verify(secret: bytes, headers, body: bytes, tolerance: int = 300) -> bool:
        try:
            delivery = headers["X-Watchkeeper-Delivery"]
            event = headers["X-Watchkeeper-Event"]
            stamp = headers["X-Watchkeeper-Timestamp"]
            given = headers["X-Watchkeeper-Signature"].encode("ascii")
            signed = f"v1\\n{delivery}\\n{stamp}\\n{event}\\n".encode("ascii") + body
        except (KeyError, AttributeError, UnicodeError):
            return False
        if not (stamp.isascii() and stamp.isdigit()) or abs(time.time() - int(stamp)) > tolerance:
            return False
        mac = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(b"v1=" + mac.encode(), given)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from daemon import USER_AGENT
from daemon.notify.channels import Failure
from daemon.notify.post import Answer, post, redirect_reason
from daemon.util.time import iso_utc

if TYPE_CHECKING:
    from daemon.notify.channels import Outgoing


SIGNATURE_VERSION = "v1"


def signature(secret: str, delivery_id: str, timestamp: int, event: str, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256>` over "v1", the delivery id, the timestamp and the event, each
    with a newline, then the body: the X-Watchkeeper-Signature value."""
    signed = f"{SIGNATURE_VERSION}\n{delivery_id}\n{timestamp}\n{event}\n".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def build_request(
    payload: Mapping[str, Any],
    *,
    delivery_id: str,
    sent_at: datetime,
    signing_secret: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers of one attempt: `sent_at` filled in, signed when asked."""
    body = json.dumps(
        {**payload, "sent_at": iso_utc(sent_at)}, ensure_ascii=False, separators=(",", ":")
    ).encode()
    event = str(payload.get("event", "message"))
    headers = dict(extra_headers or {})
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Watchkeeper-Event": event,
            "X-Watchkeeper-Delivery": delivery_id,
        }
    )
    if signing_secret is not None:
        aware = sent_at if sent_at.tzinfo is not None else sent_at.replace(tzinfo=UTC)
        timestamp = int(aware.timestamp())
        headers["X-Watchkeeper-Timestamp"] = str(timestamp)
        headers["X-Watchkeeper-Signature"] = signature(
            signing_secret, delivery_id, timestamp, event, body
        )
    return body, headers


def status_error(safe_url: str, answer: Answer) -> Failure | None:
    """None for a 2xx, else why (a 429's Retry-After is honoured)."""
    status = answer.status
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return Failure(redirect_reason(safe_url, status))
    retry_after = answer.retry_after() if status in (429, 503) else None
    return Failure(f"{safe_url} answered HTTP {status}", retry_after=retry_after)


@dataclass(frozen=True)
class WebhookChannel:
    """One configured webhook target, its secrets resolved. `send` returns None when the
    receiver answered 2xx, else a Failure built from `safe_url` only; it raises TimeoutError
    when the attempt timed out."""

    url: str = field(repr=False)
    safe_url: str
    signing_secret: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    """Built once off the event loop (loading CA certificates blocks); None: httpx default."""
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    """For tests of edge cases (httpx.MockTransport); None: the network."""

    async def send(self, outgoing: Outgoing, limit: timedelta) -> Failure | None:
        body, headers = build_request(
            outgoing.payload,
            delivery_id=outgoing.delivery_id,
            sent_at=outgoing.sent_at,
            signing_secret=self.signing_secret,
            extra_headers=self.headers,
        )
        answer = await post(
            self.url,
            self.safe_url,
            body,
            headers,
            limit=limit,
            ssl_context=self.ssl_context,
            transport=self.transport,
        )
        return answer if isinstance(answer, Failure) else status_error(self.safe_url, answer)
