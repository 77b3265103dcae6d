"""Remembered modes: start each call at the structured-output and tool mode its provider+model
last took, and remember what a call found refused.

The provider module steps down on a clear refusal within one call (`Provider.complete`); this
module keeps the outcome in the store (`model_capabilities`) so the next call does not pay the
refused attempt again, until the entry is a day old and the strongest mode is tried anew.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog

from daemon.llm.types import (
    STRUCTURED_MODES,
    TOOL_MODES,
    ModelRequest,
    ModelResponse,
    StructuredMode,
    ToolMode,
)
from daemon.models import ModelRef
from daemon.store import Store
from daemon.store.database import store_io

log = structlog.get_logger(__name__)


async def known(store: Store, ref: ModelRef, request: ModelRequest, now: datetime) -> ModelRequest:
    """`request` starting at the modes remembered for `ref` (unchanged when none are)."""
    if request.output is not None:
        mode = await store_io(
            store.capabilities.mode, ref.provider, ref.model, "structured", now=now
        )
        if mode in STRUCTURED_MODES:
            structured: StructuredMode = STRUCTURED_MODES[STRUCTURED_MODES.index(mode)]
            request = replace(request, structured_mode=structured)
    if request.tools:
        mode = await store_io(store.capabilities.mode, ref.provider, ref.model, "tools", now=now)
        if mode in TOOL_MODES:
            tools: ToolMode = TOOL_MODES[TOOL_MODES.index(mode)]
            request = replace(request, tool_mode=tools)
    return request


async def learn(
    store: Store,
    ref: ModelRef,
    started: ModelRequest,
    response: ModelResponse | None,
    refused: tuple[str, ...],
    now: datetime,
) -> None:
    """Remember the modes a call ended on: always after a refusal; otherwise only when nothing
    fresh was known (so a model that takes the strongest mode costs one write a day)."""
    worked: dict[str, str] = {}
    if response is not None:
        if response.structured_mode is not None:
            worked["structured"] = response.structured_mode
        if response.tool_mode is not None:
            worked["tools"] = response.tool_mode
    else:  # the call failed after stepping down: the mode below the last refused one
        for item in refused:
            feature, _, mode = item.partition(":")
            modes: tuple[str, ...] = STRUCTURED_MODES if feature == "structured" else TOOL_MODES
            if mode in modes and modes.index(mode) + 1 < len(modes):
                worked[feature] = modes[modes.index(mode) + 1]
    for feature, mode in worked.items():
        detail = ", ".join(r for r in refused if r.startswith(feature + ":"))
        fresh = await store_io(store.capabilities.mode, ref.provider, ref.model, feature, now=now)
        if detail or fresh is None:
            await store_io(
                store.capabilities.remember,
                ref.provider,
                ref.model,
                feature,
                mode,
                detail=f"refused {detail}" if detail else "",
                now=now,
            )
            if detail:
                log.info("model mode stepped down", model=str(ref), feature=feature, mode=mode)
