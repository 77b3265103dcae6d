"""What is watched: check types (and, later, nightly sweeps), registered by name.

The registry maps a `type` to "module:Class" so heavy clients load only when a check of that
type is configured; `watchkeeper --help` imports none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.base import CheckSpec

CHECK_TYPES: dict[str, str] = {
    "http": "jobs.http:HttpCheck",
    "tcp": "jobs.tcp:TcpCheck",
    "tls": "jobs.tls:TlsCheck",
    "dns": "jobs.dns:DnsCheck",
    "command": "jobs.command:CommandCheck",
    "prometheus": "jobs.prometheus:PrometheusCheck",
    "alertmanager": "jobs.alertmanager:AlertmanagerCheck",
    "kubernetes": "jobs.kubernetes:KubernetesCheck",
    "aws_cloudwatch": "jobs.aws_cloudwatch:CloudWatchCheck",
    "aws_rds": "jobs.aws_rds:RdsCheck",
    "aws_ecs": "jobs.aws_ecs:EcsCheck",
}


def load_check_class(type_name: str) -> type[CheckSpec]:
    module_name, _, class_name = CHECK_TYPES[type_name].partition(":")
    cls: type[CheckSpec] = getattr(importlib.import_module(module_name), class_name)
    return cls


def all_check_classes() -> dict[str, type[CheckSpec]]:
    return {name: load_check_class(name) for name in CHECK_TYPES}
