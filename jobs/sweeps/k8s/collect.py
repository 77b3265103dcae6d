"""The Kubernetes collector of the sweeps: each list fetched once per sweep per context through
`SweepContext.collect`, with the client, calls and error sentences of jobs.kubernetes.api.

`kubernetes` is imported only inside functions, Secret objects are never read, and every
expected API failure becomes a `CollectError` carrying the check's own sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from jobs.kubernetes.api import (
    Caller,
    PodUsage,
    Target,
    cached_client,
    cluster_list_call,
    current_context,
    default_kubeconfig,
    expand_paths,
    list_calls,
    pod_usage,
)
from jobs.kubernetes.errors import KubernetesError
from jobs.sweeps.base import CollectError, KubernetesScope, SweepContext

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def _scope(ctx: SweepContext) -> KubernetesScope:
    return ctx.kubernetes or KubernetesScope()


def _target(ctx: SweepContext, context: str | None) -> Target:
    return Target(expand_paths(_scope(ctx).kubeconfig or default_kubeconfig()), context, False)


async def contexts(ctx: SweepContext) -> tuple[str, ...]:
    """The contexts to sweep: the scope's, else the kubeconfig's current-context by name."""
    if _scope(ctx).contexts:
        return _scope(ctx).contexts

    async def current() -> tuple[str, ...]:
        path = _target(ctx, None).kubeconfig
        async with _as_collect_error(ctx, None, None):
            name, api = await asyncio.to_thread(current_context, path)
        ctx.check.clients.setdefault(_target(ctx, name).cache_key, api)
        return (name,)

    found: tuple[str, ...] = await ctx.collect("k8s:contexts", current)
    return found


async def _caller(ctx: SweepContext, context: str) -> Caller:
    """A caller on the client for `context` the `kubernetes` check would use (shared through
    ctx.check.clients, so kept across sweeps)."""

    async def build() -> ApiClient:
        async with _as_collect_error(ctx, context, None):
            return await cached_client(ctx.check.clients, _target(ctx, context))

    api: ApiClient = await ctx.collect(f"k8s:{context}:client", build)
    return Caller(api, ctx.timeout_s, in_cluster=False)


@asynccontextmanager
async def _as_collect_error(
    ctx: SweepContext, context: str | None, caller: Caller | None
) -> AsyncIterator[None]:
    """Expected API failures, timeouts included, as a CollectError naming the context."""
    prefix = f"context {context}: " if context else ""
    try:
        async with asyncio.timeout(ctx.timeout_s):
            yield
    except TimeoutError as exc:
        waited = f"the kubeconfig did not load within {ctx.timeout_s:g} s"
        message = caller.timeout_message() if caller else waited
        raise CollectError(prefix + message) from exc
    except KubernetesError as exc:
        if exc.stale_client and context:
            ctx.check.clients.pop(_target(ctx, context).cache_key, None)
        raise CollectError(prefix + exc.message) from exc


async def dataset(ctx: SweepContext, context: str, resource: str) -> list[Any]:
    """Every object of one resource (`pods`, `deployments` …) in the scope's namespaces, as
    the client's typed models."""

    async def fetch() -> list[Any]:
        caller = await _caller(ctx, context)  # fails with the install hint without the client
        async with _as_collect_error(ctx, context, caller):
            pages = await asyncio.gather(*list_calls(caller, resource, _scope(ctx).namespaces))
        return [item for page in pages for item in page]

    items: list[Any] = await ctx.collect(f"k8s:{context}:{resource}", fetch)
    return items


async def cluster_dataset(ctx: SweepContext, context: str, resource: str) -> list[Any]:
    """Every object of a cluster-scoped resource (`nodes`, `namespaces`, `clusterroles`,
    `clusterrolebindings`), whatever namespaces the scope names: they belong to no namespace."""

    async def fetch() -> list[Any]:
        caller = await _caller(ctx, context)
        async with _as_collect_error(ctx, context, caller):
            items: list[Any] = await cluster_list_call(caller, resource)
        return items

    items: list[Any] = await ctx.collect(f"k8s:{context}:{resource}", fetch)
    return items


async def pod_metrics(ctx: SweepContext, context: str) -> list[PodUsage]:
    """Current pod usage from metrics.k8s.io: one sample, as `kubectl top pods` shows it."""

    async def fetch() -> list[PodUsage]:
        caller = await _caller(ctx, context)
        async with _as_collect_error(ctx, context, caller):
            return await pod_usage(caller, _scope(ctx).namespaces)

    found: list[PodUsage] = await ctx.collect(f"k8s:{context}:pod_metrics", fetch)
    return found
