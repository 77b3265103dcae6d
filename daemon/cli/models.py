"""`watchkeeper models` and `route set|reset`: every task's model chain, what is known of
each model (key, reachability, price), and runtime overrides of a chain."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.cli._blocks import BLANK, Column, Table
from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    load,
    open_store,
)
from daemon.cli._complete import complete_models
from daemon.cli._output import show, wide_option

if TYPE_CHECKING:
    from daemon.ai.pricing import Rates
    from daemon.ai.runner import AI
    from daemon.config.settings import Settings

TASK_NAMES = ("triage", "rca", "security", "cost", "digest", "ask")


@click.command()
@config_option
@json_option
@wide_option
@handle_errors
def models(config_path: Path | None, as_json: bool) -> None:
    """Every task's model chain, and per model: key, reachability, price."""
    from daemon.ai.pricing import format_rate

    _, settings = load(config_path)
    chains, overridden, infos = asyncio.run(models_overview(settings))
    if as_json:
        emit_json(
            {
                "routing": {
                    t: {"chain": c, "override": t in overridden} for t, c in chains.items()
                },
                "models": [i.as_json() for i in infos],
            }
        )
        return
    routes = Table(
        [Column("TASK"), Column("CHAIN (first usable wins)", free=True), Column("OVERRIDE")],
        [
            [
                task,
                " → ".join(chain),
                f"runtime: `watchkeeper route reset {task}`" if task in overridden else "",
            ]
            for task, chain in chains.items()
        ],
    )
    rows = []
    for info in infos:
        reach = {True: "yes", False: "no", None: "-"}[info.reachable]
        if info.reachable_detail and info.reachable is not True:
            reach += f" ({info.reachable_detail})"
        price = "$0 (local)" if info.local else format_rate(info.price)
        rows.append([info.ref, info.key_source, reach, price])
    table = Table(
        [
            Column("MODEL"),
            Column("KEY"),
            Column("REACHABLE", free=True, coloured=True),
            Column("PRICE /MTOK (IN / OUT)"),
        ],
        rows,
    )
    show(routes, BLANK, table)


@click.group()
def route() -> None:
    """Runtime routing overrides, applied by a running daemon to its next job."""


@route.command("set")
@click.argument("task", type=click.Choice(TASK_NAMES))
@click.argument("refs", shell_complete=complete_models)
@config_option
@handle_errors
def route_set(task: str, refs: str, config_path: Path | None) -> None:
    """Route TASK to REF[,REF…] (provider/model, first usable wins).

    Warns (on stderr; the route is set all the same) about each model that has no key or
    does not answer now."""
    from daemon.config.ai import RoutingSettings, ai_problems

    _, settings = load(config_path)
    chain = [r.strip() for r in refs.split(",") if r.strip()]
    if not chain:
        raise click.UsageError("give at least one provider/model")
    routing = RoutingSettings(**{task: chain})
    problems = [
        p
        for p in ai_problems(settings.providers, routing, {}, settings.budget)
        if p.key.startswith(f"routing.{task}")
    ]
    if problems:
        raise click.UsageError(problems[0].message)
    store = open_store(settings)
    try:
        store.routes.set(task, chain)
    finally:
        store.close()
    echo(f"{task} → {' → '.join(chain)} (applies to the next {task} job)")
    infos = asyncio.run(probe_models(settings, chain))
    for warning in route_warnings(task, infos):
        echo(f"watchkeeper: warning: {warning}", err=True)


def route_warnings(task: str, infos: list[ModelInfo]) -> list[str]:
    """One line per model that cannot take the task now, and one more when none can."""
    lines = []
    for info in infos:
        if info.reachable is not False:
            continue
        if info.reachable_detail == "no key":
            lines.append(
                f"{info.ref} has no key: run `watchkeeper keys set {info.provider}` "
                "(`watchkeeper keys --help` lists every way to give one)"
            )
        else:
            lines.append(f"{info.ref} is not usable now: {info.reachable_detail or 'no answer'}")
    if infos and all(i.reachable is False for i in infos):
        lines.append(f"no model of this chain is usable now: {task} is skipped until one is")
    return lines


@route.command("reset")
@click.argument("task", type=click.Choice(TASK_NAMES))
@config_option
@handle_errors
def route_reset(task: str, config_path: Path | None) -> None:
    """Drop TASK's runtime override: back to [routing] in the config."""

    _, settings = load(config_path)
    store = open_store(settings)
    try:
        store.routes.reset(task)
    finally:
        store.close()
    echo(f"{task} → {' → '.join(settings.routing.chain(task))} (from the config)")


@dataclass
class ModelInfo:
    ref: str
    provider: str
    api: str
    local: bool
    host: str
    key_source: str
    reachable: bool | None
    reachable_detail: str
    price: Rates | None

    def as_json(self) -> dict[str, Any]:
        rates = self.price
        return {
            "model": self.ref,
            "provider": self.provider,
            "api": self.api,
            "local": self.local,
            "host": self.host,
            "key_source": self.key_source,
            "reachable": self.reachable,
            "reachable_detail": self.reachable_detail,
            "price_per_mtok": None
            if rates is None
            else {
                "input": float(rates.input_per_mtok),
                "output": float(rates.output_per_mtok),
                "cached_input": None
                if rates.cached_input_per_mtok is None
                else float(rates.cached_input_per_mtok),
            },
        }


async def models_overview(
    settings: Settings,
) -> tuple[dict[str, list[str]], set[str], list[ModelInfo]]:
    """Every task's chain (runtime overrides applied) and what is known of each model."""
    from daemon.config.ai import TASKS
    from daemon.runtime import open_runtime
    from daemon.store.database import store_io

    async with open_runtime(settings) as rt:
        ai = rt.ai
        overrides = await store_io(rt.store.routes.all)
        chains = {task: overrides.get(task) or settings.routing.chain(task) for task in TASKS}
        refs = sorted({ref for chain in chains.values() for ref in chain})
        infos = await asyncio.gather(*(_model_info(settings, ai, ref) for ref in refs))
    return chains, set(overrides), list(infos)


async def probe_models(settings: Settings, refs: list[str]) -> list[ModelInfo]:
    """What is known of each of `refs` now: key, reachability, price."""
    from daemon.runtime import open_runtime

    async with open_runtime(settings) as rt:
        return list(await asyncio.gather(*(_model_info(settings, rt.ai, r) for r in refs)))


async def _model_info(settings: Settings, ai: AI, text: str) -> ModelInfo:
    from daemon.ai.keys import resolve_key
    from daemon.ai.pricing import list_price
    from daemon.ai.targets import price_overrides, resolve_target
    from daemon.llm import provider_class
    from daemon.models import ModelRef

    ref = ModelRef.parse(text)
    target = resolve_target(ref, settings.providers)
    key, info = await asyncio.to_thread(resolve_key, ref.provider, settings.providers)
    quick = replace(target.options, timeout_s=3.0, max_retries=0)
    provider = provider_class(target.api)(quick, key, ai.client)
    reachable: bool | None
    if info.needed and key is None:
        reachable, detail = False, "no key"
    else:
        reachable, detail = await provider.probe(ref.model)
    rates = list_price(ref, api=target.api, local=target.local, overrides=price_overrides(settings))
    return ModelInfo(
        ref=text,
        provider=ref.provider,
        api=target.api,
        local=target.local,
        host=provider.host,
        key_source=info.source,
        reachable=reachable,
        reachable_detail=detail,
        price=rates,
    )
