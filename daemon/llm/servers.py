"""Which OpenAI-compatible server sits behind a base URL, so JSON mode asks it in its own words.

The servers agree on `response_format: {"type": "json_schema"}` but not on JSON mode:
- vLLM ignores a `schema` beside `{"type": "json_object"}` (unknown fields are logged and
  dropped, never refused) and constrains by its own extra parameter: `guided_json` until
  0.12.0 removed it, `structured_outputs: {"json": …}` from 0.10.2 on. Each is silently
  ignored where it is unknown, so the version decides, not a refusal.
- LM Studio has no JSON mode: it refuses `json_object` (400), so JSON mode is the schema in
  the instructions there.
- llama.cpp's servers take `{"type": "json_object", "schema": …}` and constrain by it.

A server says what it is in `GET {base}/models` (`owned_by`: "vllm", "llamacpp",
"organization_owner" for LM Studio); vLLM says its version in `GET {root}/version`. Asked
once per HTTP client and base URL (a day at most), and only when JSON mode is about to be used.
"""

from __future__ import annotations

import re
import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx

from daemon.llm.base import ReplyTooLarge, fetch_capped

IDENTIFY_TIMEOUT_S = 5.0
IDENTIFY_TTL_S = 86_400.0
STRUCTURED_OUTPUTS_SINCE = (0, 10, 2)
"""vLLM's first version with `structured_outputs` (its `guided_*` fields were deprecated then
and removed in 0.12.0)."""
_OWNERS = {"vllm": "vllm", "llamacpp": "llama.cpp", "organization_owner": "lmstudio"}
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Server:
    kind: str
    """"vllm", "lmstudio", "llama.cpp" or "unknown"."""
    version: tuple[int, ...] | None = None


UNKNOWN = Server("unknown")

_seen: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, tuple[float, Server]]] = (
    weakref.WeakKeyDictionary()
)


def version_of(text: str) -> tuple[int, ...] | None:
    """`0.11.0`, `0.10.2rc1`, `0.9.2+cu126` → (major, minor, patch); None when not a version."""
    found = _VERSION.match(text.strip().lstrip("v"))
    if found is None:
        return None
    return tuple(int(part or 0) for part in found.groups())


def json_mode_body(server: Server, schema: dict[str, Any]) -> dict[str, Any]:
    """The request keys that ask `server` for JSON constrained by `schema` (JSON mode)."""
    if server.kind == "vllm":
        if server.version is not None and server.version < STRUCTURED_OUTPUTS_SINCE:
            return {"guided_json": schema}
        return {"structured_outputs": {"json": schema}}
    return {"response_format": {"type": "json_object", "schema": schema}}


async def identify(
    client: httpx.AsyncClient, base_url: str, headers: dict[str, str], timeout_s: float
) -> Server:
    """What serves `base_url` (remembered per client); UNKNOWN when it does not say."""
    base = base_url.rstrip("/")
    known = _seen.setdefault(client, {})
    cached = known.get(base)
    if cached is not None and time.monotonic() - cached[0] < IDENTIFY_TTL_S:
        return cached[1]
    timeout = min(timeout_s, IDENTIFY_TIMEOUT_S)
    listed = await _get_json(client, base + "/models", headers, timeout)
    models = listed.get("data") if isinstance(listed, dict) else None
    first = models[0] if isinstance(models, list) and models else None
    owner = str(first.get("owned_by", "")) if isinstance(first, dict) else ""
    kind = _OWNERS.get(owner, "unknown")
    version = None
    if kind == "vllm":
        root = base.removesuffix("/v1")
        reply = await _get_json(client, root + "/version", headers, timeout)
        if isinstance(reply, dict) and isinstance(reply.get("version"), str):
            version = version_of(reply["version"])
    server = Server(kind, version)
    known[base] = (time.monotonic(), server)
    return server


async def _get_json(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], limit_s: float
) -> Any:
    """The JSON of a 200 answer to `GET url`; None for anything else (never raises)."""
    try:
        response = await fetch_capped(client, "GET", url, headers=headers, timeout=limit_s)
        return response.json() if response.status_code == 200 else None
    except (ReplyTooLarge, httpx.HTTPError, ValueError):
        return None
