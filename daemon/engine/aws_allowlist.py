"""The read-only AWS calls the investigator's `aws_describe` may make, and nothing else.

An explicit allowlist of (service, operation) pairs, each with the parameters it accepts and
their bounds. A request is checked here, as data, before any client exists: a pair that is not
listed (`ec2 terminate_instances`, `iam get_user`, any write) or a parameter that is not
allowed is refused with a sentence the model is shown, and AWS is never called. Every listed
operation only reads; the IAM actions they need are listed in README ("AWS tools").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.redaction import is_secret_name

Kind = Literal["string", "strings", "integer", "boolean"]
MAX_TEXT = 256
"""Characters of one string parameter (names, ARNs, a log filter pattern)."""
LOG_WINDOW_MINUTES = 180
"""filter_log_events looks back at most this far: a bounded scan, whatever the model asks."""
HIDDEN = "[hidden]"


class NotAllowed(Exception):
    """The request is outside the allowlist; the message says what and what is allowed."""


@dataclass(frozen=True)
class Param:
    kind: Kind
    required: bool = False
    max_items: int = 10
    minimum: int = 1
    maximum: int = 100
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    """boto3's snake_case method name."""
    action: str
    """The IAM action it needs (README's policy is built from these)."""
    params: Mapping[str, Param]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    """Parameters always sent (page sizes), whatever the model asks."""
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Turns checked parameters into the call's (e.g. a window in minutes into timestamps)."""

    @property
    def label(self) -> str:
        return f"{self.service} {self.name}"


def _log_window(params: dict[str, Any]) -> dict[str, Any]:
    minutes = params.pop("minutes", 60)
    end = int(time.time() * 1000)
    return {"limit": 500, **params, "startTime": end - minutes * 60_000, "endTime": end}


_S = Param("string")
_REQUIRED = Param("string", required=True)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "ecs",
        "describe_services",
        "ecs:DescribeServices",
        {"cluster": _REQUIRED, "services": Param("strings", required=True, max_items=10)},
    ),
    Operation(
        "ecs",
        "list_tasks",
        "ecs:ListTasks",
        {
            "cluster": _REQUIRED,
            "serviceName": _S,
            "desiredStatus": Param("string", choices=("RUNNING", "PENDING", "STOPPED")),
        },
        fixed={"maxResults": 50},
    ),
    Operation(
        "ecs",
        "describe_tasks",
        "ecs:DescribeTasks",
        {"cluster": _REQUIRED, "tasks": Param("strings", required=True, max_items=20)},
    ),
    Operation(
        "ecs",
        "describe_task_definition",
        "ecs:DescribeTaskDefinition",
        {"taskDefinition": _REQUIRED},
    ),
    Operation(
        "ec2",
        "describe_instances",
        "ec2:DescribeInstances",
        {"InstanceIds": Param("strings", required=True, max_items=20)},
    ),
    Operation(
        "ec2",
        "describe_instance_status",
        "ec2:DescribeInstanceStatus",
        {
            "InstanceIds": Param("strings", required=True, max_items=20),
            "IncludeAllInstances": Param("boolean"),
        },
    ),
    Operation(
        "elbv2",
        "describe_target_groups",
        "elasticloadbalancing:DescribeTargetGroups",
        {"Names": Param("strings", max_items=10), "LoadBalancerArn": _S},
    ),
    Operation(
        "elbv2",
        "describe_target_health",
        "elasticloadbalancing:DescribeTargetHealth",
        {"TargetGroupArn": _REQUIRED},
    ),
    Operation(
        "rds",
        "describe_db_instances",
        "rds:DescribeDBInstances",
        {"DBInstanceIdentifier": _REQUIRED},
    ),
    Operation(
        "rds",
        "describe_events",
        "rds:DescribeEvents",
        {
            "SourceIdentifier": _S,
            "SourceType": Param(
                "string", choices=("db-instance", "db-cluster", "db-parameter-group")
            ),
            "Duration": Param("integer", minimum=1, maximum=10080),
        },
        fixed={"MaxRecords": 50},
    ),
    Operation(
        "lambda",
        "get_function_configuration",
        "lambda:GetFunctionConfiguration",
        {"FunctionName": _REQUIRED},
    ),
    Operation(
        "lambda",
        "get_function_concurrency",
        "lambda:GetFunctionConcurrency",
        {"FunctionName": _REQUIRED},
    ),
    Operation("lambda", "get_account_settings", "lambda:GetAccountSettings", {}),
    Operation(
        "autoscaling",
        "describe_scaling_activities",
        "autoscaling:DescribeScalingActivities",
        {"AutoScalingGroupName": _REQUIRED},
        fixed={"MaxRecords": 20},
    ),
    Operation(
        "logs",
        "filter_log_events",
        "logs:FilterLogEvents",
        {
            "logGroupName": _REQUIRED,
            "logStreamNames": Param("strings", max_items=5),
            "filterPattern": _S,
            "minutes": Param("integer", minimum=1, maximum=LOG_WINDOW_MINUTES),
            "limit": Param("integer", minimum=1, maximum=1000),
        },
        prepare=_log_window,
    ),
)
ALLOWED: dict[tuple[str, str], Operation] = {(op.service, op.name): op for op in OPERATIONS}


def parameters_schema() -> dict[str, Any]:
    """`aws_describe`'s `parameters` as a closed JSON-schema object: every parameter name the
    allowlist knows, typed (a provider such as Gemini refuses an object without properties)."""
    kinds: dict[str, dict[str, Any]] = {
        "string": {"type": "string"},
        "strings": {"type": "array", "items": {"type": "string"}},
        "integer": {"type": "integer"},
        "boolean": {"type": "boolean"},
    }
    properties: dict[str, Any] = {}
    for op in OPERATIONS:
        for name, spec in op.params.items():
            if properties.setdefault(name, kinds[spec.kind]) != kinds[spec.kind]:
                raise ValueError(f"{name} has two kinds in the AWS allowlist")
    return {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "description": "The operation's parameters (AWS API names); each operation takes only "
        "its own.",
    }


def allowed_labels() -> str:
    return ", ".join(op.label for op in OPERATIONS)


def lookup(service: str, operation: str) -> Operation:
    """The allowlisted operation, or NotAllowed naming the refused pair and the allowed ones."""
    op = ALLOWED.get((service.strip().lower(), operation.strip()))
    if op is None:
        shown = f"{service[:40]} {operation[:60]}"
        raise NotAllowed(
            f"{shown!r} is not on the read-only AWS allowlist (allowed: {allowed_labels()})"
        )
    return op


def checked(op: Operation, params: Mapping[str, Any]) -> dict[str, Any]:
    """The call's parameters: only those `op` allows, of their kind and within their bounds."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        spec = op.params.get(key)
        if spec is None:
            allowed = ", ".join(op.params) or "none"
            raise NotAllowed(f"{op.label} does not take {key[:60]!r} (allowed: {allowed})")
        out[key] = _value(op, key, spec, value)
    missing = [k for k, spec in op.params.items() if spec.required and k not in out]
    if missing:
        raise NotAllowed(f"{op.label} needs {', '.join(missing)}")
    out = op.prepare(out) if op.prepare else out
    return {**out, **op.fixed}


def _value(op: Operation, key: str, spec: Param, value: Any) -> Any:
    where = f"{op.label} {key}"
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise NotAllowed(f"{where} must be true or false")
        return value
    if spec.kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            raise NotAllowed(f"{where} must be an integer")
        if not spec.minimum <= value <= spec.maximum:
            raise NotAllowed(f"{where} must be within {spec.minimum}..{spec.maximum}")
        return value
    if spec.kind == "strings":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise NotAllowed(f"{where} must be a list of strings")
        if not 1 <= len(items) <= spec.max_items:
            raise NotAllowed(f"{where} takes 1 to {spec.max_items} items")
        return [_text(where, v) for v in items]
    if not isinstance(value, str):
        raise NotAllowed(f"{where} must be a string")
    if spec.choices and value not in spec.choices:
        raise NotAllowed(f"{where} must be one of {', '.join(spec.choices)}")
    return _text(where, value)


def _text(where: str, value: str) -> str:
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise NotAllowed(f"{where} must be 1 to {MAX_TEXT} printable characters")
    return value


def scrub(value: Any) -> Any:
    """An AWS response without what a look-up never needs and a secret could hide in: request
    metadata and paging tokens dropped, the values of secret-named environment variables
    (ECS `environment` name/value pairs, Lambda `Environment.Variables`) hidden. Text-level
    credential masking follows in the toolbox, on everything."""
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if not isinstance(value, dict):
        return value
    name = value.get("name", value.get("Name"))
    if isinstance(name, str) and set(value) <= {"name", "value", "Name", "Value"}:
        if is_secret_name(name):
            return {k: (HIDDEN if k.lower() == "value" else v) for k, v in value.items()}
        return dict(value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in ("ResponseMetadata", "NextToken", "nextToken", "Marker"):
            continue
        if key == "Variables" and isinstance(item, dict):
            out[key] = {k: HIDDEN if is_secret_name(str(k)) else v for k, v in item.items()}
        else:
            out[key] = scrub(item)
    return out
