"""The investigator's read-only tools, chosen from the checks an incident involves.

An allow-list, not a sandbox: the model may only name a tool built here for this incident,
with arguments inside an enumerated scope (the incident's checks, their namespaces, the URLs
configured checks already watch). Nothing here writes, runs a command or fetches a URL that
is not configured. Every output is redacted, capped and handed back as observed text; a
refusal is an answer too (the model is told why), never an exception.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.llm.types import ToolSpec
from daemon.logging import redact
from daemon.models import Incident
from daemon.store import Store
from daemon.store.database import store_io
from daemon.util.text import printable
from jobs.base import CheckContext, CheckSpec

TOOL_TIMEOUT_S = 15.0
MAX_CALLS_PER_STEP = 3
"""Calls beyond this in one model turn are refused: each must fit the step's money check."""

Run = Callable[[dict[str, Any]], Awaitable[str]]


class ToolRefused(Exception):
    """The call is outside the allow-list or its scope; the message says why."""


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    run: Run


@dataclass(frozen=True)
class Outcome:
    ok: bool
    text: str
    """Redacted and capped: what the model is given."""


@dataclass
class Toolbox:
    tools: dict[str, Tool] = field(default_factory=dict)
    output_bytes: int = 8192

    def add(self, name: str, description: str, properties: dict[str, Any], run: Run) -> None:
        required = [k for k, v in properties.items() if not v.pop("optional", False)]
        schema = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        self.tools[name] = Tool(ToolSpec(name, description, schema), run)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self.tools.values())

    async def call(self, name: str, arguments: dict[str, Any]) -> Outcome:
        tool = self.tools.get(name)
        if tool is None:
            allowed = ", ".join(self.tools) or "none"
            return Outcome(
                False, f"refused: {name!r} is not an available tool (allowed: {allowed})"
            )
        problem = _check_arguments(tool.spec.parameters, arguments)
        if problem:
            return Outcome(False, f"refused: {problem}")
        try:
            async with asyncio.timeout(TOOL_TIMEOUT_S):
                text = await tool.run(arguments)
        except ToolRefused as exc:
            return Outcome(False, f"refused: {exc}")
        except TimeoutError:
            return Outcome(False, f"failed: no answer within {TOOL_TIMEOUT_S:g} s")
        except Exception as exc:  # a failing look-up is information, never a crash
            return Outcome(False, f"failed: {type(exc).__name__}: {redact(str(exc))[:300]}")
        return Outcome(True, cap(redact(text), self.output_bytes))


def _check_arguments(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """Types, enums and required keys of the (flat) tool schema; unknown keys refused."""
    properties: dict[str, Any] = schema["properties"]
    for key in arguments:
        if key not in properties:
            return f"unknown argument {key!r}"
    for key in schema["required"]:
        if key not in arguments:
            return f"missing argument {key!r}"
    types = {"string": str, "integer": int, "boolean": bool, "object": dict}
    for key, value in arguments.items():
        spec = properties[key]
        expected = types.get(spec.get("type", "string"), str)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return f"argument {key!r} must be a {spec.get('type', 'string')}"
        if "enum" in spec and value not in spec["enum"]:
            return f"{key}={printable(str(value))[:120]!r} is outside this incident's scope"
        if expected is int and not spec.get("minimum", value) <= value <= spec.get(
            "maximum", value
        ):
            return f"argument {key!r} must be within {spec['minimum']}..{spec['maximum']}"
    return None


def cap(text: str, limit: int) -> str:
    """At most `limit` UTF-8 bytes, keeping the end (logs say the most at their end)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return "[…cut to the last part]\n" + data[-limit:].decode("utf-8", errors="ignore")


def involved(incident: Incident, checks: Sequence[CheckSpec]) -> list[CheckSpec]:
    """The configured checks of the incident and its blast radius."""
    names = [incident.check, *incident.blast_radius]
    by_name = {c.name: c for c in checks}
    return [by_name[n] for n in dict.fromkeys(names) if n in by_name]


def build_toolbox(
    incident: Incident,
    checks: Sequence[CheckSpec],
    store: Store,
    ctx: CheckContext,
    *,
    output_bytes: int,
    aws: bool = True,
) -> Toolbox:
    """The tools for this incident: check history and re-running its checks always; the
    Kubernetes, Prometheus, HTTP and (unless `aws` is off) AWS look-ups of the check types
    involved."""
    from daemon.engine import tools_aws, tools_sources

    box = Toolbox(output_bytes=output_bytes)
    specs = involved(incident, checks)
    if not specs:
        return box
    names = [s.name for s in specs]
    by_name = {s.name: s for s in specs}

    async def history(args: dict[str, Any]) -> str:
        results = await store_io(store.results.recent, args["check"], int(args.get("limit", 10)))
        if not results:
            return f"no stored results of {args['check']}"
        return "\n".join(
            f"{r.started_at:%Y-%m-%d %H:%M:%S} {r.status}"
            + (f" {r.latency_ms:.0f} ms" if r.latency_ms is not None else "")
            + f": {' '.join(r.evidence.split())[:300]}"
            for r in results
        )

    async def run_now(args: dict[str, Any]) -> str:
        spec = by_name[args["check"]]
        async with asyncio.timeout(spec.timeout.total_seconds()):
            results = await spec.run(ctx)
        return "\n".join(f"{r.status}: {r.evidence}" for r in results) or "(no results)"

    box.add(
        "check_history",
        "Recent stored results of one of the incident's checks, newest first.",
        {
            "check": {"type": "string", "enum": names},
            "limit": {"type": "integer", "minimum": 1, "maximum": 30, "optional": True},
        },
        history,
    )
    box.add(
        "run_check",
        "Run one of the incident's configured checks now and return its results.",
        {"check": {"type": "string", "enum": names}},
        run_now,
    )
    tools_sources.add_sources(box, specs, ctx)
    if aws:
        tools_aws.add_aws(box, specs, ctx)
    return box


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False)
