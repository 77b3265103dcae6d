"""AWS look-ups for the investigator, offered when the incident involves AWS checks:
`cloudwatch_metric` (one metric over a bounded window), `cloudwatch_alarm_history` (the alarms
and their state changes) and `aws_describe` (the read-only calls of `aws_allowlist`, nothing
else).

Scoped to the accounts and regions of the incident's AWS checks: the same profile and region
each check uses, through the same session and client code (`jobs.aws.api.AwsApi`), so no new
credential handling exists and IAM stays the final boundary. boto3 loads only when a tool runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from daemon.engine.aws_allowlist import (
    MAX_TEXT,
    NotAllowed,
    allowed_labels,
    checked,
    lookup,
    parameters_schema,
)
from daemon.engine.aws_allowlist import scrub as scrub_response
from daemon.engine.tools import Toolbox, ToolRefused, as_json
from daemon.util.text import printable
from jobs.base import CheckContext, CheckSpec

if TYPE_CHECKING:
    from jobs.aws.api import AwsApi, AwsCheck

AWS_TIMEOUT_S = 10.0
"""Per AWS call, retries included (the toolbox gives a whole tool call 15 s)."""
METRIC_POINTS = 60
ALARMS_SHOWN = 20
HISTORY_ITEMS = 20
CUT = "[…earlier events cut at the byte limit]"
STATISTICS = ["Average", "Sum", "Maximum", "Minimum", "SampleCount", "p50", "p90", "p95", "p99"]

Scope = tuple[str | None, str | None]
"""(profile, region) of a configured AWS check."""
ApiFor = Callable[[dict[str, Any]], "AwsApi"]
"""The client set for a call's `scope` argument (the first scope without one)."""


def scope_label(scope: Scope) -> str:
    profile, region = scope
    where = region or "default-region"
    return f"{profile}/{where}" if profile else where


def add_aws(box: Toolbox, specs: Sequence[CheckSpec], ctx: CheckContext) -> None:
    """The AWS tools, when any of the incident's checks is an AWS check."""
    from jobs.aws.api import AwsApi, AwsCheck

    checks = [s for s in specs if isinstance(s, AwsCheck)]
    if not checks:
        return
    scopes = {scope_label(s): s for s in dict.fromkeys((c.profile, c.region) for c in checks)}
    first = next(iter(scopes))
    scope_arg: dict[str, Any] = {}
    if len(scopes) > 1:
        scope_arg["scope"] = {
            "type": "string",
            "enum": list(scopes),
            "optional": True,
            "description": f"Profile/region to ask (default {first}).",
        }

    def api(args: dict[str, Any]) -> AwsApi:
        profile, region = scopes[args.get("scope", first)]
        return AwsApi(ctx, region=region, profile=profile, timeout_s=AWS_TIMEOUT_S)

    _metric(box, api, ctx, scope_arg)
    _alarms(box, api, ctx, scope_arg, checks)
    _describe(box, api, scope_arg)


def _metric(box: Toolbox, api: ApiFor, ctx: CheckContext, scope_arg: dict[str, Any]) -> None:
    from jobs.aws.api import AwsError
    from jobs.aws.cloudwatch import metric_label, num

    async def metric(args: dict[str, Any]) -> str:
        dimensions = parse_dimensions(args.get("dimensions", ""))
        minutes = int(args.get("minutes", 60))
        period = max(60, math.ceil(minutes * 60 / METRIC_POINTS / 60) * 60)
        stat = args.get("statistic", "Average")
        end = ctx.now().astimezone(UTC)
        query = {
            "Id": "m",
            "MetricStat": {
                "Metric": {
                    "Namespace": args["namespace"],
                    "MetricName": args["metric"],
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                },
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        label = metric_label(args["namespace"], args["metric"], dimensions)
        try:
            reply = await api(args).call(
                "cloudwatch",
                "get_metric_data",
                MetricDataQueries=[query],
                StartTime=end - timedelta(minutes=minutes),
                EndTime=end,
                ScanBy="TimestampAscending",
                MaxDatapoints=METRIC_POINTS,
            )
        except AwsError as exc:
            return f"error: {exc}"
        results = reply.get("MetricDataResults") or [{}]
        found = results[0]
        points = sorted(zip(found.get("Timestamps", []), found.get("Values", []), strict=True))
        if not points:
            return (
                f"no datapoints for {label} in the last {minutes} min (every dimension of the "
                "metric must be given; names are case-sensitive)"
            )
        points = points[-METRIC_POINTS:]
        head = f"{label} {stat} per {period} s, last {minutes} min, {len(points)} points:"
        return "\n".join([head, *(f"{t:%H:%M} {num(v)}" for t, v in points)])

    box.add(
        "cloudwatch_metric",
        f"One CloudWatch metric over the last N minutes (at most {METRIC_POINTS} points), "
        "e.g. namespace AWS/RDS, metric FreeStorageSpace, dimensions "
        "DBInstanceIdentifier=orders.",
        {
            "namespace": {"type": "string"},
            "metric": {"type": "string"},
            "dimensions": {
                "type": "string",
                "optional": True,
                "description": "All of the metric's dimensions as Name=Value pairs separated "
                "by commas, e.g. DBInstanceIdentifier=orders.",
            },
            "statistic": {"type": "string", "enum": STATISTICS, "optional": True},
            "minutes": {"type": "integer", "minimum": 5, "maximum": 1440, "optional": True},
            **scope_arg,
        },
        metric,
    )


def parse_dimensions(text: str) -> dict[str, str]:
    """`Name=Value,Name2=Value2` → a dict; at most 10 (CloudWatch's limit), none empty."""
    dimensions: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ToolRefused(f"dimensions: {printable(pair)[:80]!r} is not Name=Value")
        dimensions[name.strip()[:MAX_TEXT]] = value.strip()[:MAX_TEXT]
    if len(dimensions) > 10:
        raise ToolRefused("dimensions: at most 10")
    return dimensions


def _alarm_scope(checks: Sequence[AwsCheck]) -> tuple[set[str], list[str], set[str]]:
    """The alarm names and prefixes the incident's CloudWatch checks watch (empty: any), and
    the resource identifiers of its checks (listed first among the alarms)."""
    from jobs.aws.cloudwatch import CloudWatchCheck
    from jobs.aws.ecs import EcsCheck
    from jobs.aws.rds import RdsCheck

    names: set[str] = set()
    prefixes: list[str] = []
    resources: set[str] = set()
    unrestricted = False
    for check in checks:
        if isinstance(check, CloudWatchCheck):
            names.update(check.alarm_names)
            prefixes += [check.alarm_prefix] if check.alarm_prefix else []
            watches_all = not check.alarm_names and not check.alarm_prefix
            unrestricted |= check.mode == "alarms" and watches_all
            resources.update(check.dimensions.values())
        elif isinstance(check, EcsCheck):
            resources.update([check.cluster.rsplit("/", 1)[-1], *check.services])
        elif isinstance(check, RdsCheck):
            resources.update(check.instances)
    if unrestricted or not (names or prefixes):
        return set(), [], resources
    return names, prefixes, resources


def _alarms(
    box: Toolbox,
    api: ApiFor,
    ctx: CheckContext,
    scope_arg: dict[str, Any],
    checks: Sequence[AwsCheck],
) -> None:
    from jobs.aws.api import AwsError, clock
    from jobs.aws.cloudwatch import ALARM_TYPES, _Alarm

    names, prefixes, resources = _alarm_scope(checks)

    def in_scope(name: str) -> bool:
        return (not names and not prefixes) or name in names or name.startswith(tuple(prefixes))

    def rank(alarm: dict[str, Any]) -> tuple[bool, bool]:
        dims = {str(d.get("Value")) for d in alarm.get("Dimensions", [])}
        return alarm.get("StateValue") != "ALARM", not (dims & resources)

    async def alarms(args: dict[str, Any]) -> str:
        now = ctx.now()
        name = args.get("alarm_name")
        try:
            if name is None:
                found: list[dict[str, Any]] = []
                asks: list[dict[str, str]] = [{"AlarmNamePrefix": p} for p in prefixes] or [{}]
                for extra in asks:
                    reply = await api(args).call(
                        "cloudwatch",
                        "describe_alarms",
                        AlarmTypes=ALARM_TYPES,
                        MaxRecords=100,
                        **extra,
                    )
                    found += reply.get("MetricAlarms", []) + reply.get("CompositeAlarms", [])
                kept = sorted((a for a in found if in_scope(a["AlarmName"])), key=rank)
                if not kept:
                    return "no CloudWatch alarms in scope"
                return "\n".join(
                    _Alarm.model_validate(a).describe(now) for a in kept[:ALARMS_SHOWN]
                )
            if not in_scope(name):
                raise ToolRefused(
                    f"alarm {printable(name)[:80]!r} is not one the incident's checks watch"
                )
            hours = int(args.get("hours", 24))
            reply = await api(args).call(
                "cloudwatch",
                "describe_alarm_history",
                AlarmName=name,
                HistoryItemType="StateUpdate",
                StartDate=now - timedelta(hours=hours),
                EndDate=now,
                MaxRecords=HISTORY_ITEMS,
                ScanBy="TimestampDescending",
            )
        except AwsError as exc:
            return f"error: {exc}"
        items = reply.get("AlarmHistoryItems", [])[:HISTORY_ITEMS]
        lines = [f"{clock(i['Timestamp'], now)} {i.get('HistorySummary', '')}" for i in items]
        return "\n".join(lines) or f"no state changes of {name} in the last {hours} h"

    box.add(
        "cloudwatch_alarm_history",
        "Without alarm_name: the CloudWatch alarms in scope (those in ALARM first) with state, "
        "reason and metric. With alarm_name: that alarm's state changes over the last hours.",
        {
            "alarm_name": {"type": "string", "optional": True},
            "hours": {"type": "integer", "minimum": 1, "maximum": 72, "optional": True},
            **scope_arg,
        },
        alarms,
    )


def _describe(box: Toolbox, api: ApiFor, scope_arg: dict[str, Any]) -> None:
    from jobs.aws.api import AwsError

    async def describe(args: dict[str, Any]) -> str:
        try:
            op = lookup(args["service"], args["operation"])
            params = checked(op, args.get("parameters") or {})
        except NotAllowed as exc:
            raise ToolRefused(str(exc)) from None
        try:
            reply = await api(args).call(op.service, op.name, **params)
        except AwsError as exc:
            return f"error: {exc}"
        if op.name == "filter_log_events":
            return _log_lines(reply, box.output_bytes)
        return as_json(scrub_response(reply))

    box.add(
        "aws_describe",
        "One read-only AWS call from this allowlist (service operation): "
        f"{allowed_labels()}. Parameters use the AWS API's names, e.g. "
        '{"cluster": "prod", "services": ["checkout"]}; filter_log_events takes '
        "logGroupName, filterPattern, minutes (at most 180) and limit (events from the "
        "oldest; of those, the newest that fit the byte limit are shown). Anything else is "
        "refused.",
        {
            "service": {"type": "string", "description": "ecs, ec2, elbv2, rds, lambda, …"},
            "operation": {"type": "string", "description": "e.g. describe_services"},
            "parameters": {**parameters_schema(), "optional": True},
            **scope_arg,
        },
        describe,
    )


def _log_lines(reply: dict[str, Any], limit: int) -> str:
    """The events as `time stream: message` lines, oldest first; when they exceed `limit`
    bytes the newest are kept (the end of a log says the most)."""
    lines: list[str] = []
    size = len(CUT.encode()) + 1
    events = sorted(reply.get("events", []), key=lambda e: e.get("timestamp", 0))
    for event in reversed(events):
        when = datetime.fromtimestamp(event.get("timestamp", 0) / 1000, UTC)
        line = f"{when:%H:%M:%S} {event.get('logStreamName', '')}: {event.get('message', '')}"
        size += len(line.encode()) + 1
        if size > limit:
            lines.append(CUT)
            break
        lines.append(line.rstrip())
    return "\n".join(reversed(lines)) or "no log events matched in that window"
