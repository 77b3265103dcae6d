"""The `aws_cloudwatch` check: CloudWatch alarms in ALARM state, or one metric against a threshold.

It only reads (DescribeAlarms, GetMetricData, DescribeAlarmHistory) and never imports boto3 at
module import; alarm reasons are AWS text, quoted and clipped, never interpreted.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_pascal

from daemon.models import CheckResult, ContextBlock, Duration, Status, format_duration
from daemon.util.text import clip
from jobs.aws.api import QUOTE_CHARS, AwsApi, AwsCheck, clock

ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]
HISTORY_ITEMS = 5
RECENT_WINDOW = timedelta(hours=1)
_STATISTIC = re.compile(r"^(Average|Sum|Maximum|Minimum|SampleCount|p\d{1,2}(\.\d{1,2})?|p100)$")
_HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)
_METRIC_OPTIONS = frozenset(
    {"namespace", "metric", "dimensions", "statistic", "period", "lookback", "op", "threshold"}
    | {"no_data"}
)
Op = Literal[">", ">=", "<", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_ALARM_OPS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="ignore")


class _Dimension(_Model):
    name: str
    value: str


class _Alarm(_Model):
    alarm_name: str
    state_value: str
    state_reason: str = ""
    state_updated_timestamp: datetime | None = None
    state_transitioned_timestamp: datetime | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: list[_Dimension] = []
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int | None = None
    threshold: float | None = None
    comparison_operator: str | None = None
    alarm_rule: str | None = None

    def describe(self, now: datetime) -> str:
        since = self.state_transitioned_timestamp or self.state_updated_timestamp
        text = f"alarm {self.alarm_name} is {self.state_value}"
        if since is not None:
            text += f" since {clock(since, now)}"
        text += f": {clip(self.state_reason, QUOTE_CHARS)}" if self.state_reason else ""
        if self.metric_name and self.namespace:
            dims = {d.name: d.value for d in self.dimensions}
            stat = self.statistic or self.extended_statistic or "?"
            per = f" per {format_duration(timedelta(seconds=self.period))}" if self.period else ""
            op = _ALARM_OPS.get(self.comparison_operator or "", self.comparison_operator)
            bound = f" {op} {num(self.threshold)}" if self.threshold is not None else ""
            text += f" (metric {metric_label(self.namespace, self.metric_name, dims)} "
            text += f"{stat}{per}{bound})"
        elif self.alarm_rule:
            text += f" (composite rule {clip(self.alarm_rule, 200)})"
        return text


def num(value: float) -> str:
    """93.2, 5, 1048576.5: no exponent, no float noise."""
    return format(round(value, 3), ".15g")


def metric_label(namespace: str, metric: str, dimensions: dict[str, str]) -> str:
    """`AWS/RDS CPUUtilization{DBInstanceIdentifier=orders}`."""
    dims = ",".join(f"{k}={v}" for k, v in dimensions.items())
    return f"{namespace} {metric}" + (f"{{{dims}}}" if dims else "")


class CloudWatchCheck(AwsCheck):
    """CloudWatch alarms are not firing, or a CloudWatch metric stays within a threshold."""

    type: Literal["aws_cloudwatch"]
    mode: Literal["alarms", "metric"] = Field(
        description="'alarms': report every alarm in ALARM state; 'metric': judge one metric "
        "against op and threshold."
    )
    alarm_prefix: str | None = Field(
        default=None, description="alarms mode: only alarms whose name starts with this."
    )
    alarm_names: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="alarms mode: exactly these alarms (a missing one is an error). Neither "
        "this nor alarm_prefix: every alarm in the region.",
    )
    namespace: str | None = Field(default=None, description="metric mode: e.g. 'AWS/RDS'.")
    metric: str | None = Field(default=None, description="metric mode: e.g. 'CPUUtilization'.")
    dimensions: dict[str, str] = Field(
        default_factory=dict,
        description="metric mode: dimensions as name = value, e.g. "
        "{ DBInstanceIdentifier = 'orders' }. All of the metric's dimensions must be given.",
    )
    statistic: str = Field(
        default="Average",
        description="metric mode: Average, Sum, Maximum, Minimum, SampleCount or a percentile "
        "such as p99.",
    )
    period: Duration = Field(
        default=timedelta(minutes=5),
        description="metric mode: the window one datapoint aggregates, e.g. '1m', '5m'.",
    )
    lookback: Duration = Field(
        default=timedelta(minutes=15),
        description="metric mode: how far back to look for the latest datapoint (CloudWatch "
        "data arrives minutes late).",
    )
    op: Op = Field(
        default=">",
        description="metric mode: the value fails when `value op "
        "threshold` holds: '>', '>=', '<' or '<='.",
    )
    threshold: float | None = Field(default=None, description="metric mode: the limit.")
    no_data: Status = Field(
        default="degraded",
        description="metric mode: status when no datapoint exists in the lookback window.",
    )

    @field_validator("statistic")
    @classmethod
    def _statistic_valid(cls, value: str) -> str:
        if not _STATISTIC.match(value):
            raise ValueError(
                f"statistic {value!r} must be Average, Sum, Maximum, Minimum, SampleCount or "
                "a percentile like p99 or p99.9"
            )
        return value

    @field_validator("period")
    @classmethod
    def _period_valid(cls, value: timedelta) -> timedelta:
        seconds = value.total_seconds()
        if seconds != int(seconds) or not (
            seconds in _HIGH_RESOLUTION_PERIODS or (seconds >= 60 and seconds % 60 == 0)
        ):
            raise ValueError("period must be 1, 5, 10, 20 or 30 s, or a multiple of 60 s")
        return value

    @model_validator(mode="after")
    def _mode_options(self) -> Self:
        alarm_opts = {"alarm_prefix", "alarm_names"} & self.model_fields_set
        metric_opts = _METRIC_OPTIONS & self.model_fields_set
        if self.mode == "alarms":
            if metric_opts:
                raise ValueError(f"{', '.join(sorted(metric_opts))}: only for mode = 'metric'")
            if self.alarm_prefix is not None and self.alarm_names:
                raise ValueError("give alarm_prefix or alarm_names, not both")
        else:
            if alarm_opts:
                raise ValueError(f"{', '.join(sorted(alarm_opts))}: only for mode = 'alarms'")
            missing = [k for k in ("namespace", "metric", "threshold") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"mode = 'metric' needs {', '.join(missing)}")
            if self.lookback < self.period:
                raise ValueError("lookback must be at least one period")
        return self

    async def inspect(self, api: AwsApi, now: datetime) -> list[CheckResult]:
        if self.mode == "alarms":
            return await self._alarms(api, now)
        return [await self._metric(api, now)]

    async def _alarms(self, api: AwsApi, now: datetime) -> list[CheckResult]:
        params: dict[str, object] = {"AlarmTypes": ALARM_TYPES}
        if self.alarm_names:
            params["AlarmNames"] = self.alarm_names  # every state: to notice missing names
        else:
            params["StateValue"] = "ALARM"
            if self.alarm_prefix is not None:
                params["AlarmNamePrefix"] = self.alarm_prefix
        pages = await api.pages("cloudwatch", "describe_alarms", **params)
        alarms = [
            _Alarm.model_validate(item)
            for page in pages
            for item in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
        ]
        results = [
            self.result(
                "failing",
                alarm.describe(now),
                started_at=now,
                subject=alarm.alarm_name,
                values={"state": alarm.state_value, "threshold": alarm.threshold},
            )
            for alarm in alarms
            if alarm.state_value == "ALARM"
        ]
        found = {a.alarm_name for a in alarms}
        for name in (n for n in self.alarm_names if n not in found):
            evidence = f"no CloudWatch alarm named {name} in {api.region_name}: fix alarm_names"
            results.append(self.result("error", evidence, started_at=now, subject=name))
        return results or [self.result("ok", self._all_clear(alarms, api), started_at=now)]

    def _all_clear(self, alarms: list[_Alarm], api: AwsApi) -> str:
        if self.alarm_names:
            states = sorted(Counter(a.state_value for a in alarms).items())
            summary = ", ".join(f"{n} {state}" for state, n in states)
            return f"none of the {len(alarms)} named alarms is in ALARM state ({summary})"
        scope = f"with prefix {self.alarm_prefix!r}" if self.alarm_prefix else "at all"
        return f"no CloudWatch alarm {scope} is in ALARM state in {api.region_name}"

    def _query(self) -> dict[str, object]:
        dims = [{"Name": k, "Value": v} for k, v in self.dimensions.items()]
        return {
            "Id": "m",
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": dims,
                },
                "Period": int(self.period.total_seconds()),
                "Stat": self.statistic,
            },
            "ReturnData": True,
        }

    async def _series(
        self, api: AwsApi, start: datetime, end: datetime
    ) -> tuple[str, list[tuple[datetime, float]]]:
        """GetMetricData's status code and (timestamp, value) pairs, newest first."""
        response = await api.call(
            "cloudwatch",
            "get_metric_data",
            MetricDataQueries=[self._query()],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampDescending",
        )
        data = response["MetricDataResults"][0]
        return data["StatusCode"], list(zip(data["Timestamps"], data["Values"], strict=True))

    @property
    def label(self) -> str:
        assert self.namespace is not None and self.metric is not None
        return metric_label(self.namespace, self.metric, self.dimensions)

    async def _metric(self, api: AwsApi, now: datetime) -> CheckResult:
        assert self.threshold is not None
        code, points = await self._series(api, now - self.lookback, now)
        subject = self.label
        window = f"{self.statistic} over {format_duration(self.period)}"
        if code not in ("Complete", "PartialData"):
            evidence = f"GetMetricData returned {code} for {subject}"
            return self.result("error", evidence, started_at=now, subject=subject)
        if not points:
            evidence = (
                f"no {subject} datapoints ({window}) in the last {format_duration(self.lookback)}"
                ": check the namespace, metric name and every dimension, or whether the "
                "resource still reports"
            )
            return self.result(self.no_data, evidence, started_at=now, subject=subject)
        at, value = points[0]
        breached = _OPS[self.op](value, self.threshold)
        bound = f"{self.op} {num(self.threshold)}"
        shown = f"{num(value)} {bound}" if breached else f"{num(value)}, not {bound}"
        evidence = f"{subject} {window} = {shown} (period starting {clock(at, now)})"
        return self.result(
            "failing" if breached else "ok",
            evidence,
            started_at=now,
            subject=subject,
            values={"value": value, "threshold": self.threshold},
        )

    async def context_for(
        self, api: AwsApi, subjects: list[str], now: datetime
    ) -> list[ContextBlock]:
        if self.mode == "metric":
            _, points = await self._series(api, now - RECENT_WINDOW, now)
            lines = [f"{clock(at, now)} {num(value)}" for at, value in reversed(points)]
            text = "\n".join(lines) or "no datapoints"
            return [ContextBlock(f"{self.label} {self.statistic}, last hour", text, relevance=60)]
        blocks = []
        for name in subjects:
            response = await api.call(
                "cloudwatch",
                "describe_alarm_history",
                AlarmName=name,
                HistoryItemType="StateUpdate",
                ScanBy="TimestampDescending",
                MaxRecords=HISTORY_ITEMS,
            )
            lines = [
                f"{clock(item['Timestamp'], now)} {clip(item['HistorySummary'], QUOTE_CHARS)}"
                for item in response["AlarmHistoryItems"]
            ]
            text = "\n".join(lines) or "no state changes recorded"
            blocks.append(ContextBlock(f"CloudWatch alarm history: {name}", text, relevance=70))
        return blocks
