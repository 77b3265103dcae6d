"""AWS fixtures for the aws_* check tests: one moto server per session, reset before each test.

Test modules load them with `pytest_plugins = ["tests.peers.aws_fixtures"]`. boto3 finds the
server through AWS_ENDPOINT_URL, exactly as it would find a real endpoint override.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.peers.aws import REGION, SETUP_TIMEOUT_S, Aws


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


WARM_SERVICES = ("cloudwatch", "ecs", "rds", "logs", "sts")


@pytest.fixture(scope="session")
def botocore_models() -> None:
    """Load the service models the checks use into the checks' shared botocore loader, once per
    process. A check's timeout covers building its client; the first build reads megabytes of
    JSON, which on a loaded machine (parallel workers) alone can outlast a 1-2 s timeout — a
    cost the daemon pays once at start, not the behaviour under test."""
    from jobs.aws.api import session

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        aws = session(None, REGION)
        for service in WARM_SERVICES:
            aws.client(service, endpoint_url="http://127.0.0.1:9")


@pytest.fixture
def aws(
    moto_endpoint: str, botocore_models: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Aws]:
    """A clean moto, fake credentials, and no way to read the developer's ~/.aws or IMDS."""
    httpx.post(f"{moto_endpoint}/moto-api/reset", timeout=SETUP_TIMEOUT_S).raise_for_status()
    config, credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    config.write_text("")
    credentials.write_text("")
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws = Aws(moto_endpoint)
    yield aws
    aws.enforce_iam(False)
