"""Footprint of the daemon: resident memory of a real `watchkeeper run` with 50 checks every
second (HTTP and TCP against loopback servers, a Kubernetes check against the test fake, an
AWS CloudWatch check against moto), sampled as cycles accumulate; and `watchkeeper --help`
start-up time as a ratio to a bare `python -c pass`.

Everything the daemon talks to is started here on 127.0.0.1 and stopped here; the daemon gets
SIGTERM at the end. Bounded: `--max-seconds` (default 180). `--quick` is the smoke-test size.
Run: `python -m bench.footprint [--quick] [--json]`.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    REPO,
    emit,
    fmt_ratio,
    isolate_this_process,
    isolated_env,
    loopback_http,
    machine,
    median,
    parser,
    table,
    verdict,
)

PLAIN_CYCLES = 15
"""Cycles of the comparison run with HTTP and TCP checks only."""
RSS_LIMIT_MB = 80.0
GROWTH_LIMIT_MB = 1.0
"""'No growth' between the two compared samples: idle runs stay within 0.1 MB, so a rise above
this is real (the README says what grows)."""
HELP_LIMIT = 5.0
REFERENCE_CHECK = "http-00"
AWS_REGION = "eu-west-1"


@dataclass
class Plan:
    checks: int
    samples: tuple[int, ...]
    """Cycles (results of the reference check) at which RSS is read."""
    compare: tuple[int, int]
    """The two samples whose difference is the growth."""
    help_runs: int
    with_k8s: bool
    with_aws: bool
    max_seconds: float
    notes: list[str] = field(default_factory=list)


def plan(quick: bool, max_seconds: float) -> Plan:
    from jobs import CHECK_TYPES

    if quick:
        return Plan(10, (3, 6), (3, 6), 3, False, False, min(max_seconds, 40))
    p = Plan(50, (10, 25, 50, 75, 100), (50, 100), 10, True, True, max_seconds)
    if "aws_cloudwatch" not in CHECK_TYPES:
        p.with_aws = False
        p.notes.append(
            "aws_cloudwatch is not registered in jobs.CHECK_TYPES: a TCP check takes its place"
        )
    return p


# -- the estate the daemon watches ------------------------------------------------------------


@contextmanager
def fake_kubernetes(tmp: Path) -> Iterator[Path]:
    from tests.peers.kubernetes import FakeCluster, FakeKubernetes, deployment, healthy_pod

    cluster = FakeCluster()
    cluster.add(
        healthy_pod("checkout-7d9c-x2x9k"),
        healthy_pod("checkout-7d9c-p4k2m"),
        deployment("checkout", replicas=2, available=2),
    )
    server = FakeKubernetes(cluster).start()
    try:
        yield server.kubeconfig(tmp / "kubeconfig")
    finally:
        server.stop()


@contextmanager
def moto_server(tmp: Path) -> Iterator[dict[str, str]]:
    """moto on loopback, and the environment that points boto3 at it (and nowhere else)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    (tmp / "aws-config").write_text("")
    (tmp / "aws-credentials").write_text("")
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            "AWS_CONFIG_FILE": str(tmp / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    finally:
        server.stop()


def write_config(
    tmp: Path, p: Plan, ports: list[int], ollama_url: str, kubeconfig: Path | None
) -> Path:
    lines = [
        "[daemon]",
        'state_dir = "state"',
        'log_level = "warning"',
        'log_format = "json"',
        'drain_timeout = "3s"',
        "[providers.ollama]",
        f'base_url = "{ollama_url}"',
        "[routing]",
        'triage = ["ollama/gemma4:27b"]',
        'rca = ["ollama/gemma4:27b"]',
    ]

    def check(name: str, kind: str, *extra: str) -> None:
        lines.extend(
            ["[[checks]]", f'name = "{name}"', f'type = "{kind}"', 'interval = "1s"', *extra]
        )

    special = int(kubeconfig is not None) + int(p.with_aws)
    plain = p.checks - special
    http = (plain * 3) // 5
    for i in range(http):
        check(f"http-{i:02d}", "http", f'url = "http://127.0.0.1:{ports[i % len(ports)]}/h/{i}"')
    for i in range(plain - http):
        check(f"tcp-{i:02d}", "tcp", 'host = "127.0.0.1"', f"port = {ports[i % len(ports)]}")
    if kubeconfig is not None:
        check(
            "k8s-prod",
            "kubernetes",
            f'kubeconfig = "{kubeconfig}"',
            'namespaces = ["prod"]',
            "nodes = false",
        )
    if p.with_aws:
        check("aws-alarms", "aws_cloudwatch", 'mode = "alarms"', f'region = "{AWS_REGION}"')
    path = tmp / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- measuring ------------------------------------------------------------------------------


def watchkeeper_command() -> list[str]:
    script = Path(sys.executable).parent / "watchkeeper"
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon"]


def status_kb(pid: int, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def cycles_recorded(db: Path) -> int:
    """Results of the reference check: one per cycle it ran in."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute(
                "SELECT count(*) FROM check_results WHERE check_name = ?", (REFERENCE_CHECK,)
            ).fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0


def not_ok(db: Path) -> tuple[dict[str, int], list[str], int]:
    """Results that were not ok, per check, a few of their evidence sentences, and how many
    incidents they opened."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT check_name, count(*) FROM check_results WHERE status != 'ok' "
            "GROUP BY check_name"
        ).fetchall()
        examples = conn.execute(
            "SELECT DISTINCT status || ': ' || evidence FROM check_results "
            "WHERE status != 'ok' LIMIT 5"
        ).fetchall()
        incidents = int(conn.execute("SELECT count(*) FROM incidents").fetchone()[0])
    counts = {str(name): int(count) for name, count in rows}
    return counts, [str(e[0]) for e in examples], incidents


def watch_daemon(config: Path, env: dict[str, str], p: Plan, tmp: Path) -> dict[str, Any]:
    from daemon.store.database import DB_NAME

    db = tmp / "state" / DB_NAME
    log = (tmp / "daemon.log").open("w")
    command = [*watchkeeper_command(), "run", "--config", str(config)]
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    deadline = started + p.max_seconds
    pending = list(p.samples)
    try:
        while pending and time.monotonic() < deadline and proc.poll() is None:
            cycles = cycles_recorded(db)
            if cycles >= pending[0]:
                rss = status_kb(proc.pid, "VmRSS")
                samples.append(
                    {
                        "cycle": cycles,
                        "rss_mb": None if rss is None else round(rss / 1024, 1),
                        "t_s": round(time.monotonic() - started, 1),
                    }
                )
                while pending and cycles >= pending[0]:
                    pending.pop(0)
            time.sleep(0.2)
        peak = status_kb(proc.pid, "VmHWM")
        exited_early = proc.poll() is not None
    finally:
        code = stop(proc)
        log.close()
    tail = (tmp / "daemon.log").read_text().splitlines()[-5:]
    counts, examples, incidents = not_ok(db) if db.exists() else ({}, [], 0)
    return {
        "command": " ".join(Path(command[0]).name if i == 0 else c for i, c in enumerate(command)),
        "samples": samples,
        "peak_rss_mb": None if peak is None else round(peak / 1024, 1),
        "seconds": round(time.monotonic() - started, 1),
        "cycles_reached": cycles_recorded(db),
        "complete": not pending,
        "exited_early": exited_early,
        "exit_code": code,
        "not_ok_results": counts,
        "not_ok_examples": examples,
        "incidents_opened": incidents,
        "log_tail": tail if exited_early or code not in (0, None) else [],
    }


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child, by its handle
        proc.wait()
        return None


def startup_times(runs: int) -> dict[str, Any]:
    """`watchkeeper --help` against `python -c pass`, interleaved, median of each."""
    env = isolated_env()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "watchkeeper --help": [*watchkeeper_command(), "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # one untimed run each: page cache, .pyc files
        subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    for _ in range(runs):
        for name, command in commands.items():
            t0 = time.perf_counter()
            subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    bare, helped = median(times["python -c pass"]), median(times["watchkeeper --help"])
    return {
        "runs": runs,
        "python_c_pass_ms": round(bare * 1000, 1),
        "help_ms": round(helped * 1000, 1),
        "ratio": round(helped / bare, 2),
    }


_RSS = "import re; print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
IMPORT_STAGES = (
    ("python", ""),
    (
        "+ the daemon's run path",
        "import daemon.cli, daemon.service.daemon, daemon.runtime, daemon.engine.triage, "
        "jobs.http, jobs.tcp, apscheduler.schedulers.asyncio",
    ),
    (
        "+ the web listener and console ([web] enabled or health_listen set)",
        "import daemon.service.health, daemon.web.listener, daemon.web.console, "
        "daemon.web.app, daemon.web.metrics, uvicorn, uvicorn.protocols.http.h11_impl, "
        "starlette.applications, starlette.staticfiles, jinja2, prometheus_client",
    ),
    ("+ kubernetes client", "import kubernetes.client, kubernetes.config"),
    (
        "+ boto3 cloudwatch client",
        "import boto3; boto3.client('cloudwatch', region_name='eu-west-1')",
    ),
)


def import_costs() -> list[dict[str, Any]]:
    """RSS of a fresh interpreter after each cumulative stage of imports: what the daemon's
    resident memory is made of before it has done any work."""
    env = isolated_env(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    out: list[dict[str, Any]] = []
    code: list[str] = []
    previous = 0.0
    for label, statement in IMPORT_STAGES:
        if statement:
            code.append(statement)
        reply = subprocess.run(
            [sys.executable, "-c", "; ".join([*code, _RSS])],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        rss = int(reply.stdout.split()[-1]) / 1024
        out.append({"stage": label, "rss_mb": round(rss, 1), "delta_mb": round(rss - previous, 1)})
        previous = rss
    return out


def help_imports(top: int = 8) -> list[dict[str, Any]]:
    """Where `watchkeeper --help` spends its import time: self time summed per top-level
    package (python -X importtime)."""
    reply = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "daemon", "--help"],
        env=isolated_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    packages: dict[str, int] = {}
    for line in reply.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, _, name = line.partition(":")[2].split("|")
        package = name.strip().split(".")[0]
        packages[package] = packages.get(package, 0) + int(self_us)
    ranked = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked]


RUN_PATH_PACKAGES = (
    "pydantic_settings",
    "httpx",
    "apprise",
    "structlog",
    "apscheduler.schedulers.asyncio",
    "click",
    "daemon.config.settings",
)


def package_rss() -> list[dict[str, Any]]:
    """RSS each package of the run path adds to a bare interpreter on its own (they share
    dependencies, so these overlap and do not add up)."""
    env = isolated_env()

    def rss(statement: str) -> float:
        reply = subprocess.run(
            [sys.executable, "-c", f"{statement}; {_RSS}" if statement else _RSS],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return int(reply.stdout.split()[-1]) / 1024

    bare = rss("")
    rows = [
        {"package": name, "delta_mb": round(rss(f"import {name}") - bare, 1)}
        for name in RUN_PATH_PACKAGES
    ]
    return sorted(rows, key=lambda r: -float(r["delta_mb"]))


def baselines_full_windows(checks: int, http_checks: int) -> dict[str, Any]:
    """Memory `daemon.engine.baselines` holds once every window is full (`max_samples` each)
    for this estate — reached after max_samples cycles, far beyond the 100 sampled above."""
    from daemon.config.settings import Settings
    from daemon.engine.baselines import BaselinePolicy, Baselines
    from daemon.models import CheckResult

    policy = BaselinePolicy.from_settings(Settings().baselines)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    step = min(timedelta(seconds=1), policy.window / (policy.max_samples + 1))

    def result(name: str, at: datetime, i: int) -> CheckResult:
        latency = 1.0 + (i % 17) / 10
        values: dict[str, float | int | str | bool | None] = (
            {"latency_ms": latency, "status_code": 200, "body_bytes": 2}
            if name.startswith("http")
            else {"connect_ms": latency, "bytes_received": 0}
        )
        return CheckResult.model_construct(
            check=name,
            status="ok",
            evidence="",
            started_at=at,
            latency_ms=latency,
            subject=None,
            values=values,
            labels={},
        )

    def load(name: str, limit: int) -> list[CheckResult]:
        return [result(name, now - step * (i + 1), i) for i in range(limit)]

    names = [f"http-{i:02d}" for i in range(http_checks)]
    names += [f"tcp-{i:02d}" for i in range(checks - http_checks)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    baselines = Baselines(policy, load)
    baselines.apply([result(n, now, 0) for n in names], now)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    windows = len(getattr(baselines, "_windows"))  # noqa: B009 - private, counted for the report
    return {
        "checks": checks,
        "windows": windows,
        "samples_per_window": policy.max_samples,
        "mb": round(held / 2**20, 1),
        "bytes_per_sample": round(held / (windows * policy.max_samples)),
    }


def run(quick: bool, max_seconds: float) -> dict[str, Any]:
    p = plan(quick, max_seconds)
    from tests.peers.providers.ollama import FakeOllama

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        ports = stack.enter_context(loopback_http(ports=4, max_seconds=p.max_seconds + 120))
        ollama = stack.enter_context(FakeOllama())
        kubeconfig = stack.enter_context(fake_kubernetes(tmp)) if p.with_k8s else None
        aws_env = stack.enter_context(moto_server(tmp)) if p.with_aws else {}
        config = write_config(tmp, p, ports, ollama.url, kubeconfig)
        daemon = watch_daemon(config, isolated_env(aws_env), p, tmp)
        plain = None
        if p.with_k8s or p.with_aws:  # the same number of checks, HTTP and TCP only
            short = replace(p, samples=(PLAIN_CYCLES,), with_k8s=False, with_aws=False)
            (tmp / "plain").mkdir()
            config = write_config(tmp / "plain", short, ports, ollama.url, None)
            plain = watch_daemon(config, isolated_env(), short, tmp / "plain")
    startup = startup_times(p.help_runs)
    startup["heaviest_imports"] = help_imports()
    imports = import_costs()
    packages = [] if quick else package_rss()
    http_checks = (p.checks - int(p.with_k8s) - int(p.with_aws)) * 3 // 5
    windows = baselines_full_windows(p.checks, http_checks)
    return summarise(p, daemon, plain, startup, windows, imports, packages)


def slope_per_100(samples: list[dict[str, Any]], since: int) -> float | None:
    """Least-squares RSS growth in MB per 100 cycles, over the samples from cycle `since`."""
    points = [
        (float(s["cycle"]), float(s["rss_mb"]))
        for s in samples
        if s["cycle"] >= since and s["rss_mb"] is not None
    ]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if not var:
        return None
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return round(cov / var * 100, 2)


def summarise(
    p: Plan,
    daemon: dict[str, Any],
    plain: dict[str, Any] | None,
    startup: dict[str, Any],
    windows: dict[str, Any],
    imports: list[dict[str, Any]],
    packages: list[dict[str, Any]],
) -> dict[str, Any]:
    samples = daemon["samples"]
    first = next((s for s in samples if s["cycle"] >= p.compare[0]), None)
    last = next((s for s in samples if s["cycle"] >= p.compare[1]), None)
    rss_values = [s["rss_mb"] for s in samples if s["rss_mb"] is not None]
    growth = None
    if first and last and first["rss_mb"] is not None and last["rss_mb"] is not None:
        growth = round(last["rss_mb"] - first["rss_mb"], 1)
    worst = max(rss_values) if rss_values else None
    return {
        "bench": "footprint",
        "machine": machine(),
        "quick": p.checks < 50,
        "checks": p.checks,
        "check_types": {
            "http": (p.checks - int(p.with_k8s) - int(p.with_aws)) * 3 // 5,
            "tcp": p.checks
            - int(p.with_k8s)
            - int(p.with_aws)
            - (p.checks - int(p.with_k8s) - int(p.with_aws)) * 3 // 5,
            "kubernetes": int(p.with_k8s),
            "aws_cloudwatch": int(p.with_aws),
        },
        "notes": p.notes,
        "daemon": daemon,
        "rss_first_mb": None if first is None else first["rss_mb"],
        "rss_last_mb": None if last is None else last["rss_mb"],
        "rss_growth_mb": growth,
        # from the second sample on: the first still carries start-up allocations
        "rss_slope_mb_per_100_cycles": slope_per_100(
            samples, p.samples[1] if len(p.samples) > 2 else p.samples[0]
        ),
        "http_tcp_only": None
        if plain is None
        else {
            "checks": p.checks,
            "cycle": plain["samples"][-1]["cycle"] if plain["samples"] else None,
            "rss_mb": plain["samples"][-1]["rss_mb"] if plain["samples"] else None,
        },
        "startup": startup,
        "baselines_full_windows": windows,
        "import_rss": imports,
        "import_rss_by_package": packages,
        "targets": {
            "rss_le_80mb": {
                "max_rss_mb": worst,
                "limit": RSS_LIMIT_MB,
                "met": None if worst is None else worst <= RSS_LIMIT_MB,
            },
            "no_growth": {
                "between_cycles": list(p.compare),
                "growth_mb": growth,
                "limit_mb": GROWTH_LIMIT_MB,
                "met": None if growth is None else growth <= GROWTH_LIMIT_MB,
            },
            "help_le_5x_python": {
                "ratio": startup["ratio"],
                "limit": HELP_LIMIT,
                "met": startup["ratio"] <= HELP_LIMIT,
            },
        },
    }


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    d = data["daemon"]
    types = ", ".join(f"{v} {k}" for k, v in data["check_types"].items() if v)
    lines = [
        f"bench.footprint — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}",
        f"`{d['command']}` with {data['checks']} checks every 1 s ({types}); "
        f"{d['cycles_reached']} cycles in {d['seconds']:.0f} s, exit code {d['exit_code']}",
        *[f"note: {n}" for n in data["notes"]],
        "",
        table(
            ["cycle", "VmRSS", "elapsed"],
            [[s["cycle"], f"{s['rss_mb']} MB", f"{s['t_s']} s"] for s in d["samples"]],
        ),
        f"peak (VmHWM): {d['peak_rss_mb']} MB; trend "
        f"{data['rss_slope_mb_per_100_cycles']} MB per 100 cycles (least squares, later samples)",
        f"not-ok results: {d['not_ok_results'] or 'none'}; incidents opened: "
        f"{d['incidents_opened']}",
        *[f"  e.g. {e}" for e in d["not_ok_examples"][:3]],
        "",
    ]
    plain = data["http_tcp_only"]
    if plain is not None:
        lines.append(
            f"same {plain['checks']} checks, HTTP and TCP only: {plain['rss_mb']} MB at cycle "
            f"{plain['cycle']}"
        )
    s = data["startup"]
    lines.append(
        f"start-up (median of {s['runs']}, interleaved): "
        f"python -c pass {s['python_c_pass_ms']} ms, "
        f"watchkeeper --help {s['help_ms']} ms = {fmt_ratio(s['ratio'])}"
    )
    lines.append(
        "--help import time by package (self time): "
        + ", ".join(f"{r['package']} {r['self_ms']:.0f} ms" for r in s["heaviest_imports"])
    )
    lines.append(
        "RSS after imports alone (fresh interpreter, cumulative): "
        + ", ".join(
            f"{r['stage']} {r['rss_mb']} MB ({r['delta_mb']:+.1f})" for r in data["import_rss"]
        )
    )
    if data["import_rss_by_package"]:
        lines.append(
            "RSS each run-path package adds alone (overlapping): "
            + ", ".join(
                f"{r['package']} +{r['delta_mb']} MB" for r in data["import_rss_by_package"]
            )
        )
    w = data["baselines_full_windows"]
    lines.append(
        f"baselines with every window full ({w['windows']} windows x {w['samples_per_window']} "
        f"samples): {w['mb']} MB ({w['bytes_per_sample']} B a sample) — not reached in this run"
    )
    t = data["targets"]
    lines += [
        "",
        f"RSS <= {RSS_LIMIT_MB:g} MB: max {t['rss_le_80mb']['max_rss_mb']} MB — "
        f"{verdict(t['rss_le_80mb']['met'])}",
        f"no growth cycle {t['no_growth']['between_cycles'][0]} -> "
        f"{t['no_growth']['between_cycles'][1]} (<= {GROWTH_LIMIT_MB:g} MB): "
        f"{t['no_growth']['growth_mb']} MB — {verdict(t['no_growth']['met'])}",
        f"--help <= {HELP_LIMIT:g}x python -c pass: {fmt_ratio(s['ratio'])} — "
        f"{verdict(t['help_le_5x_python']['met'])}",
    ]
    if d["log_tail"]:
        lines += ["daemon log tail:", *d["log_tail"]]
    return "\n".join(lines)


def main() -> None:
    p = parser("RSS of a running daemon, and --help start-up time against a bare interpreter.")
    p.add_argument("--quick", action="store_true", help="10 checks, 6 cycles, 3 start-up runs")
    p.add_argument("--max-seconds", type=float, default=180, help="bound on the daemon run")
    args = p.parse_args()
    isolate_this_process()
    os.chdir(REPO)
    data = run(args.quick, args.max_seconds)
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
