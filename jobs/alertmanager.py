"""The `alertmanager` check: alerts firing in Alertmanager that match given matchers.

Each firing alert becomes one result whose status follows its severity label; alert text is
untrusted infrastructure input and is quoted as such. No credential ever reaches evidence.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from daemon.models import STATUS_RANK, CheckResult, ContextBlock, Status, format_duration
from daemon.util.text import clip
from jobs._prometheus_api import (
    QUOTE_CHARS,
    ApiCheckSpec,
    ApiReply,
    ApiUnavailable,
    format_labels,
)
from jobs.base import CheckContext

_MATCHER = re.compile(r'^\s*("(?:[^"\\]|\\.)+"|[^\s"=!~{}]+)\s*(=~|!~|!=|=)\s*(.*)$', re.S)
_NOISE_LABELS = frozenset({"prometheus", "prometheus_replica", "replica", "receive", "monitor"})
"""External labels added by the sender (HA pairs, Thanos) that do not identify the problem."""
RCA_ALERTS = 20
RCA_CHARS = 12_000


class AlertmanagerCheck(ApiCheckSpec):
    """Firing Alertmanager alerts matching `matchers` are check failures, one per alert.

    Status by the alert's `severity_label` value (case-insensitive): a value listed in
    `failing_severities` (default: critical) is failing; warning, info, any other value or no
    label at all is degraded. Silenced and inhibited alerts are left out unless included.
    """

    type: Literal["alertmanager"]
    matchers: list[str] = Field(
        default_factory=list,
        description="Alertmanager matchers, one per item, e.g. 'severity=\"critical\"' or "
        "'alertname=~\"Kube.*\"'; all must match. Empty: every firing alert.",
    )
    include_silenced: bool = Field(default=False, description="Also report silenced alerts.")
    include_inhibited: bool = Field(default=False, description="Also report inhibited alerts.")
    severity_label: str = Field(
        default="severity", min_length=1, description="Label that holds the alert's severity."
    )
    failing_severities: list[str] = Field(
        default_factory=lambda: ["critical"],
        description="Severity values that make an alert failing; any other value is degraded.",
    )
    max_alerts: int = Field(
        default=20, ge=1, le=500, description="Report at most this many alerts, oldest first."
    )

    @field_validator("matchers")
    @classmethod
    def _matchers_valid(cls, value: list[str]) -> list[str]:
        for matcher in value:
            if matcher.strip().startswith("{"):
                raise ValueError(f"write matchers without braces, one per item: {matcher!r}")
            if not _MATCHER.match(matcher):
                raise ValueError(
                    f'{matcher!r} is not a matcher: write name="value" (or !=, =~, !~)'
                )
        return value

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at, t0 = ctx.now(), time.perf_counter()
        fetched = await self._firing(ctx)
        if isinstance(fetched, str):
            ms = (time.perf_counter() - t0) * 1000
            return [self.result("error", fetched, started_at=started_at, latency_ms=ms)]
        alerts, ms = fetched
        if not alerts:
            evidence = f"no firing alerts {self._selection(self.url)}"
            return [self.result("ok", evidence, started_at=started_at, latency_ms=ms)]
        ranked = self._ranked(alerts)
        results = [
            self.result(
                self._status(alert),
                self._evidence(alert, started_at),
                started_at=started_at,
                latency_ms=ms,
                subject=self._subject(alert),
                values={
                    "severity": alert.labels.get(self.severity_label),
                    "fingerprint": alert.fingerprint,
                    "started_at": alert.startsAt.isoformat(),
                },
            )
            for alert in ranked[: self.max_alerts]
        ]
        hidden = ranked[self.max_alerts :]
        if hidden:
            worst = self._status(hidden[0])
            evidence = (
                f"{len(hidden)} more firing alerts not shown (max_alerts = {self.max_alerts}); "
                f"{len(alerts)} firing {self._selection()}"
            )
            results.append(self.result(worst, evidence, started_at=started_at, latency_ms=ms))
        return results

    async def rca_context(
        self, ctx: CheckContext, results: list[CheckResult]
    ) -> list[ContextBlock]:
        """Every firing alert's labels and full annotations (runbook_url, description…)."""
        fetched = await self._firing(ctx)
        title = f"Alertmanager alerts {self._selection()}"
        if isinstance(fetched, str):
            return [ContextBlock(title, f"fetching alerts for context failed: {fetched}")]
        alerts = self._ranked(fetched[0])
        parts = []
        for alert in alerts[:RCA_ALERTS]:
            name = alert.labels.get("alertname", "(no alertname)")
            lines = [
                f"{name} {format_labels(alert.labels, skip=frozenset({'alertname'}))}",
                f"  state {alert.status.state}, firing since {alert.startsAt.isoformat()}, "
                f"receivers {', '.join(r.name for r in alert.receivers) or '(none)'}",
            ]
            lines += [
                f"  {k}: {clip(v, 2000, flat=False)}" for k, v in sorted(alert.annotations.items())
            ]
            if alert.generatorURL:
                lines.append(f"  source: {alert.generatorURL}")
            parts.append("\n".join(lines))
        if len(alerts) > RCA_ALERTS:
            parts.append(f"… {len(alerts) - RCA_ALERTS} more firing alerts not shown")
        return [
            ContextBlock(
                title, clip("\n\n".join(parts) or "no alerts firing now", RCA_CHARS, flat=False)
            )
        ]

    async def _firing(self, ctx: CheckContext) -> tuple[list[_Alert], float] | str:
        """The matching firing alerts and the request latency, or why there are none."""
        params = [
            ("active", "true"),
            ("silenced", _flag(self.include_silenced)),
            ("inhibited", _flag(self.include_inhibited)),
            *(("filter", matcher) for matcher in self.matchers),
        ]
        try:
            reply = await self.call_api(ctx, "/api/v2/alerts", params)
        except ApiUnavailable as exc:
            return str(exc)
        if reply.status_code != 200 or reply.too_large:
            return _refusal(reply)
        try:
            alerts = _ALERTS.validate_json(reply.body)
        except ValidationError as exc:
            return reply.describe_invalid(exc, "a list of Alertmanager v2 alerts")
        # Belt and braces: a proxy in front of Alertmanager may drop the query parameters.
        kept = [
            a
            for a in alerts
            if (self.include_silenced or not a.status.silencedBy)
            and (self.include_inhibited or not a.status.inhibitedBy)
        ]
        return kept, reply.elapsed_ms

    def _ranked(self, alerts: list[_Alert]) -> list[_Alert]:
        """Failing before degraded, then oldest first, then by subject (stable output)."""
        return sorted(
            alerts, key=lambda a: (-STATUS_RANK[self._status(a)], a.startsAt, self._subject(a))
        )

    def _status(self, alert: _Alert) -> Status:
        severity = alert.labels.get(self.severity_label, "").lower()
        failing = {s.lower() for s in self.failing_severities}
        return "failing" if severity in failing else "degraded"

    def _subject(self, alert: _Alert) -> str:
        """The alert name and the labels that say what it is about (not severity or replica)."""
        skip = _NOISE_LABELS | {"alertname", self.severity_label}
        labels = format_labels(alert.labels, skip=skip)
        return alert.labels.get("alertname", "(no alertname)") + ("" if labels == "{}" else labels)

    def _evidence(self, alert: _Alert, now: datetime) -> str:
        name = alert.labels.get("alertname", "(no alertname)")
        start = alert.startsAt.astimezone(UTC)
        clock = "%H:%M UTC" if start.date() == now.astimezone(UTC).date() else "%Y-%m-%d %H:%M UTC"
        age = format_duration(max(now - start, timedelta(0)))
        text = f"{name} firing since {start.strftime(clock)} ({age})"
        summary = alert.annotations.get("summary") or alert.annotations.get("message")
        if summary:
            text += f": {clip(summary, QUOTE_CHARS).rstrip('.')}"
        labels = format_labels(alert.labels, skip=frozenset({"alertname"}))
        text += "" if labels == "{}" else f"; labels {labels}"
        description = alert.annotations.get("description")
        if description:
            text += f"; description: {json.dumps(clip(description, 300), ensure_ascii=False)}"
        if alert.status.silencedBy:
            text += f"; silenced by {', '.join(alert.status.silencedBy)}"
        if alert.status.inhibitedBy:
            text += f"; inhibited by {', '.join(alert.status.inhibitedBy)}"
        if alert.generatorURL:
            text += f"; source: {alert.generatorURL}"
        return text

    def _selection(self, where: str = "") -> str:
        """`matching severity="critical"[ at URL] (silenced and inhibited excluded)`."""
        excluded = [
            name
            for name, included in (
                ("silenced", self.include_silenced),
                ("inhibited", self.include_inhibited),
            )
            if not included
        ]
        text = f"matching {', '.join(self.matchers)}" if self.matchers else "of any kind"
        text += f" at {where}" if where else ""
        return f"{text} ({' and '.join(excluded)} excluded)" if excluded else text


# --- the Alertmanager v2 API's JSON -------------------------------------------------------------


class _AlertStatus(BaseModel):
    state: str
    silencedBy: list[str]
    inhibitedBy: list[str]


class _Receiver(BaseModel):
    name: str


class _Alert(BaseModel):
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: datetime
    endsAt: datetime
    generatorURL: str = ""
    fingerprint: str
    status: _AlertStatus
    receivers: list[_Receiver]


_ALERTS = TypeAdapter(list[_Alert])


class _ErrorBody(BaseModel):
    message: str


def _refusal(reply: ApiReply) -> str:
    """Alertmanager's own message when it sent one (a JSON string or {code, message})."""
    if reply.too_large:
        return reply.describe_unexpected()
    try:
        body = reply.json()
    except ValueError:
        return reply.describe_unexpected()
    if isinstance(body, str) and body:
        return (
            f"{reply.request} returned {reply.status_code}: {reply.scrub(clip(body, QUOTE_CHARS))}"
        )
    try:
        message = _ErrorBody.model_validate(body).message
    except ValidationError:
        return reply.describe_unexpected()
    return (
        f"{reply.request} returned {reply.status_code}: {reply.scrub(clip(message, QUOTE_CHARS))}"
    )


def _flag(value: bool) -> str:
    return "true" if value else "false"
