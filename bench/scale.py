"""Ten thousand checks on one small machine: what baselines, incident evaluation, the commit
and the scheduler cost per check, as ratios measured in one run.

Three parts, each interleaved so that machine noise hits both sides alike:

- `baselines`: the compact windows (`daemon.engine.baselines.Baselines`) against the exact
  computation they replaced (`tests/daemon/engine/exact_baselines.py`), both with full windows:
  microseconds to judge a result, memory a check holds, and whether they flag the same results.
- `cycle` at each N (default 1,000, 5,000 and 10,000): N/2 `http` and N/2 `tcp` checks against
  loopback servers through the real `Pipeline.cycle`, warm baselines injected (full windows),
  against a bare gather of the same requests at equal concurrency; engine time per result
  (baselines, evaluation, commit: `Pipeline.record`), RSS, database growth and disk bytes
  written a cycle.
- `daemon` (`bench/scale_daemon.py`): N checks through a real `watchkeeper run` subprocess, 10 %
  failing at once: time to every check's first result, the process's RSS, its CPU a result,
  and the outbox at scale (incidents, rows, messages delivered to a loopback receiver, how
  long delivery took).
- `scheduler`: APScheduler with one interval job per check against one job per interval that
  spreads its checks over the interval (`loop.call_later`), no-op checks: CPU per run.
- `reseed` (`bench/scale_reseed.py`): seconds from start to baselines ready at N checks with
  full windows, rebuilt from stored results against restored from baseline snapshots (after a
  clean stop, and after a crash with an hour of results to read after the snapshot), and the
  snapshots' bytes a check and time to save.

Run: `python -m bench.scale [--sizes 1000,5000,10000] [--rounds 2] [--json]`; the reseed part
alone: `--parts reseed --reseed-sizes 1000,10000` (it is not in the default parts: it writes
~2,000 results a check, 2.6 GB at 10,000 checks). The same file runs
against an older checkout (no `daemon.engine.window`): it then injects the old deques.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import emit, isolate_this_process, loopback_http, machine, parser, quiet_logs
from bench.scale_daemon import check_lines
from bench.scale_daemon import render as render_daemon
from bench.scale_reseed import render as render_reseed
from bench.scale_reseed import reseed_part

SIZES = (1000, 5000, 10000)
TARGET_ENGINE_US = 50.0
TARGET_RSS_MB = 300.0
TARGET_CYCLE_RATIO = 1.2
PARTS = ("baselines", "scheduler", "cycle", "daemon")
EXTRA_PARTS = ("reseed",)
"""Parts run only when named in `--parts`."""
SPREAD_CYCLES = 60
"""A check interval's results split into this many cycles (one a second over a minute)."""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def written_bytes() -> int:
    """Bytes this process caused to be written to storage (Linux /proc/self/io)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- baselines: compact windows against the exact computation ---------------------------------


def baselines_part(checks: int, rounds: int) -> dict[str, Any]:
    from daemon.engine.baselines import BaselinePolicy, Baselines
    from daemon.models import CheckResult
    from tests.daemon.engine.exact_baselines import ExactBaselines

    policy = BaselinePolicy()
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    rng = random.Random(18)

    def http(name: str, at: datetime, spike: bool = False) -> CheckResult:
        latency = rng.lognormvariate(1.0, 0.2) * (40 if spike else 1)
        return CheckResult.model_construct(
            check=name,
            status="ok",
            evidence="GET returned 200",
            started_at=at,
            latency_ms=latency,
            subject=None,
            values={"latency_ms": latency, "status_code": 200, "body_bytes": 2},
            labels={},
        )

    def load(name: str, limit: int) -> list[CheckResult]:
        rng.seed(name)  # the same history for both implementations
        return [http(name, now - timedelta(minutes=i + 1)) for i in range(limit)]

    names = [f"http-{i:04d}" for i in range(checks)]
    first = [http(n, now) for n in names]
    held: dict[str, float] = {}
    impls: dict[str, Any] = {}
    for label, cls in (("exact", ExactBaselines), ("compact", Baselines)):
        gc.collect()
        tracemalloc.start()
        impl = cls(policy, load)
        impl.apply(first, now)  # seeds every window, full
        gc.collect()
        held[label] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        impls[label] = impl
    times: dict[str, list[float]] = {"exact": [], "compact": []}
    flagged = {"exact": 0, "compact": 0}
    differ = 0
    for r in range(rounds):
        at = now + timedelta(minutes=r + 1)
        batch = [http(n, at, spike=(i + r) % 25 == 0) for i, n in enumerate(names)]
        order = ("exact", "compact") if r % 2 else ("compact", "exact")
        found = {}
        for label in order:
            t0 = time.perf_counter()
            _, found[label] = impls[label].apply(batch, at)
            times[label].append(time.perf_counter() - t0)
        keys = {k: {(a.check, a.metric) for a in v} for k, v in found.items()}
        flagged = {k: flagged[k] + len(v) for k, v in keys.items()}
        differ += len(keys["exact"] ^ keys["compact"])
    us = {k: statistics.median(v) / checks * 1e6 for k, v in times.items()}
    per_check = {k: v / checks for k, v in held.items()}
    return {
        "checks": checks,
        "samples_per_window": policy.max_samples,
        "windows_per_check": len(impls["compact"]._windows) / checks,
        "us_per_result": {k: round(v, 1) for k, v in us.items()},
        "ratio_compact_vs_exact": round(us["compact"] / us["exact"], 4),
        "bytes_per_check": {k: round(v) for k, v in per_check.items()},
        "memory_ratio_compact_vs_exact": round(per_check["compact"] / per_check["exact"], 4),
        "flagged": flagged,
        "flags_differ": differ,
        "flags_agree": differ == 0,
    }


# -- the cycle at N checks ------------------------------------------------------------------


def write_config(directory: Path, ports: list[int], n: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["[daemon]", 'state_dir = "state"', "[triage]", "enabled = false"]
    lines += ["[escalation]", "enabled = false"]  # the engine alone: no model calls
    for i in range(n):
        lines += check_lines(i, ports[i % len(ports)], "60s", "60s")
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def inject_warm(baselines: Any, results: list[Any], now: datetime) -> int:
    """Full windows for every figure these results carry, as if the daemon had run for days:
    the compact `Window` when this checkout has it, else the old deque of (datetime, float)."""
    from daemon.engine import baselines as module

    try:
        from daemon.engine.window import Window
    except ImportError:  # an older checkout: the deques it used
        Window = None
    size = baselines.policy.max_samples
    rng = random.Random(3)
    stamps = [now - timedelta(minutes=size - i) for i in range(size)]
    seconds = [s.timestamp() for s in stamps]
    windows = 0
    for result in results:
        baselines._loaded.add(result.check)
        for metric, value in module.metrics(result):
            values = [value * rng.uniform(0.8, 1.25) for _ in range(size)]
            key = (result.check, result.subject, metric)
            if Window is not None and hasattr(baselines, "_tick_s"):  # coded windows
                baselines._windows[key] = Window.of(values, seconds, size, baselines._tick_s)
            elif Window is not None:  # the windows of doubles (main at 25fa9ab)
                of: Any = Window.of
                baselines._windows[key] = of(values, seconds, size)
            else:  # each sample its own datetime, as rows read from the store would be
                pairs = zip((s + timedelta(0) for s in stamps), values, strict=True)
                baselines._windows[key] = deque(pairs, maxlen=size)
            windows += 1
    return windows


async def cycle_part(ports: list[int], n: int, rounds: int, workdir: Path) -> dict[str, Any]:
    import httpx

    from daemon.config.load import load_settings
    from daemon.runtime import open_runtime
    from daemon.util.time import utcnow

    settings = load_settings(write_config(workdir / f"n{n}", ports, n))
    specs = settings.enabled_checks
    rss_start = rss_mb()
    async with open_runtime(settings) as rt:
        pipeline, client = rt.pipeline, rt.ctx.http
        slots = asyncio.Semaphore(settings.daemon.max_concurrency)

        async def one(spec: Any) -> bool:
            async with slots:
                try:
                    if spec.type == "http":
                        reply = await client.get(str(spec.url), timeout=60)
                        return reply.status_code == 200
                    _, writer = await asyncio.open_connection(spec.host, spec.port)
                    writer.close()
                    await writer.wait_closed()
                    return True
                except (OSError, httpx.HTTPError):
                    return False

        async def bare() -> int:
            return sum(not ok for ok in await asyncio.gather(*(one(s) for s in specs)))

        first = await pipeline.run_checks(specs)  # warm-up: connections, imports
        await bare()
        assert pipeline.baselines is not None
        t0 = time.perf_counter()
        windows = inject_warm(pipeline.baselines, first, utcnow())
        inject_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await pipeline.record(first)  # the first commit writes every check's state
        first_record_s = time.perf_counter() - t0
        gc.collect()
        rss_warm = rss_mb()

        def db_bytes() -> int:
            with rt.store.db.transaction(write=False) as conn:
                row = conn.execute("PRAGMA page_count").fetchone()[0]
                return int(row) * int(conn.execute("PRAGMA page_size").fetchone()[0])

        db0, io0 = db_bytes(), written_bytes()
        times: dict[str, list[float]] = {"bare": [], "cycle": [], "checks": [], "engine": []}
        not_ok = {"bare": 0, "cycle": 0}
        for r in range(rounds):
            for variant in ("bare", "cycle") if r % 2 == 0 else ("cycle", "bare"):
                t0 = time.perf_counter()
                if variant == "bare":
                    not_ok["bare"] += await bare()
                    times["bare"].append(time.perf_counter() - t0)
                    continue
                results = await pipeline.run_checks(specs)
                t1 = time.perf_counter()
                await pipeline.record(results)
                t2 = time.perf_counter()
                not_ok["cycle"] += sum(x.status not in ("ok", "degraded") for x in results)
                times["cycle"].append(t2 - t0)
                times["checks"].append(t1 - t0)
                times["engine"].append(t2 - t1)
        db1, io1 = db_bytes(), written_bytes()
        # Spread starts: the same results arriving as one cycle a second over a minute.
        results = await pipeline.run_checks(specs)
        step = -(-n // SPREAD_CYCLES)
        t0 = time.perf_counter()
        for i in range(0, n, step):
            await pipeline.record(results[i : i + step])
        spread_s = time.perf_counter() - t0
        rss_end = rss_mb()
    ratios = [c / b for c, b in zip(times["cycle"], times["bare"], strict=True)]
    return {
        "n": n,
        "rounds": rounds,
        "windows": windows,
        "inject_s": round(inject_s, 2),
        "first_record_s": round(first_record_s, 3),
        "median_s": {k: round(statistics.median(v), 3) for k, v in times.items()},
        "ratio_cycle_vs_bare": round(statistics.median(ratios), 3),
        "engine_us_per_result": round(statistics.median(times["engine"]) / n * 1e6, 1),
        "engine_us_per_result_spread": round(spread_s / n * 1e6, 1),
        "rss_mb": {
            "start": round(rss_start, 1),
            "warm": round(rss_warm, 1),
            "end": round(rss_end, 1),
        },
        "rss_kb_per_check": round((rss_warm - rss_start) * 1024 / n, 1),
        "db_bytes_per_cycle": (db1 - db0) // rounds,
        "disk_written_bytes_per_cycle": (io1 - io0) // rounds,
        "not_ok": not_ok,
    }


# -- the scheduler's own overhead -----------------------------------------------------------


async def scheduler_part(jobs: int, interval_s: float, seconds: float) -> dict[str, Any]:
    """CPU per run of a no-op check: APScheduler with one job per check, against one job per
    interval that starts its checks spread over the interval. Same runs either way."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    fired = [0]

    async def check(name: str) -> None:
        fired[0] += 1

    async def spread(names: list[str]) -> None:
        loop = asyncio.get_running_loop()
        step = interval_s / len(names)
        for i, name in enumerate(names):
            loop.call_later(i * step, lambda n=name: loop.create_task(check(n)))

    async def measure(setup: Callable[[Any], None]) -> dict[str, float]:
        scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        t0 = time.perf_counter()
        setup(scheduler)
        scheduler.start()
        setup_s = time.perf_counter() - t0
        await asyncio.sleep(interval_s)  # every job has started once: steady state
        fired[0] = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, runs = time.process_time() - cpu0, fired[0]
        wall = time.perf_counter() - wall0
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.1)
        return {
            "setup_s": round(setup_s, 3),
            "runs": runs,
            "cpu_s": round(cpu, 3),
            "cpu_share": round(cpu / wall, 4),
            "cpu_us_per_run": round(cpu / max(runs, 1) * 1e6, 1),
        }

    names = [f"c{i:05d}" for i in range(jobs)]
    start = datetime.now(UTC)

    def per_job(scheduler: Any) -> None:
        for i, name in enumerate(names):
            scheduler.add_job(
                check,
                IntervalTrigger(seconds=interval_s, timezone=UTC),
                args=[name],
                id=name,
                next_run_time=start + timedelta(seconds=interval_s * i / jobs),
            )

    def grouped(scheduler: Any) -> None:
        scheduler.add_job(
            spread,
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            args=[names],
            next_run_time=start,
        )

    first = await measure(per_job)
    second = await measure(grouped)
    return {
        "jobs": jobs,
        "interval_s": interval_s,
        "per_job": first,
        "grouped": second,
        "ratio_per_job_vs_grouped": round(
            first["cpu_us_per_run"] / max(second["cpu_us_per_run"], 0.1), 2
        ),
    }


# -- the run ----------------------------------------------------------------------------------


async def run(args: Any) -> dict[str, Any]:
    from bench.scale_daemon import daemon_part

    data: dict[str, Any] = {"bench": "scale", "machine": machine(), "parts": sorted(args.parts)}
    if "baselines" in args.parts:
        data["baselines"] = baselines_part(args.baseline_checks, args.baseline_rounds)
    if "scheduler" in args.parts:
        data["scheduler"] = await scheduler_part(args.jobs, args.interval, args.sched_seconds)
    sizes, daemons = [], []
    with loopback_http(ports=4) as ports, tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes if "cycle" in args.parts else ():
            sizes.append(await cycle_part(ports, n, args.rounds, Path(tmp)))
            gc.collect()
        for n in args.daemon_sizes if "daemon" in args.parts else ():
            daemons.append(
                await asyncio.to_thread(
                    daemon_part, ports, n, args.fail_share, args.daemon_s, args.daemon_interval
                )
            )
        data["reseed"] = [
            reseed_part(n, args.reseed_rows, args.reseed_sample, Path(tmp))
            for n in (args.reseed_sizes if "reseed" in args.parts else ())
        ]
    data["sizes"], data["daemon"] = sizes, daemons
    targets: dict[str, Any] = {}
    if "baselines" in data:
        base = data["baselines"]
        targets["baseline_judge_le_50us"] = base["us_per_result"]["compact"] <= TARGET_ENGINE_US
        targets["window_le_16kb"] = (
            base["bytes_per_check"]["compact"] / base["windows_per_check"] <= 16 * 1024
        )
    if sizes:
        largest = sizes[-1]
        targets["engine_le_50us_per_result"] = largest["engine_us_per_result"] <= TARGET_ENGINE_US
        targets["rss_le_300mb"] = largest["rss_mb"]["warm"] <= TARGET_RSS_MB
        targets["cycle_le_1_2x_bare"] = largest["ratio_cycle_vs_bare"] <= TARGET_CYCLE_RATIO
        targets["at_n"] = largest["n"]
    data["targets"] = targets
    return data


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"bench.scale — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}", ""]
    if "baselines" in data:
        lines += render_baselines(data["baselines"])
    if "scheduler" in data:
        lines += render_scheduler(data["scheduler"])
    lines += [render_size(z) for z in data["sizes"]]
    lines += [render_daemon(z) for z in data["daemon"]]
    lines += [render_reseed(z) for z in data.get("reseed", [])]
    t = data["targets"]
    lines.append("")
    lines.append(
        "targets: "
        + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in t.items() if k != "at_n")
        + (f" (at N={t['at_n']})" if "at_n" in t else "")
    )
    return "\n".join(lines)


def render_baselines(b: dict[str, Any]) -> list[str]:
    return [
        f"baselines, {b['checks']} checks, {b['samples_per_window']} samples a window, "
        f"{b['windows_per_check']:.0f} windows a check (flagged: exact "
        f"{b['flagged']['exact']}, compact {b['flagged']['compact']}, differing "
        f"{b['flags_differ']}):",
        f"  judge a result: exact {b['us_per_result']['exact']:.0f} us, compact "
        f"{b['us_per_result']['compact']:.0f} us = {b['ratio_compact_vs_exact']:.3f}x",
        f"  memory a check: exact {b['bytes_per_check']['exact'] / 1024:.0f} KB, compact "
        f"{b['bytes_per_check']['compact'] / 1024:.0f} KB = "
        f"{b['memory_ratio_compact_vs_exact']:.3f}x",
        "",
    ]


def render_scheduler(s: dict[str, Any]) -> list[str]:
    lines = [f"scheduler, {s['jobs']} no-op checks every {s['interval_s']:g} s:"]
    for label in ("per_job", "grouped"):
        x = s[label]
        lines.append(
            f"  {label:8} setup {x['setup_s']:.2f} s, {x['runs']} runs, "
            f"{x['cpu_us_per_run']:.0f} us CPU a run ({x['cpu_share'] * 100:.1f} % of a core)"
        )
    lines.append(f"  per-job / grouped CPU a run: {s['ratio_per_job_vs_grouped']:.2f}x")
    return [*lines, ""]


def render_size(z: dict[str, Any]) -> str:
    return (
        f"N={z['n']}: cycle {z['median_s']['cycle']:.2f} s vs bare gather (equal "
        f"concurrency) {z['median_s']['bare']:.2f} s = {z['ratio_cycle_vs_bare']:.2f}x; "
        f"engine {z['engine_us_per_result']:.0f} us a result (in {SPREAD_CYCLES} cycles: "
        f"{z['engine_us_per_result_spread']:.0f} us); RSS warm "
        f"{z['rss_mb']['warm']:.0f} MB ({z['rss_kb_per_check']:.0f} KB a check); "
        f"DB +{z['db_bytes_per_cycle'] / 1e6:.2f} MB a cycle, disk writes "
        f"{z['disk_written_bytes_per_cycle'] / 1e6:.1f} MB a cycle; not ok {z['not_ok']}"
    )


def main() -> None:
    p = parser("Baselines, evaluation, commit and scheduler cost at thousands of checks.")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated N values")
    p.add_argument("--rounds", type=int, default=2, help="interleaved cycle/bare rounds per N")
    p.add_argument("--baseline-checks", type=int, default=50)
    p.add_argument("--baseline-rounds", type=int, default=6)
    p.add_argument("--jobs", type=int, default=10000, help="scheduler jobs")
    p.add_argument("--interval", type=float, default=10.0, help="scheduler interval, seconds")
    p.add_argument("--sched-seconds", type=float, default=10.0, help="measured per variant")
    p.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated: " + ",".join(PARTS + EXTRA_PARTS)
    )
    p.add_argument("--reseed-sizes", default="1000,10000", help="N for the reseed part")
    p.add_argument("--reseed-rows", type=int, default=2000, help="stored results a check")
    p.add_argument("--reseed-sample", type=int, default=1000, help="checks the rebuild is timed on")
    p.add_argument("--daemon-sizes", default="10000", help="N for `watchkeeper run`")
    p.add_argument("--fail-share", type=float, default=0.1, help="checks failing, daemon part")
    p.add_argument("--daemon-s", type=float, default=900.0, help="daemon part's time limit")
    p.add_argument("--daemon-interval", type=int, default=30, help="daemon part's check interval")
    args = p.parse_args()
    args.sizes = tuple(sorted(int(x) for x in args.sizes.split(",") if x.strip()))
    args.daemon_sizes = tuple(sorted(int(x) for x in args.daemon_sizes.split(",") if x.strip()))
    args.reseed_sizes = tuple(sorted(int(x) for x in args.reseed_sizes.split(",") if x.strip()))
    args.parts = set(args.parts.split(",")) & set(PARTS + EXTRA_PARTS)
    isolate_this_process()
    quiet_logs()
    data = asyncio.run(run(args))
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
