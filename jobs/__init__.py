"""What is watched: one module per check type (`jobs.kubernetes`, `jobs.aws` share one
client each), and the nightly sweeps' rules (`jobs.sweeps`).

Imports only `daemon.models`, `daemon.util` and `daemon.errors` of the engine. The registry maps
a `type` to "module:Class", so a check type's module (and its client library) loads only when
a config uses that type; `watchkeeper --help` imports none of them.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.base import CheckSpec

CHECK_TYPES: dict[str, str] = {
    "http": "jobs.http:HttpCheck",
    "tcp": "jobs.tcp:TcpCheck",
    "tls": "jobs.tls:TlsCheck",
    "dns": "jobs.dns:DnsCheck",
    "ping": "jobs.ping:PingCheck",
    "command": "jobs.command:CommandCheck",
    "prometheus": "jobs.prometheus:PrometheusCheck",
    "alertmanager": "jobs.alertmanager:AlertmanagerCheck",
    "kubernetes": "jobs.kubernetes.check:KubernetesCheck",
    "aws_cloudwatch": "jobs.aws.cloudwatch:CloudWatchCheck",
    "aws_rds": "jobs.aws.rds:RdsCheck",
    "aws_ecs": "jobs.aws.ecs:EcsCheck",
    "heartbeat": "jobs.heartbeat:HeartbeatCheck",
}


@cache
def load_check_class(type_name: str) -> type[CheckSpec]:
    module_name, _, class_name = CHECK_TYPES[type_name].partition(":")
    cls: type[CheckSpec] = getattr(importlib.import_module(module_name), class_name)
    return cls
