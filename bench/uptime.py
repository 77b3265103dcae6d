"""Uptime over a big store: what `watchkeeper uptime` (and the digest's uptime section, and
`history`) cost on 1,000 checks x 7 days of results at 60 s — 10 million rows.

The store is seeded in SQL (indexes dropped, rows inserted in time order as the daemon writes
them, the same indexes created again), with an outage per check, degraded and error runs, and
one check in a hundred that stores three results a run. Measured, interleaved, medians:

- `bare_count`: `SELECT COUNT(*)` over the table, the floor of reading every row once;
- `uptime`: the command's own `collect` (24h, 7d, 30d, month and the 1h/24h burn windows);
- `naive_exact`: the one-query way (group every row into runs, then count per window);
- `digest_section`: the daily digest's uptime section (24h, and 30d for SLO checks);
- `history_7d`: one check's runs and status changes over 7 days.

Then `cli_json` (the real `watchkeeper uptime --json` process, once) and `proposed_index`: what
an index on (check_name, started_at, status) would give (one streaming pass), to weigh a
schema migration. The figures of `uptime` and `naive_exact` must agree exactly.
Run: `python -m bench.uptime [--checks 1000] [--days 7] [--repeats 3] [--json]`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import (
    REPO,
    emit,
    isolate_this_process,
    isolated_env,
    machine,
    median,
    parser,
    quiet_logs,
    table,
)

INTERVAL_S = 60
MULTI_EVERY = 100
"""One check in this many is a `prometheus` check storing three results per run."""
SLO_EVERY = 10
WINDOWS = "24h,7d,30d,month"
INDEXES = (
    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'check_results' "
    "AND sql IS NOT NULL"
)
PROMETHEUS = (
    'type = "prometheus"\nurl = "http://127.0.0.1:9"\nquery = "up"\nop = "<"\nthreshold = 1\n'
)


def seed(state: Path, checks: int, days: int, now: datetime) -> dict[str, Any]:
    """The store, filled in SQL as fast as SQLite goes: the two check_results indexes are
    dropped, the rows inserted in time order, and the same indexes created again."""
    from daemon.store import Store

    Store.open(state).close()  # the real schema, migrated
    conn = sqlite3.connect(state / "watchkeeper.db", isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    indexes = [row[0] for row in conn.execute(INDEXES)]
    started = time.perf_counter()
    runs = days * 86400 // INTERVAL_S
    base = now.timestamp() - runs * INTERVAL_S
    conn.execute("BEGIN")
    for name in [r[0] for r in conn.execute(INDEXES.replace("sql FROM", "name FROM"))]:
        conn.execute(f"DROP INDEX {name}")
    # Per check j: an outage of 30 runs somewhere, a degraded run in 101, an error run in 997;
    # checks with j % MULTI_EVERY == 0 store three results a run (one per "series").
    conn.execute(
        """
        WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < :runs - 1),
        j(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM j WHERE n < :checks - 1),
        k(n) AS (VALUES (0), (1), (2))
        INSERT INTO check_results (check_name, status, started_at, latency_ms, subject,
            evidence, values_json, labels_json)
        SELECT printf('check-%05d', j.n),
            CASE WHEN (i.n - (j.n * 7919) % :runs + :runs) % :runs < 30 THEN 'failing'
                 WHEN (i.n + j.n) % 997 = 0 THEN 'error'
                 WHEN (i.n + j.n) % 101 = 0 THEN 'degraded' ELSE 'ok' END,
            strftime('%Y-%m-%dT%H:%M:%f', :base + i.n * :every + j.n % 60 + j.n * 0.000001,
                'unixepoch') || '000+00:00',
            12.5, CASE WHEN j.n % :multi = 0 THEN 'series-' || k.n END,
            'HTTP GET http://svc-' || j.n || '.internal/health returned 200 in 12 ms',
            '{"status_code": 200, "latency_ms": 12.5}', '{"type": "http", "tag:prod": "1"}'
        FROM i, j, k WHERE k.n = 0 OR j.n % :multi = 0
        ORDER BY i.n, j.n, k.n
        """,
        {"runs": runs, "checks": checks, "base": base, "every": INTERVAL_S, "multi": MULTI_EVERY},
    )
    for sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    rows = conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0]
    conn.close()
    size = (state / "watchkeeper.db").stat().st_size
    return {"rows": rows, "seed_s": round(time.perf_counter() - started, 1), "db_mb": size / 2**20}


def write_config(path: Path, state: Path, checks: int) -> None:
    lines = [f'[daemon]\nstate_dir = "{state}"\nretention = "14d"\n']
    for j in range(checks):
        slo = "slo = 99.9\n" if j % SLO_EVERY == 0 else ""
        if j % MULTI_EVERY == 0:
            kind = PROMETHEUS
        else:
            kind = f'type = "http"\nurl = "http://svc-{j}.internal/health"\n'
        lines.append(
            f'[[checks]]\nname = "check-{j:05d}"\n{kind}interval = "1m"\ntags = ["prod"]\n{slo}'
        )
    path.write_text("\n".join(lines), encoding="utf-8")


NAIVE = """
WITH runs AS (
  SELECT check_name, started_at AS t, MAX(CASE status WHEN 'failing' THEN 3 WHEN 'error' THEN 2
      WHEN 'degraded' THEN 1 ELSE 0 END) AS s
  FROM check_results WHERE started_at >= :lo AND started_at < :hi GROUP BY check_name, started_at)
SELECT check_name, {cols} FROM runs GROUP BY check_name
"""

PROPOSED = """
SELECT check_name, {cols} FROM check_results INDEXED BY check_results_uptime
WHERE started_at >= :lo AND started_at < :hi GROUP BY check_name
"""


def naive_counts(db: Path, marks: list[str], hi: str) -> dict[str, list[tuple[int, ...]]]:
    """Every window's (ok, degraded, error, failing) runs per check, the obvious way."""
    cols = ", ".join(f"SUM(t >= '{m}' AND s = {rank})" for m in marks for rank in range(4))
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(NAIVE.format(cols=cols), {"lo": min(marks), "hi": hi}).fetchall()
    finally:
        conn.close()
    return {r[0]: [tuple(r[1 + 4 * i : 5 + 4 * i]) for i in range(len(marks))] for r in rows}


def proposed_counts(db: Path, marks: list[str], hi: str) -> int:
    """The single streaming pass an index on (check_name, started_at, status) allows (rows
    as runs; exact for checks with one result a run)."""
    cols = ", ".join(
        f"SUM(started_at >= '{m}' AND status = '{s}')"
        for m in marks
        for s in ("ok", "degraded", "error", "failing")
    )
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(PROPOSED.format(cols=cols), {"lo": min(marks), "hi": hi}).fetchall()
    finally:
        conn.close()
    return len(rows)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def run(checks: int, days: int, repeats: int) -> dict[str, Any]:
    from daemon.cli.history import spans
    from daemon.cli.uptime import collect
    from daemon.config.load import load_settings
    from daemon.notify.uptime import uptime_report
    from daemon.store import Store
    from daemon.util.time import db_ts
    from daemon.util.uptime import Target, bounds, windows

    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="wk-bench-uptime-") as tmp:
        state, config = Path(tmp) / "state", Path(tmp) / "config.toml"
        seeded = seed(state, checks, days, now)
        write_config(config, state, checks)
        settings = load_settings(config)
        db = state / "watchkeeper.db"
        wanted = windows(WINDOWS, now)
        marks = [db_ts(b) for b in bounds(wanted, now)]
        targets = [Target.of(spec) for spec in settings.enabled_checks]

        def bare() -> int:
            conn = sqlite3.connect(db)
            try:
                # NOT INDEXED and a column read: every row of the table, not an index's count
                sql = "SELECT COUNT(*), SUM(length(status)) FROM check_results NOT INDEXED"
                return int(conn.execute(sql).fetchone()[0])
            finally:
                conn.close()

        def uptime() -> Any:
            return collect(settings, wanted, now)

        def digest() -> Any:
            with Store.open(state) as store:
                return uptime_report(store, targets, now - timedelta(hours=24), now, None)

        def history() -> int:
            with Store.open(state) as store:
                found = store.results.runs("check-00001", now - timedelta(days=7), now)
            return len(spans(found, INTERVAL_S, now))

        variants: dict[str, Callable[[], Any]] = {
            "bare_count": bare,
            "uptime": uptime,
            "digest_section": digest,
            "history_7d": history,
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        report = None
        for round_no in range(repeats):
            order = list(variants)
            order = order[round_no % len(order) :] + order[: round_no % len(order)]
            for name in order:
                seconds, value = timed(variants[name])
                times[name].append(seconds)
                if name == "uptime":
                    report = value
        naive_s, naive = timed(lambda: naive_counts(db, marks, db_ts(now)))
        assert report is not None
        agree = all(
            [(f.runs.ok, f.runs.degraded, f.runs.error, f.runs.failing) for f in check.figures]
            == naive.get(check.target.name, [(0, 0, 0, 0)] * len(marks))[: len(wanted)]
            for check in report.checks
        )
        cli_s, cli = timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "daemon", "uptime", "--json", "--config", str(config)],
                capture_output=True,
                env=isolated_env(),
                cwd=REPO,
                timeout=600,
            )
        )
        index_s, _ = timed(
            lambda: _index(
                db,
                "CREATE INDEX check_results_uptime ON check_results "
                "(check_name, started_at, status)",
            )
        )
        proposed = [
            timed(lambda: proposed_counts(db, marks, db_ts(now)))[0] for _ in range(repeats)
        ]
        grown = db.stat().st_size / 2**20
    med = {name: median(values) for name, values in times.items()}
    return {
        "bench": "uptime",
        "machine": machine(),
        "checks": checks,
        "days": days,
        "interval_s": INTERVAL_S,
        **seeded,
        "windows": WINDOWS,
        "repeats": repeats,
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "naive_exact_s": round(naive_s, 3),
        "cli_json_s": round(cli_s, 3),
        "cli_exit_code": cli.returncode,
        "agree_with_naive": agree,
        "uptime_vs_bare": round(med["uptime"] / med["bare_count"], 2),
        "uptime_vs_naive": round(med["uptime"] / naive_s, 3),
        "us_per_row": round(1e6 * med["uptime"] / max(seeded["rows"], 1), 3),
        "proposed_index": {
            "create_s": round(index_s, 1),
            "db_growth_mb": round(grown - seeded["db_mb"], 1),
            "median_s": round(median(proposed), 3),
            "vs_uptime": round(median(proposed) / med["uptime"], 3),
        },
    }


def _index(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def render(data: dict[str, Any]) -> str:
    m, med = data["machine"], data["median_s"]
    rows = [
        ["bare COUNT(*) over the table", f"{med['bare_count']:.2f} s", "1.00x"],
        ["uptime (collect)", f"{med['uptime']:.2f} s", f"{data['uptime_vs_bare']:.2f}x"],
        [
            "naive exact query (once)",
            f"{data['naive_exact_s']:.2f} s",
            f"{data['naive_exact_s'] / med['bare_count']:.2f}x",
        ],
        ["digest section (24h + 30d SLO)", f"{med['digest_section']:.2f} s", ""],
        ["history of one check, 7d", f"{med['history_7d']:.3f} s", ""],
        ["watchkeeper uptime --json (process, once)", f"{data['cli_json_s']:.2f} s", ""],
        [
            "with an index on (check_name, started_at, status)",
            f"{data['proposed_index']['median_s']:.2f} s",
            f"{data['proposed_index']['median_s'] / med['bare_count']:.2f}x",
        ],
    ]
    return "\n".join(
        [
            f"bench.uptime — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}",
            f"{data['checks']:,} checks x {data['days']} days at {data['interval_s']} s: "
            f"{data['rows']:,} rows, {data['db_mb']:.0f} MB, seeded in {data['seed_s']} s",
            "",
            table(["what", f"median of {data['repeats']}", "vs bare"], rows),
            "",
            f"uptime agrees with the naive query: {data['agree_with_naive']}; "
            f"{data['us_per_row']} µs a row; {data['uptime_vs_naive']:.2f}x the naive query's time",
            f"the proposed index costs {data['proposed_index']['create_s']} s to build and "
            f"{data['proposed_index']['db_growth_mb']} MB, and would take uptime to "
            f"{data['proposed_index']['vs_uptime']:.2f}x",
        ]
    )


def main() -> None:
    p = parser("What `watchkeeper uptime` costs over a seeded store of results.")
    p.add_argument("--checks", type=int, default=1000, help="checks in the store")
    p.add_argument("--days", type=int, default=7, help="days of results at 60 s")
    p.add_argument("--repeats", type=int, default=3, help="rounds of each measurement")
    args = p.parse_args()
    isolate_this_process()
    quiet_logs()
    os.environ.pop("WATCHKEEPER_CONFIG", None)
    data = run(max(1, args.checks), max(1, args.days), max(1, args.repeats))
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
