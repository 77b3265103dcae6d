"""Shared plumbing for the AWS check types: cached boto3 clients with bounded retries, and the
one place that turns botocore's exceptions into sentences a person can act on.

boto3 and botocore are imported inside functions only: `watchkeeper config validate` imports
every check class and must never load them. boto3 is blocking, so every call runs in a thread.
Sessions share one botocore data loader per process (service models are parsed once), while
credentials, profile, region and endpoint are still read for every client, as boto3 does.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import itertools
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import Field

from daemon.models import CheckResult, ContextBlock
from daemon.util.text import clip
from jobs._net_errors import root_reason
from jobs.base import CheckContext, CheckSpec

T = TypeVar("T")

MAX_ATTEMPTS = 5
MAX_PAGES = 50  # per paginated call: bounds one run's API traffic in a huge account
QUOTE_CHARS = 300  # of AWS text (errors, events, alarm reasons) quoted in evidence
RCA_SUBJECTS = 5  # failing alarms / instances / services that get root-cause context

THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
    | {"RequestThrottled", "RequestThrottledException"}
)
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
BAD_CREDENTIALS = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
    | {"AuthFailure", "InvalidAccessKeyId", "IncompleteSignature"}
)


class AwsError(Exception):
    """AWS could not be asked, or refused to answer; the message is the evidence."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # when AWS answered with one, e.g. ClusterNotFoundException


def _modules() -> tuple[Any, Any, Any]:
    """boto3, botocore.config and botocore.exceptions, loaded on first use."""
    try:
        return (
            importlib.import_module("boto3"),
            importlib.import_module("botocore.config"),
            importlib.import_module("botocore.exceptions"),
        )
    except ImportError as exc:
        raise AwsError(
            "boto3 is not installed: install it: pip install 'watchkeeper[aws]'"
        ) from exc


class _SearchPaths(list[str]):
    """A loader's search paths: every boto3 Session appends boto3's own data directory to its
    loader's, which would grow a shared loader's list by one entry per client built."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def _shared_loader(data_path: str | None) -> Any:
    """The process's botocore data loader for this AWS_DATA_PATH (as botocore's create_loader
    builds it): it caches every service model it parses, which is most of a client's setup."""
    loaders = importlib.import_module("botocore.loaders")
    with _LOADERS_LOCK:
        if data_path not in _LOADERS:
            extra = [
                os.path.expanduser(os.path.expandvars(p))
                for p in (data_path or "").split(os.pathsep)
                if p
            ]
            _LOADERS[data_path] = loaders.Loader(extra_search_paths=_SearchPaths(extra))
        return _LOADERS[data_path]


def session(profile: str | None, region: str | None) -> Any:
    """A new boto3 Session (which reads the environment and AWS config files now, as a fresh
    one always does) whose data loader is the shared one."""
    boto3 = importlib.import_module("boto3")
    core = importlib.import_module("botocore.session").Session()
    # Lazy: boto3 asks for the loader after applying the profile, whose data_path may differ.
    core.lazy_register_component(
        "data_loader", lambda: _shared_loader(core.get_config_variable("data_path"))
    )
    return boto3.session.Session(botocore_session=core, profile_name=profile, region_name=region)


def retry_attempts(timeout_s: float) -> int:
    """Attempts whose worst-case backoff (standard mode sleeps up to 1, 2, 4 … s before the
    2nd, 3rd, 4th …) fits in half the check's timeout, leaving the rest for the requests."""
    return max(1, min(MAX_ATTEMPTS, 1 + math.floor(math.log2(timeout_s / 2 + 1))))


def clock(when: datetime, now: datetime) -> str:
    """`14:02 UTC` today, `2026-03-01 14:02 UTC` otherwise."""
    when, now = when.astimezone(UTC), now.astimezone(UTC)
    return when.strftime("%H:%M UTC" if when.date() == now.date() else "%Y-%m-%d %H:%M UTC")


class AwsApi:
    """boto3 clients for one check's profile and region, called off the event loop."""

    def __init__(
        self, ctx: CheckContext, *, region: str | None, profile: str | None, timeout_s: float
    ) -> None:
        self._ctx = ctx
        self.region = region
        self.profile = profile
        self.timeout_s = timeout_s
        self.attempts = retry_attempts(timeout_s)
        self.action = "the AWS session"  # the call in flight, named in timeout evidence
        self.endpoint = ""
        self.region_name = region or ""  # the region in use, once a client exists

    @property
    def tries(self) -> str:
        return f"{self.attempts} attempt{'s' if self.attempts > 1 else ''}"

    @property
    def who(self) -> str:
        return f"profile {self.profile}" if self.profile else "the default profile"

    def _key(self, service: str) -> str:
        # The timeout is part of the key: it is baked into the client's botocore Config.
        return f"aws:{self.profile or ''}:{self.region or ''}:{service}:{self.timeout_s:g}s"

    async def client(self, service: str) -> Any:
        """The cached client for `service`, built on first use (in a thread: it reads files)."""
        key = self._key(service)
        client = self._ctx.clients.get(key)
        if client is None:
            self.action = f"{service} client setup"
            client = self._ctx.clients.setdefault(
                key, await asyncio.to_thread(self._build, service)
            )
        self.endpoint = client.meta.endpoint_url
        self.region_name = client.meta.region_name
        return client

    def _build(self, service: str) -> Any:
        _, config, errors = _modules()
        # botocore reads AWS_DEFAULT_REGION and the profile, but not AWS_REGION (the CLI does).
        region = self.region or os.environ.get("AWS_REGION") or None
        try:
            aws = session(self.profile, region)
            if not aws.region_name:
                raise AwsError(
                    f'no AWS region for {service}: set region = "eu-west-1" (for example) '
                    f"in the check, or AWS_REGION / AWS_DEFAULT_REGION, or a region in "
                    f"{self.who} of the AWS config file"
                )
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts every try.
            retries = {"mode": "standard", "total_max_attempts": self.attempts}
            settings = config.Config(
                retries=retries,
                connect_timeout=min(5.0, self.timeout_s),
                read_timeout=self.timeout_s,
                user_agent_extra="watchkeeper",
            )
            return aws.client(service, config=settings)
        except errors.ProfileNotFound as exc:
            raise AwsError(
                f"AWS profile {self.profile or os.environ.get('AWS_PROFILE')} is not in the AWS "
                "config or credentials file: create it (aws configure --profile NAME) or fix "
                "profile in the check"
            ) from exc
        except errors.InvalidRegionError as exc:
            raise AwsError(f"{region!r} is not an AWS region name (like eu-west-1)") from exc
        except errors.BotoCoreError as exc:
            raise AwsError(
                f"cannot set up the AWS {service} client: {clip(str(exc), QUOTE_CHARS)}"
            ) from exc

    async def call(self, service: str, method: str, **params: Any) -> dict[str, Any]:
        client = await self.client(service)
        bound = functools.partial(getattr(client, method), **params)
        response: dict[str, Any] = await self._run(client, service, method, bound)
        return response

    async def pages(self, service: str, method: str, **params: Any) -> list[dict[str, Any]]:
        """Every page of a paginated call (at most MAX_PAGES)."""
        client = await self.client(service)

        def collect() -> list[dict[str, Any]]:
            pages = client.get_paginator(method).paginate(**params)
            return list(itertools.islice(pages, MAX_PAGES))

        return await self._run(client, service, method, collect)

    async def _run(self, client: Any, service: str, method: str, fn: Callable[[], T]) -> T:
        action = f"{service}:{client.meta.method_to_api_mapping.get(method, method)}"
        self.action = action

        def guarded() -> T:
            _, _, errors = _modules()
            try:
                return fn()
            except (errors.BotoCoreError, errors.ClientError) as exc:
                if isinstance(exc, errors.NoCredentialsError):
                    # Built without credentials: rebuild next run, after someone fixes them.
                    self._ctx.clients.pop(self._key(service), None)
                raise AwsError(self.explain(exc, service, action, client), _code(exc)) from exc

        return await asyncio.to_thread(guarded)

    def explain(self, exc: Exception, service: str, action: str, client: Any) -> str:
        """One sentence naming what failed and what to do about it."""
        _, _, errors = _modules()
        endpoint = client.meta.endpoint_url
        if isinstance(exc, errors.NoCredentialsError):
            return (
                f"no AWS credentials found for {self.who}: configure them (aws configure / "
                "aws sso login / an instance role) or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, errors.SSOError | errors.TokenRetrievalError):
            login = f"aws sso login{f' --profile {self.profile}' if self.profile else ''}"
            return (
                f"the AWS SSO session for {self.who} has expired or is missing: run {login} "
                f"({clip(str(exc), QUOTE_CHARS)})"
            )
        if isinstance(exc, errors.ClientError):
            return self._explain_code(exc, action)
        if isinstance(exc, errors.ConnectTimeoutError):
            return f"connecting to the AWS endpoint {endpoint} for {action} timed out"
        if isinstance(exc, errors.EndpointConnectionError):
            region = client.meta.region_name
            on_aws = ".amazonaws.com" in endpoint or ".api.aws" in endpoint
            if on_aws and not _known_region(service, region):
                return (
                    f"unknown AWS region {region!r}: {action} has no endpoint there "
                    f"({endpoint} is unreachable); fix region in the check or AWS_REGION"
                )
            reason = root_reason(exc) or "connection failed"
            return f"cannot reach the AWS endpoint {endpoint} for {action}: {reason}"
        if isinstance(exc, errors.ReadTimeoutError):
            return f"{action} at {endpoint} did not answer within {self.timeout_s:g} s"
        return f"{action} failed: {clip(str(exc), QUOTE_CHARS)}"

    def _explain_code(self, exc: Any, action: str) -> str:
        code = _code(exc) or "error"
        message = clip(str(exc.response.get("Error", {}).get("Message", "")), QUOTE_CHARS)
        if code in ACCESS_DENIED:
            return f"{code} on {action}: grant it to the role or user of {self.who} ({message})"
        if code in EXPIRED:
            login = f"aws sso login{f' --profile {self.profile}' if self.profile else ''}"
            return (
                f"the AWS credentials of {self.who} have expired ({code}): refresh them "
                f"({login}, or new temporary credentials)"
            )
        if code in BAD_CREDENTIALS:
            return f"AWS rejected the credentials of {self.who} on {action}: {code}: {message}"
        if code in THROTTLING:
            return (
                f"AWS kept throttling {action} ({code}) through {self.tries} within "
                f"the {self.timeout_s:g} s timeout: run the check less often, or ask AWS for a "
                "higher API rate limit"
            )
        return f"{action} failed: {code}: {message}"

    def timeout_evidence(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return (
            f"{self.action}{where} did not complete within the check's {self.timeout_s:g} s "
            f"timeout ({self.tries} allowed per call)"
        )


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code) if code else None


def _known_region(service: str, region: str) -> bool:
    _, _, errors = _modules()
    try:
        aws = session(None, None)
        partitions = aws.get_available_partitions()
        return any(region in aws.get_available_regions(service, p) for p in partitions)
    except errors.BotoCoreError:  # cannot tell: do not claim the region is wrong
        return True


class AwsCheck(CheckSpec):
    """Options every AWS check shares, and the run loop: one deadline, errors as results."""

    region: str | None = Field(
        default=None,
        description="AWS region, e.g. 'eu-west-1'. Default: AWS_REGION, AWS_DEFAULT_REGION, "
        "or the profile's region.",
    )
    profile: str | None = Field(
        default=None,
        description="Named profile from ~/.aws/config (SSO, assume-role …). Default: the "
        "standard chain (environment, default profile, instance or task role).",
    )

    def api(self, ctx: CheckContext) -> AwsApi:
        seconds = self.timeout.total_seconds()
        return AwsApi(ctx, region=self.region, profile=self.profile, timeout_s=seconds)

    async def inspect(self, api: AwsApi, now: datetime) -> list[CheckResult]:
        raise NotImplementedError

    async def context_for(
        self, api: AwsApi, subjects: list[str], now: datetime
    ) -> list[ContextBlock]:
        return []

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        api = self.api(ctx)
        try:
            async with asyncio.timeout(api.timeout_s):
                results = await self.inspect(api, started_at)
        except (AwsError, TimeoutError) as exc:
            evidence = str(exc) if isinstance(exc, AwsError) else api.timeout_evidence()
            results = [self.result("error", evidence, started_at=started_at)]
        latency = round((time.perf_counter() - t0) * 1000, 1)
        for result in results:
            result.latency_ms = latency
        return results

    async def rca_context(
        self, ctx: CheckContext, results: list[CheckResult]
    ) -> list[ContextBlock]:
        wanted = (r.subject for r in results if r.status in ("failing", "degraded"))
        subjects = list(dict.fromkeys(s for s in wanted if s))[:RCA_SUBJECTS]
        if not subjects:
            return []
        api = self.api(ctx)
        try:
            async with asyncio.timeout(api.timeout_s):
                return await self.context_for(api, subjects, ctx.now())
        except (AwsError, TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, AwsError) else api.timeout_evidence()
            return [ContextBlock(f"{self.type} context unavailable", reason, relevance=10)]
