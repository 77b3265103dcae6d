"""Remembered modes: start each call at the structured-output, tool and thinking mode its
provider+server+model last took, and remember what a call found refused.

The provider module steps down on a clear refusal within one call (`Provider.complete`); this
module keeps the outcome in the store (`model_capabilities`) so the next call does not pay the
refused attempt again, until the entry is a day old and the strongest mode is tried anew.
Entries are per server (`base_url`): two servers serving one model name accept different
things.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog

from daemon.llm.types import (
    STRUCTURED_MODES,
    THINK_MODES,
    TOOL_MODES,
    ModelRequest,
    ModelResponse,
)
from daemon.models import ModelRef
from daemon.store import Store
from daemon.store.database import store_io

log = structlog.get_logger(__name__)

FEATURE_MODES: dict[str, tuple[str, ...]] = {
    "structured": STRUCTURED_MODES,
    "tools": TOOL_MODES,
    "think": THINK_MODES,
}
"""Each feature's modes, strongest first."""


def _features(request: ModelRequest) -> list[str]:
    """The features `request` uses (only those are looked up and remembered)."""
    used = ["structured"] if request.output is not None else []
    used += ["tools"] if request.tools else []
    return used + (["think"] if request.think is not None else [])


async def known(
    store: Store, ref: ModelRef, request: ModelRequest, now: datetime, base_url: str = ""
) -> ModelRequest:
    """`request` starting at the modes remembered for `ref` at `base_url` (unchanged when
    none are)."""
    for feature in _features(request):
        mode = await store_io(
            store.capabilities.mode, ref.provider, ref.model, feature, base_url=base_url, now=now
        )
        if mode not in FEATURE_MODES[feature]:
            continue
        if feature == "structured":
            request = replace(request, structured_mode=STRUCTURED_MODES[_at(feature, mode)])
        elif feature == "tools":
            request = replace(request, tool_mode=TOOL_MODES[_at(feature, mode)])
        else:
            request = replace(request, think_mode=THINK_MODES[_at(feature, mode)])
    return request


def _at(feature: str, mode: str | None) -> int:
    return FEATURE_MODES[feature].index(mode or "")


async def learn(
    store: Store,
    ref: ModelRef,
    started: ModelRequest,
    response: ModelResponse | None,
    refused: tuple[str, ...],
    now: datetime,
    base_url: str = "",
) -> None:
    """Remember the modes a call ended on: always after a refusal; otherwise only when nothing
    fresh was known (so a model that takes the strongest mode costs one write a day)."""
    worked: dict[str, str] = {}
    if response is not None:
        if response.structured_mode is not None:
            worked["structured"] = response.structured_mode
        if response.tool_mode is not None:
            worked["tools"] = response.tool_mode
        if response.think_mode is not None:
            worked["think"] = response.think_mode
    else:  # the call failed after stepping down: the mode below the last refused one
        for item in refused:
            feature, _, mode = item.partition(":")
            modes = FEATURE_MODES.get(feature, ())
            if mode in modes and modes.index(mode) + 1 < len(modes):
                worked[feature] = modes[modes.index(mode) + 1]
    for feature, mode in worked.items():
        detail = ", ".join(r for r in refused if r.startswith(feature + ":"))
        fresh = await store_io(
            store.capabilities.mode, ref.provider, ref.model, feature, base_url=base_url, now=now
        )
        if detail or fresh is None:
            await store_io(
                store.capabilities.remember,
                ref.provider,
                ref.model,
                feature,
                mode,
                detail=f"refused {detail}" if detail else "",
                base_url=base_url,
                now=now,
            )
            if detail:
                log.info("model mode stepped down", model=str(ref), feature=feature, mode=mode)
