"""Model providers: one module per API, plain httpx, each declaring its own facts.

Owns the wire formats and the provider registry below; imports `daemon.models`, `daemon.util`
and the redaction patterns only. A provider *name* (`anthropic`, or a user's `lmstudio`) maps
to an *API* in config; the API picks the module. Adding a provider = one module + one line.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.llm.base import Provider, ProviderInfo

PROVIDERS: dict[str, str] = {
    "ollama": "daemon.llm.ollama:OllamaProvider",
    "anthropic": "daemon.llm.anthropic:AnthropicProvider",
    "openai": "daemon.llm.openai:OpenAIProvider",
    "google": "daemon.llm.google:GoogleProvider",
    "cohere": "daemon.llm.cohere:CohereProvider",
}
"""API name → "module:Class". The built-in providers are named after their API; modules load
only when a provider's facts or code are needed."""


@cache
def provider_class(api: str) -> type[Provider]:
    module_name, _, class_name = PROVIDERS[api].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def provider_info(api: str) -> ProviderInfo:
    """What the provider declares about itself: base URL, key variables, priced, local…"""
    return provider_class(api).info


def key_env(provider: str) -> tuple[str, ...]:
    """The conventional key variables of a built-in provider (empty for one that needs no
    key); a declared provider's key is named by its own `key = "secret:NAME"`."""
    return provider_info(provider).key_env if provider in PROVIDERS else ()
