"""Check-cycle overhead: watchkeeper's `Pipeline.run_checks` / `Pipeline.cycle` over N `http`
checks against loopback servers, as a ratio to a bare `asyncio.gather` of the same GETs.

Every variant uses the same shared httpx client (the one `open_runtime` builds) and the same
servers, and runs interleaved with the others, so machine noise hits all of them alike.
Run: `python -m bench.cycle [--sizes 100,500,1000] [--repeats 5] [--json]`.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    emit,
    fmt_ratio,
    isolate_this_process,
    loopback_http,
    machine,
    median,
    parser,
    quiet_logs,
    table,
    verdict,
)

SIZES = (100, 500, 1000)
TARGET_RATIO = 1.3
TARGET_N = 1000
MIN_ROUNDS = 3
LINEAR_LIMIT = 1.3
"""Per-check cost at the largest N over the smallest: above this, growth is not linear."""
VARIANTS = ("bare_gather", "bare_gather_bounded", "run_checks", "run_checks_unbounded", "cycle")
LABELS = {
    "bare_gather": "bare asyncio.gather",
    "bare_gather_bounded": "bare gather, default concurrency",
    "run_checks": "run_checks (default concurrency)",
    "run_checks_unbounded": "run_checks (concurrency = N)",
    "cycle": "cycle (checks + evaluate + commit)",
}
TIMEOUT_S = 60.0
"""Generous for every variant: a request that times out is cheaper than one that completes, so
a timeout must never make a variant look fast."""


def write_config(directory: Path, ports: list[int], n: int, concurrency: int | None) -> Path:
    """N http checks spread over the loopback ports; the daemon's defaults otherwise."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["[daemon]", 'state_dir = "state"']
    if concurrency is not None:
        lines.append(f"max_concurrency = {concurrency}")
    for i in range(n):
        port = ports[i % len(ports)]
        lines += [
            "[[checks]]",
            f'name = "http-{i:04d}"',
            'type = "http"',
            f'url = "http://127.0.0.1:{port}/health/{i}"',
            'interval = "60s"',
            f'timeout = "{TIMEOUT_S:g}s"',
        ]
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def measure_size(
    ports: list[int], n: int, repeats: int, workdir: Path, deadline: float, profile: bool
) -> dict[str, Any]:
    from daemon.config.load import load_settings
    from daemon.engine.pipeline import Pipeline
    from daemon.runtime import open_runtime
    from daemon.util.time import utcnow

    settings = load_settings(write_config(workdir / f"n{n}", ports, n, None))
    wide_settings = load_settings(write_config(workdir / f"n{n}-wide", ports, n, n))
    specs = settings.enabled_checks
    urls = [str(getattr(spec, "url")) for spec in specs]  # noqa: B009 - CheckSpec has no url

    async with open_runtime(settings) as rt:
        client = rt.ctx.http
        wide = Pipeline(wide_settings, rt.store, rt.ctx, now=utcnow)
        slots = asyncio.Semaphore(settings.daemon.max_concurrency)

        async def get(url: str) -> bool:
            try:
                reply = await client.get(url, timeout=TIMEOUT_S)
            except httpx.HTTPError:
                return False
            return reply.status_code == 200

        async def bounded(url: str) -> bool:
            async with slots:
                return await get(url)

        async def bare() -> int:
            replies = await asyncio.gather(*(get(url) for url in urls))
            return replies.count(False)

        async def bare_bounded() -> int:
            replies = await asyncio.gather(*(bounded(url) for url in urls))
            return replies.count(False)

        async def checks(pipeline: Pipeline) -> int:
            return sum(r.status != "ok" for r in await pipeline.run_checks(specs))

        async def cycle() -> int:
            results, _ = await rt.pipeline.cycle(specs)
            return sum(r.status != "ok" for r in results)

        runs: dict[str, Callable[[], Awaitable[int]]] = {
            "bare_gather": bare,
            "bare_gather_bounded": bare_bounded,
            "run_checks": lambda: checks(rt.pipeline),
            "run_checks_unbounded": lambda: checks(wide),
            "cycle": cycle,
        }
        # Warm-up: connections, lazy imports, the baseline seed from the store.
        failures = {v: 0 for v in VARIANTS}
        for variant in VARIANTS:
            failures[variant] += await runs[variant]()

        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        done = 0
        for round_no in range(repeats):
            if done >= MIN_ROUNDS and time.monotonic() > deadline:
                break
            shift = round_no % len(VARIANTS)  # rotate the order: no variant always goes first
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                t0 = time.perf_counter()
                failures[variant] += await runs[variant]()
                times[variant].append(time.perf_counter() - t0)
            done += 1
        profiled = None
        if profile:
            profiled = await profile_run_checks(bare, lambda: checks(rt.pipeline))

    ratios = {
        v: median([t / b for t, b in zip(times[v], times["bare_gather"], strict=True)])
        for v in VARIANTS
        if v != "bare_gather"
    }
    bounded_ratios = {
        v: median([t / b for t, b in zip(times[v], times["bare_gather_bounded"], strict=True)])
        for v in ("run_checks", "cycle")
    }
    return {
        "n": n,
        "repeats": done,
        "not_ok": failures,
        "max_concurrency_default": settings.daemon.max_concurrency,
        "median_s": {v: round(median(times[v]), 5) for v in VARIANTS},
        "per_check_us": {v: round(median(times[v]) / n * 1e6, 1) for v in VARIANTS},
        "ratio_vs_bare": {v: round(r, 3) for v, r in ratios.items()},
        "ratio_vs_bare_bounded": {v: round(r, 3) for v, r in bounded_ratios.items()},
        "profile": profiled,
    }


def _bucket(filename: str) -> str:
    for marker, name in (
        ("/httpx/", "httpx"),
        ("/httpcore/", "httpcore"),
        ("/h11/", "h11"),
        ("/anyio/", "anyio"),
        ("/pydantic", "pydantic"),
        ("/structlog/", "structlog"),
        ("/daemon/", "watchkeeper daemon/"),
        ("/jobs/", "watchkeeper jobs/"),
        ("asyncio", "asyncio"),
        ("/ssl.py", "ssl"),
    ):
        if marker in filename:
            return name
    if filename == "~":
        return "builtins (C)"
    return "other"


def _profile_stats(profile: cProfile.Profile) -> tuple[dict[str, float], list[dict[str, Any]]]:
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]]
    raw = stats.stats  # type: ignore[attr-defined]  # no public accessor for the table
    buckets: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for (filename, line, func), (_, calls, tottime, cumtime, _) in raw.items():
        bucket = _bucket(filename)
        buckets[bucket] = buckets.get(bucket, 0.0) + tottime
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({func})",
                "bucket": bucket,
                "calls": calls,
                "tottime_s": round(tottime, 4),
                "cumtime_s": round(cumtime, 4),
            }
        )
    rows.sort(key=lambda r: -r["tottime_s"])
    return {k: round(v, 4) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])}, rows[:12]


async def profile_run_checks(
    bare: Callable[[], Awaitable[Any]], run_checks: Callable[[], Awaitable[Any]]
) -> dict[str, Any]:
    """cProfile of one bare gather and one run_checks at the largest N: where the extra goes,
    by package (own time, so it adds up to the whole run)."""
    out: dict[str, Any] = {}
    for name, fn in (("bare_gather", bare), ("run_checks", run_checks)):
        profile = cProfile.Profile()
        profile.enable()
        await fn()
        profile.disable()
        buckets, top = _profile_stats(profile)
        out[name] = {"by_package_s": buckets, "top_functions": top if name != "bare_gather" else []}
    base = out["bare_gather"]["by_package_s"]
    mine = out["run_checks"]["by_package_s"]
    extra = {k: round(mine.get(k, 0.0) - base.get(k, 0.0), 4) for k in set(base) | set(mine)}
    out["extra_by_package_s"] = dict(sorted(extra.items(), key=lambda kv: -kv[1]))
    return out


def baselines_warm_cost(checks: int = 50, repeats: int = 5) -> dict[str, Any]:
    """What `Baselines.apply` costs per result once every window is full (a daemon that has
    run for a while), which the short bench above never reaches: it judges only from
    `min_samples` results of history on."""
    from daemon.config.settings import Settings
    from daemon.engine.baselines import BaselinePolicy, Baselines
    from daemon.models import CheckResult

    policy = BaselinePolicy.from_settings(Settings().baselines)
    samples = policy.max_samples
    rng = random.Random(7)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def http_result(name: str, at: datetime) -> CheckResult:
        latency = round(rng.uniform(1.5, 4.0), 1)
        return CheckResult.model_construct(
            check=name,
            status="ok",
            evidence=f"GET http://127.0.0.1/{name} returned 200 in {latency:.0f} ms",
            started_at=at,
            latency_ms=latency,
            subject=None,
            values={"latency_ms": latency, "status_code": 200, "body_bytes": 2},
            labels={"type": "http"},
        )

    def load(name: str, limit: int) -> list[CheckResult]:
        step = min(timedelta(seconds=60), policy.window / (limit + 1))
        return [http_result(name, now - step * (i + 1)) for i in range(limit)]  # newest first

    names = [f"http-{i:04d}" for i in range(checks)]
    baselines = Baselines(policy, load)
    baselines.apply([http_result(n, now) for n in names], now)  # seeds every window
    times = []
    for r in range(repeats):
        at = now + timedelta(seconds=r + 1)
        batch = [http_result(n, at) for n in names]
        t0 = time.perf_counter()
        baselines.apply(batch, at)
        times.append(time.perf_counter() - t0)
    windows = len(getattr(baselines, "_windows"))  # noqa: B009 - private, counted for the report
    return {
        "checks": checks,
        "samples_per_window": samples,
        "windows": windows,
        "windows_per_check": windows / checks,
        "us_per_result": round(median(times) / checks * 1e6, 1),
    }


async def run(sizes: tuple[int, ...], repeats: int, max_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + max_seconds
    per_size = []
    with loopback_http(ports=4) as ports, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            profile = n == sizes[-1]
            per_size.append(await measure_size(ports, n, repeats, Path(tmp), deadline, profile))
    warm = baselines_warm_cost()
    return summarise(per_size, warm)


def summarise(per_size: list[dict[str, Any]], warm: dict[str, Any]) -> dict[str, Any]:
    smallest, largest = per_size[0], per_size[-1]
    growth = {
        v: round(largest["per_check_us"][v] / smallest["per_check_us"][v], 3) for v in VARIANTS
    }
    at = next((s for s in per_size if s["n"] == TARGET_N), largest)
    ratio = at["ratio_vs_bare"]["run_checks"]
    bare_us = at["per_check_us"]["bare_gather_bounded"]
    warm["vs_bare_request"] = round(warm["us_per_result"] / bare_us, 3)
    return {
        "bench": "cycle",
        "machine": machine(),
        "sizes": per_size,
        "growth_per_check_largest_vs_smallest": growth,
        "linear": {v: g <= LINEAR_LIMIT for v, g in growth.items()},
        "baselines_warm": warm,
        "target": {
            "n": at["n"],
            "ratio": ratio,
            "limit": TARGET_RATIO,
            "met": ratio <= TARGET_RATIO,
            "ratio_concurrency_n": at["ratio_vs_bare"]["run_checks_unbounded"],
            "ratio_full_cycle": at["ratio_vs_bare"]["cycle"],
            "ratio_vs_bare_bounded": at["ratio_vs_bare_bounded"]["run_checks"],
            "ratio_full_cycle_vs_bare_bounded": at["ratio_vs_bare_bounded"]["cycle"],
        },
    }


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"bench.cycle — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}",
        "",
    ]
    rows = []
    for size in data["sizes"]:
        for v in VARIANTS:
            ratio = size["ratio_vs_bare"].get(v, 1.0)
            bounded = size["ratio_vs_bare_bounded"].get(v)
            if v == "bare_gather_bounded":
                bounded = 1.0
            rows.append(
                [
                    f"N={size['n']:<5} {LABELS[v]}",
                    f"{size['median_s'][v] * 1000:.1f} ms",
                    f"{size['per_check_us'][v]:.0f} us",
                    fmt_ratio(ratio),
                    "" if bounded is None else fmt_ratio(bounded),
                    size["not_ok"][v],
                ]
            )
    header = ["variant", "median", "per check", "vs bare", "vs bare@default", "not ok"]
    lines.append(table(header, rows))
    lines.append("")
    growth = data["growth_per_check_largest_vs_smallest"]
    first, last = data["sizes"][0]["n"], data["sizes"][-1]["n"]
    lines.append(
        f"per-check cost N={last} / N={first}: "
        + ", ".join(f"{v} {g:.2f}" for v, g in growth.items())
        + f" (linear: <= {LINEAR_LIMIT})"
    )
    warm = data["baselines_warm"]
    lines.append(
        f"warm baselines ({warm['samples_per_window']} samples a window, "
        f"{warm['windows_per_check']:.0f} windows a check): {warm['us_per_result']:.0f} us per "
        f"result = {warm['vs_bare_request']:.2f}x a bare request at default concurrency"
    )
    target = data["target"]
    lines.append(
        f"target run_checks <= {target['limit']}x bare at N={target['n']}: "
        f"{target['ratio']:.2f}x — {verdict(target['met'])} "
        f"(concurrency = N: {target['ratio_concurrency_n']:.2f}x; "
        f"full cycle: {target['ratio_full_cycle']:.2f}x; at equal concurrency: run_checks "
        f"{target['ratio_vs_bare_bounded']:.2f}x, full cycle "
        f"{target['ratio_full_cycle_vs_bare_bounded']:.2f}x)"
    )
    profile = data["sizes"][-1].get("profile")
    if profile:
        extra = ", ".join(
            f"{k} {v * 1000:+.0f} ms" for k, v in list(profile["extra_by_package_s"].items())[:6]
        )
        lines.append(f"profile, run_checks minus bare (own time by package): {extra}")
    return "\n".join(lines)


def main() -> None:
    p = parser("Check-cycle overhead vs a bare asyncio.gather of the same requests.")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated N values")
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds per N")
    p.add_argument("--max-seconds", type=float, default=240, help="stop adding rounds after this")
    args = p.parse_args()
    sizes = tuple(sorted(int(s) for s in args.sizes.split(",") if s.strip()))
    isolate_this_process()
    quiet_logs()
    data = asyncio.run(run(sizes, max(1, args.repeats), args.max_seconds))
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
