"""jobs.aws.api sessions: one botocore data loader per process, while everything a user can
change between two clients (credentials, profile, region, endpoint) is read for each client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from jobs.aws.api import AwsApi, session
from jobs.base import CheckContext
from tests.peers.aws import REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures"]


def loader(profile: str | None = None, region: str | None = None) -> object:
    return session(profile, region)._session.get_component("data_loader")


def test_sessions_share_one_loader_whose_search_paths_do_not_grow(aws: Aws) -> None:
    first = loader()
    paths = list(first.search_paths)  # type: ignore[attr-defined]
    for _ in range(3):
        assert loader(region="us-east-1") is first
    assert first.search_paths == paths  # type: ignore[attr-defined]


def test_another_data_path_gets_its_own_loader(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    default = loader()
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    custom = loader()
    assert custom is not default
    assert str(tmp_path) in custom.search_paths  # type: ignore[attr-defined]


async def test_endpoint_region_and_credentials_are_read_for_each_client(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def build() -> tuple[str, str, str]:
        async with httpx.AsyncClient() as http:
            api = AwsApi(CheckContext(http=http), region=None, profile=None, timeout_s=5)
            client = await api.client("sts")
            key = client._request_signer._credentials.access_key
            return client.meta.endpoint_url, client.meta.region_name, key

    assert await build() == (aws.endpoint, REGION, "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")
    assert await build() == ("http://127.0.0.1:9", "ap-south-1", "rotated")


async def test_profile_is_read_for_each_client(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "profiles"
    config.write_text("[profile audit]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over the profile's region
    async with httpx.AsyncClient() as http:
        api = AwsApi(CheckContext(http=http), region=None, profile="audit", timeout_s=5)
        client = await api.client("sts")
    assert client.meta.region_name == "ca-central-1"
