"""Helpers for the aws_* check tests (their fixtures are in `aws_fixtures.py` beside this):
arranging moto, switching IAM enforcement on, and simulating what moto cannot (DNS failure,
alarm history).
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
from moto.backends import get_backend
from moto.core.responses import ActionResult

REGION = "eu-west-1"
ACCOUNT = "123456789012"
SETUP_TIMEOUT_S = 60.0
"""For moto's own admin calls (reset, recorder): resetting every backend takes seconds on a
loaded machine, and it is the tests' setup, not what they measure."""
"""moto's default account id."""


@dataclass
class Aws:
    endpoint: str
    region: str = REGION

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for arranging a test (not the one the check under test uses)."""
        return boto3.client(service, region_name=self.region, **kwargs)

    def backend(self, service: str) -> Any:
        """moto's in-process model, for states its API cannot produce (an ECS service event,
        a failed rollout); the check still reads them through the real wire protocol."""
        return get_backend(service)[ACCOUNT][self.region]  # type: ignore[call-overload]

    def enforce_iam(self, on: bool) -> None:
        """moto checks signatures and IAM policies from now on (or stops checking)."""
        body = b"0" if on else b"inf"
        httpx.post(
            f"{self.endpoint}/moto-api/reset-auth", content=body, timeout=SETUP_TIMEOUT_S
        ).raise_for_status()


def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def restricted_user(aws: Aws, monkeypatch: pytest.MonkeyPatch, allow: list[str]) -> None:
    """Switch to an IAM user allowed only `allow`, with moto enforcing IAM from now on."""
    iam = aws.client("iam")
    iam.create_user(UserName="watchkeeper")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": allow, "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName="watchkeeper", PolicyName="read", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="watchkeeper")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    aws.enforce_iam(True)


def unresolvable_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS answers NXDOMAIN for every non-loopback name, as it does for a made-up region."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("localhost", "127.0.0.1", "::1"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def add_alarm_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5 has no DescribeAlarmHistory: answer it from the state changes moto records,
    through moto's own serializer, so the check still speaks the real protocol."""
    from moto.cloudwatch.responses import CloudWatchResponse

    def describe_alarm_history(self: Any) -> ActionResult:
        alarm = self.cloudwatch_backend.alarms[self._get_param("AlarmName")]
        current = (
            "StateUpdate",
            alarm.state_reason,
            "{}",
            alarm.state_value,
            alarm.state_updated_timestamp,
        )
        items = []
        for _, reason, _, state, when in reversed([*alarm.history, current]):
            items.append(
                {
                    "AlarmName": alarm.name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": when,
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": f"Alarm updated to {state}: {reason}",
                }
            )
        limit = int(self._get_param("MaxRecords") or 100)
        return ActionResult({"AlarmHistoryItems": items[:limit]})

    monkeypatch.setattr(
        CloudWatchResponse, "describe_alarm_history", describe_alarm_history, raising=False
    )


def put_log(aws: Aws, group: str, messages: list[str], *, stream: str = "app/1") -> None:
    """A CloudWatch Logs group with one stream holding `messages`, a millisecond apart and
    ending a few minutes ago (within any look-back window)."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(minutes_ago(4).timestamp() * 1000)
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def add_mfa_delete(monkeypatch: pytest.MonkeyPatch, buckets: set[str]) -> None:
    """moto 5 drops PutBucketVersioning's MFADelete (it needs the root user's MFA device):
    answer GetBucketVersioning with `MFADelete: Enabled` for `buckets`, through moto's own
    serializer, so the rule still reads it over the wire."""
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self: Any) -> Any:
        result = {"Status": self.backend.get_bucket_versioning(self.bucket_name)}
        if self.bucket_name in buckets:
            result["MFADelete"] = "Enabled"
        self.data["Action"] = "GetBucketVersioning"
        return self.serialized(ActionResult(result))

    monkeypatch.setattr(S3Response, "get_bucket_versioning", get_bucket_versioning)


class RequestLog:
    """moto's own request recorder, switched on for one test: every API request the server
    received, as `Action` names (query protocol), `X-Amz-Target` operations (JSON protocol) or
    `METHOD path` (REST), so a test can assert what reached AWS — and what never did."""

    def __init__(self, aws: Aws, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
        from moto.moto_api import recorder

        monkeypatch.setattr(recorder, "_location", path)
        self.endpoint = aws.endpoint
        httpx.post(
            f"{self.endpoint}/moto-api/recorder/reset-recording", timeout=SETUP_TIMEOUT_S
        ).raise_for_status()
        httpx.post(f"{self.endpoint}/moto-api/recorder/start-recording").raise_for_status()

    def stop(self) -> None:
        httpx.post(f"{self.endpoint}/moto-api/recorder/stop-recording").raise_for_status()

    def _entries(self) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.endpoint}/moto-api/recorder/download-recording")
        reply.raise_for_status()
        return [json.loads(line) for line in reply.text.splitlines()]

    def regions(self) -> list[str]:
        """The region each request was signed for (its SigV4 credential scope)."""
        scopes = (e["headers"].get("Authorization", "") for e in self._entries())
        return [s.split("Credential=", 1)[-1].split("/")[2] for s in scopes]

    def operations(self) -> list[str]:
        import base64
        from urllib.parse import parse_qs, urlsplit

        found = []
        for entry in self._entries():
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            action = parse_qs(body).get("Action") or parse_qs(urlsplit(entry["url"]).query).get(
                "Action"
            )
            if "x-amz-target" in headers:
                found.append(headers["x-amz-target"].rsplit(".", 1)[-1])
            elif action:
                found.append(action[0])
            else:
                found.append(f"{entry['method']} {urlsplit(entry['url']).path}")
        return found
