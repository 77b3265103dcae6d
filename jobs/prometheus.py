"""The `prometheus` check: a PromQL instant query whose series are compared with a threshold.

Works against any Prometheus-compatible query API; it quotes the server's own error messages
and never puts a credential (header, token, password) in evidence.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from daemon.models import CheckResult, ContextBlock, Status
from daemon.util.text import clip
from jobs._prometheus_api import QUOTE_CHARS, ApiCheckSpec, ApiUnavailable, format_labels
from jobs.base import CheckContext

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_POST_ABOVE = 2000
"""Queries longer than this go as a POST form: URLs that long are cut by some proxies."""
RCA_SERIES = 50


class PrometheusCheck(ApiCheckSpec):
    """A PromQL instant query: any series whose value meets the condition is a problem."""

    type: Literal["prometheus"]
    query: str = Field(min_length=1, description="PromQL expression, evaluated at 'now'.")
    op: Op = Field(
        description="Comparison of each series' value with threshold that marks a problem: "
        "'>', '>=', '<', '<=', '==' or '!='. NaN values never match."
    )
    threshold: float = Field(description="Number the value is compared with (may be inf).")
    status_when_matching: Literal["failing", "degraded"] = Field(
        default="failing", description="Status of a series that meets the condition."
    )
    no_data: Status = Field(
        default="failing",
        description="Status when the query returns no series (or only NaN): 'ok', "
        "'degraded', 'failing' or 'error'.",
    )
    max_series: int = Field(
        default=10, ge=1, le=500, description="Report at most this many matching series."
    )

    @field_validator("threshold")
    @classmethod
    def _threshold_number(cls, value: float) -> float:
        if math.isnan(value):
            raise ValueError("threshold cannot be NaN: nothing compares equal to NaN")
        return value

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        outcome = await self._evaluate(ctx)
        if isinstance(outcome, str):
            latency = (time.perf_counter() - t0) * 1000
            return [self.result("error", outcome, started_at=started_at, latency_ms=latency)]
        verdicts = self._judge(outcome)
        note = _warnings(outcome.warnings)
        return [
            self.result(
                status,
                evidence + note,
                started_at=started_at,
                latency_ms=outcome.elapsed_ms,
                subject=subject,
                values=values,
            )
            for status, evidence, subject, values in verdicts
        ]

    async def rca_context(
        self, ctx: CheckContext, results: list[CheckResult]
    ) -> list[ContextBlock]:
        """The query, the condition and the current result series, worst first (bounded)."""
        outcome = await self._evaluate(ctx)
        lines = [
            f"query: {self.query}",
            f"problem when: value {self.op} {_num(self.threshold)} "
            f"(status {self.status_when_matching}; no data means {self.no_data})",
        ]
        if isinstance(outcome, str):
            lines.append(f"re-running the query for context failed: {outcome}")
        else:
            points = self._worst_first(outcome.points)
            lines.append(f"result ({outcome.kind}, {len(points)} series now, worst first):")
            lines += [
                f"  {'MATCH ' if self._matches(p.value) else '      '}{p.series} = {_num(p.value)}"
                for p in points[:RCA_SERIES]
            ]
            if len(points) > RCA_SERIES:
                lines.append(f"  … {len(points) - RCA_SERIES} more series not shown")
            lines += [f"warning from the server: {w}" for w in outcome.warnings]
        return [ContextBlock(title=f"Prometheus query of {self.name}", text="\n".join(lines))]

    async def _evaluate(self, ctx: CheckContext) -> _Outcome | str:
        """The query's points, or the evidence of why there are none to judge."""
        post = len(self.query) > _POST_ABOVE
        try:
            reply = await self.call_api(
                ctx, "/api/v1/query", [("query", self.query)], post_form=post
            )
        except ApiUnavailable as exc:
            return str(exc)
        try:
            document = _Response.model_validate_json(reply.body)
        except ValidationError as exc:
            return reply.describe_invalid(exc, "a Prometheus query response")
        if document.status == "success" and document.data is None:
            return f"{reply.request} returned status success without data; body: {reply.quote()}"
        if document.status == "error" or document.data is None:
            kind = document.errorType or "error"
            return (
                f"query `{_shown(self.query)}` failed (HTTP {reply.status_code}, {kind}): "
                f"{reply.scrub(document.error) or 'no error message'}"
            )
        return _outcome(document.data, document.warnings, reply.elapsed_ms, self.query)

    def _judge(self, outcome: _Outcome) -> list[_Verdict]:
        what = f"query `{_shown(self.query)}` returned"
        points = outcome.points
        numbers = [p for p in points if not math.isnan(p.value)]
        if not numbers:
            found = "no series" if not points else f"{len(points)} series, all NaN"
            found = "scalar NaN" if outcome.kind == "scalar" else found
            return [(self.no_data, f"{what} {found} (no_data = {self.no_data})", None, {})]
        matching = self._worst_first([p for p in numbers if self._matches(p.value)])
        counts: dict[str, float | int | str | bool | None] = {
            "series": len(points),
            "matching": len(matching),
        }
        cond = f"{self.op} {_num(self.threshold)}"
        if matching:
            return self._problems(matching, counts, f"{what} {len(points)} series")
        if outcome.kind == "scalar":
            return [("ok", f"{what} scalar {_num(numbers[0].value)}, not {cond}", None, counts)]
        evidence = f"{what} {len(points)} series, none {cond}"
        if self.op not in ("==", "!="):
            closest = self._worst_first(numbers)[0]
            evidence += f" (closest: {closest.series} = {_num(closest.value)})"
        if len(numbers) < len(points):
            evidence += f"; {len(points) - len(numbers)} NaN not compared"
        return [("ok", evidence, None, counts)]

    def _problems(
        self,
        matching: list[_Point],
        counts: dict[str, float | int | str | bool | None],
        returned: str,
    ) -> list[_Verdict]:
        """One verdict per matching series, worst first, then one for those not shown."""
        cond = f"{self.op} {_num(self.threshold)}"
        verdicts: list[_Verdict] = []
        for point in matching[: self.max_series]:
            source = "" if point.named else f" (query `{_shown(self.query)}`)"
            evidence = f"{point.series} = {_num(point.value)} {cond}{source}"
            values = {**counts, "value": _value(point.value), "threshold": _value(self.threshold)}
            verdicts.append((self.status_when_matching, evidence, point.series, values))
        hidden = len(matching) - self.max_series
        if hidden > 0:
            evidence = (
                f"{hidden} more series {cond} not shown (max_series = {self.max_series}); "
                f"{returned}, {len(matching)} {cond}"
            )
            verdicts.append((self.status_when_matching, evidence, None, counts))
        return verdicts

    def _matches(self, value: float) -> bool:
        return not math.isnan(value) and _COMPARE[self.op](value, self.threshold)

    def _worst_first(self, points: list[_Point]) -> list[_Point]:
        """Furthest past the threshold first; series name breaks ties (stable output)."""
        lowest_first = self.op in ("<", "<=")

        def key(p: _Point) -> tuple[bool, float, str]:
            if math.isnan(p.value):
                return (True, 0.0, p.series)
            return (False, p.value if lowest_first else -p.value, p.series)

        return sorted(points, key=key)


_Verdict = tuple[Status, str, str | None, dict[str, float | int | str | bool | None]]


@dataclass(frozen=True)
class _Point:
    series: str
    value: float
    named: bool
    """The series has a metric name, so it explains itself without the query."""


@dataclass(frozen=True)
class _Outcome:
    kind: Literal["vector", "scalar"]
    points: list[_Point]
    warnings: list[str]
    elapsed_ms: float


# --- the query API's JSON ---------------------------------------------------------------------
# Sample values are strings ("0.93", "NaN", "+Inf", "-Inf"); pydantic reads all of them as floats.


class _Sample(BaseModel):
    metric: dict[str, str]
    value: tuple[float, float] | None = None
    """None for a native histogram sample (which has `histogram` instead)."""


class _VectorData(BaseModel):
    resultType: Literal["vector"]
    result: list[_Sample]


class _ScalarData(BaseModel):
    resultType: Literal["scalar"]
    result: tuple[float, float]


class _OtherData(BaseModel):
    resultType: Literal["matrix", "string"]
    result: Any


class _Response(BaseModel):
    status: Literal["success", "error"]
    data: (
        Annotated[_VectorData | _ScalarData | _OtherData, Field(discriminator="resultType")] | None
    ) = None
    errorType: str = ""
    error: str = ""
    warnings: list[str] = []


def _outcome(
    data: _VectorData | _ScalarData | _OtherData, warnings: list[str], ms: float, query: str
) -> _Outcome | str:
    shown = f"query `{_shown(query)}`"
    if isinstance(data, _ScalarData):
        return _Outcome("scalar", [_Point("scalar", data.result[1], named=False)], warnings, ms)
    if isinstance(data, _OtherData) and data.resultType == "string":
        return f"{shown} returned a string, not a number"
    if isinstance(data, _OtherData):
        return (
            f"{shown} returned a range vector (matrix), which an instant check cannot "
            "compare: drop the [range] selector or wrap it, e.g. in rate()"
        )
    points = []
    for sample in data.result:
        series = _series_name(sample.metric)
        if sample.value is None:
            return (
                f"{shown} returned {series} as a native histogram, not a number: "
                "wrap it in histogram_quantile(), histogram_count() or similar"
            )
        points.append(_Point(series, sample.value[1], "__name__" in sample.metric))
    return _Outcome("vector", points, warnings, ms)


def _series_name(metric: dict[str, str]) -> str:
    return metric.get("__name__", "") + format_labels(metric)


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(value, ".10g")


def _value(value: float) -> float | str:
    return value if math.isfinite(value) else _num(value)


def _shown(query: str) -> str:
    return clip(query, 160)


def _warnings(warnings: list[str]) -> str:
    return f"; server warnings: {clip('; '.join(warnings), QUOTE_CHARS)}" if warnings else ""
