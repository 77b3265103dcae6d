"""Model providers: one module per API, all plain httpx, registered by API name.

A provider *name* (`anthropic`, or a user's `lmstudio`) maps to an *API* (`openai`, …) in
config; the API picks the module. Modules load lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.llm.base import Provider

PROVIDER_APIS: dict[str, str] = {
    "ollama": "daemon.llm.ollama:OllamaProvider",
    "anthropic": "daemon.llm.anthropic:AnthropicProvider",
    "openai": "daemon.llm.openai:OpenAIProvider",
    "google": "daemon.llm.google:GoogleProvider",
    "cohere": "daemon.llm.cohere:CohereProvider",
}

KEY_ENV: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    "openai": ("OPENAI_API_KEY",),
    "google": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "cohere": ("COHERE_API_KEY", "CO_API_KEY"),
}
"""The conventional environment variables of the built-in cloud providers."""


def provider_class(api: str) -> type[Provider]:
    module_name, _, class_name = PROVIDER_APIS[api].partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls
