from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import pytest

from daemon.models import CheckResult
from jobs.aws.ecs import EcsCheck
from jobs.base import CheckContext
from tests.jobs.conftest import StartServer, assert_options_described
from tests.peers.aws import Aws

pytest_plugins = ["tests.peers.aws_fixtures"]

CLOCK = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d UTC"
UNPLACEABLE = (
    "(service checkout) was unable to place a task because no container instance met all of "
    "its requirements."
)


def spec(**options: Any) -> EcsCheck:
    return EcsCheck.model_validate({"name": "ecs", "type": "aws_ecs", "cluster": "prod", **options})


async def check(ctx: CheckContext, **options: Any) -> list[CheckResult]:
    return await spec(**options).run(ctx)


def create_service(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    name: str = "checkout",
    desired: int = 3,
    running: int = 3,
    failed_tasks: int = 0,
) -> None:
    """moto reports MOTO_ECS_SERVICE_RUNNING tasks running (the rest pending) and
    MOTO_ECS_SERVICE_FAILED_TASKS failed tasks in the deployment, read at creation."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", str(running))
    monkeypatch.setenv("MOTO_ECS_SERVICE_FAILED_TASKS", str(failed_tasks))
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family=name, containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}]
    )
    ecs.create_service(cluster="prod", serviceName=name, taskDefinition=name, desiredCount=desired)


def moto_service(aws: Aws, name: str = "checkout") -> Any:
    return aws.backend("ecs").services[f"prod:{name}"]


def test_options_are_described() -> None:
    assert_options_described(EcsCheck)


async def test_service_running_all_desired_tasks_is_ok(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch)
    [result] = await check(ctx, services=["checkout"])
    assert result.status == "ok"
    assert result.evidence == "service checkout in cluster prod: 3 of 3 tasks running"
    assert result.values == {"running": 3, "desired": 3, "pending": 0}


async def test_fewer_running_than_desired_is_failing_with_the_last_event(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch, running=1)
    service = moto_service(aws)
    service.events = [
        {"id": "e1", "createdAt": service.deployments[0]["createdAt"], "message": UNPLACEABLE}
    ]  # moto records no service events itself
    [result] = await check(ctx, services=["checkout"])
    assert result.status == "failing"
    assert result.subject == "checkout"
    assert re.fullmatch(
        rf"service checkout in cluster prod: 1 of 3 tasks running; 2 pending; "
        rf"last event \({CLOCK}\): {re.escape(UNPLACEABLE)}",
        result.evidence,
    )


async def test_failed_rollout_is_failing_with_its_reason(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch)
    deployment = moto_service(aws).deployments[0]
    deployment["rolloutState"] = "FAILED"  # moto has no circuit breaker to get here by itself
    deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
    [result] = await check(ctx, services=["checkout"])
    assert result.status == "failing"
    assert result.evidence == (
        f"service checkout in cluster prod: deployment {deployment['id']} FAILED (ECS "
        "deployment circuit breaker: tasks failed to start.); 3 of 3 tasks running"
    )


async def test_deployment_in_progress_with_failed_tasks_is_failing(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch, running=2, failed_tasks=4)
    [result] = await check(ctx, services=["checkout"])
    deployment_id = moto_service(aws).deployments[0]["id"]
    assert result.status == "failing"
    assert result.evidence == (
        f"service checkout in cluster prod: deployment {deployment_id} in progress with 4 "
        "failed tasks; 2 of 3 tasks running; 1 pending"
    )


async def test_tasks_pending_within_the_grace_period_are_ok(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch)
    moto_service(aws).pending_count = 1  # new tasks pending while the old ones still run
    [result] = await check(ctx, services=["checkout"])
    assert result.status == "ok"
    assert result.evidence == "service checkout in cluster prod: 3 of 3 tasks running; 1 pending"


async def test_tasks_pending_past_the_grace_period_are_degraded(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch)
    moto_service(aws).pending_count = 1
    later = CheckContext(http=ctx.http, now=lambda: ctx.now() + timedelta(minutes=25))
    [result] = await check(later, services=["checkout"], pending_grace="10m")
    assert result.status == "degraded"
    assert re.fullmatch(
        rf"service checkout in cluster prod: 3 of 3 tasks running; 1 pending for 2[45]m "
        rf"\(since {CLOCK}\)",
        result.evidence,
    )


async def test_every_service_in_the_cluster_when_none_listed(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch, name="checkout")
    create_service(aws, monkeypatch, name="cart", running=0, desired=2)
    results = await check(ctx)
    assert sorted((r.subject, r.status) for r in results) == [
        ("cart", "failing"),
        ("checkout", "ok"),
    ]


async def test_listed_service_that_does_not_exist_is_failing(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch)
    results = await check(ctx, services=["checkout", "chekout"])
    assert [(r.subject, r.status) for r in results] == [
        ("checkout", "ok"),
        ("chekout", "failing"),
    ]
    assert results[1].evidence == "service chekout not found in cluster prod"


async def test_missing_cluster_is_failing(aws: Aws, ctx: CheckContext) -> None:
    [result] = await check(ctx, cluster="staging")
    assert result.status == "failing"
    assert result.evidence == "ECS cluster staging not found in eu-west-1"


async def test_rca_context_gives_the_service_events(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_service(aws, monkeypatch, running=1)
    service = moto_service(aws)
    created = service.deployments[0]["createdAt"]
    service.events = [
        {"id": "e2", "createdAt": created, "message": UNPLACEABLE},
        {"id": "e1", "createdAt": created, "message": "(service checkout) has started 3 tasks."},
    ]
    check_spec = spec(services=["checkout"])
    [block] = await check_spec.rca_context(ctx, await check_spec.run(ctx))
    assert block.title == "ECS service events (newest first): checkout"
    lines = block.text.splitlines()
    assert lines[0].endswith(UNPLACEABLE)
    assert lines[1].endswith("(service checkout) has started 3 tasks.")
    assert lines[2].startswith("deployment ecs-svc/")


class ScriptedEcs:
    """An ECS JSON endpoint that answers the first `failures` requests with AWS error
    `error` (HTTP 400, as AWS does for throttling and expired tokens), then succeeds."""

    def __init__(self, failures: int, error: str = "ThrottlingException") -> None:
        self.failures = failures
        self.error = error
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: (\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        self.requests += 1
        if self.requests <= self.failures:
            status = "400 Bad Request"
            body: dict[str, Any] = {"__type": self.error, "message": "Rate exceeded"}
        else:
            status = "200 OK"
            body = {"services": [_service_json()], "failures": []}
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()


def _service_json() -> dict[str, Any]:
    return {
        "serviceName": "checkout",
        "status": "ACTIVE",
        "desiredCount": 2,
        "runningCount": 2,
        "pendingCount": 0,
        "deployments": [],
        "events": [],
    }


async def test_throttling_is_retried_within_the_timeout(
    aws: Aws,
    ctx: CheckContext,
    monkeypatch: pytest.MonkeyPatch,
    start_server: StartServer,
) -> None:
    peer = ScriptedEcs(failures=1)
    port = await start_server(peer.handle)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    [result] = await check(ctx, services=["checkout"], timeout="2s")
    assert result.status == "ok"
    assert result.evidence == "service checkout in cluster prod: 2 of 2 tasks running"
    assert peer.requests == 2


async def test_throttling_past_the_timeout_is_an_error(
    aws: Aws,
    ctx: CheckContext,
    monkeypatch: pytest.MonkeyPatch,
    start_server: StartServer,
) -> None:
    peer = ScriptedEcs(failures=100)
    port = await start_server(peer.handle)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    [result] = await check(ctx, services=["checkout"], timeout="2s")
    assert result.status == "error"
    assert result.evidence.startswith(
        "AWS kept throttling ecs:DescribeServices (ThrottlingException) through 2 attempts "
        "within the 2 s timeout: run the check less often"
    )
    assert peer.requests == 2


async def test_endpoint_that_never_answers_is_an_error_at_the_timeout(
    aws: Aws,
    ctx: CheckContext,
    monkeypatch: pytest.MonkeyPatch,
    start_server: StartServer,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until botocore gives up and closes the connection
        writer.close()

    port = await start_server(silent)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    # Build (and cache) the check's client first: setup asks nothing of the endpoint, and on a
    # busy machine it alone can outlast the 1 s timeout, which would then name the setup.
    ecs = spec(services=["checkout"], timeout="1s")
    await ecs.api(ctx).client("ecs")
    [result] = await ecs.run(ctx)
    assert result.status == "error"
    assert result.evidence == (
        f"ecs:DescribeServices at http://127.0.0.1:{port} did not complete within the check's "
        "1 s timeout (1 attempt allowed per call)"
    )


async def test_expired_token_is_an_error_that_says_to_refresh(
    aws: Aws,
    ctx: CheckContext,
    monkeypatch: pytest.MonkeyPatch,
    start_server: StartServer,
) -> None:
    peer = ScriptedEcs(failures=100, error="ExpiredTokenException")
    port = await start_server(peer.handle)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    [result] = await check(ctx, services=["checkout"])
    assert result.status == "error"
    assert result.evidence == (
        "the AWS credentials of the default profile have expired (ExpiredTokenException): "
        "refresh them (aws sso login, or new temporary credentials)"
    )
    assert peer.requests == 1  # not retried
