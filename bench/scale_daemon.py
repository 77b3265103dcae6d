"""`bench.scale`'s daemon part: N loopback checks through a real `watchkeeper run` subprocess,
a share of them failing at once, notifications to a loopback webhook receiver.

What it reports, all read from outside the process (its database read-only, /proc, the
receiver): seconds from spawn to the first stored result and to every check having reported
once (the first full round), RSS of the daemon process then and at the end of the second round
(and its peak), daemon CPU per result over the second round (checks, engine and commit
together), and the outbox at scale: incidents opened, outbox rows by status, messages the
receiver got, seconds from the first incident to the last message delivered, and whether the
failures were grouped into fewer messages than incidents.

Baseline windows fill from empty here (a fresh database): the in-process `cycle` part of
`bench.scale` is where full windows are injected.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import isolated_env
from bench.footprint import status_kb, stop, watchkeeper_command

INTERVAL_S = 30
"""Every check's interval by default: long enough for 10,000 loopback checks a round on 2
cores."""


def write_config(
    directory: Path,
    ports: list[int],
    n: int,
    dead_port: int,
    fail_share: float,
    hook: str,
    interval_s: int = INTERVAL_S,
) -> Path:
    """N/2 http and N/2 tcp checks; every `1/fail_share`-th check points at a closed port
    and fails on its first result (failure_threshold = 1)."""
    every = max(1, round(1 / fail_share)) if fail_share > 0 else 0
    jitter = max(1, interval_s // 10)
    lines = ["[daemon]", 'state_dir = "state"', f'jitter = "{jitter}s"']
    lines += ["[triage]", "enabled = false", "[escalation]", "enabled = false"]
    lines += ["[delivery]", 'timeout = "5s"', 'retry_initial = "1s"', 'retry_max = "5s"']
    lines += ["[[notify]]", 'name = "hook"', f'url = "{hook}"']
    for i in range(n):
        failing = bool(every) and i % every == every - 1
        port = dead_port if failing else ports[i % len(ports)]
        lines += check_lines(i, port, f"{interval_s}s", "10s", tcp=failing)
        if failing:
            lines.append("failure_threshold = 1")
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def check_lines(i: int, port: int, interval: str, timeout: str, tcp: bool = False) -> list[str]:
    """The i-th bench check: `http` for even i, else (or when `tcp`) `tcp`, on `port`."""
    lines = ["[[checks]]", f'interval = "{interval}"', f'timeout = "{timeout}"']
    if i % 2 == 0 and not tcp:
        lines += [f'name = "http-{i:05d}"', 'type = "http"']
        return [*lines, f'url = "http://127.0.0.1:{port}/health/{i}"']
    lines += [f'name = "tcp-{i:05d}"', 'type = "tcp"', 'host = "127.0.0.1"']
    return [*lines, f"port = {port}"]


def _read(db: Path) -> dict[str, Any]:
    """What the daemon has committed so far (read-only; zeros before the schema exists)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            results, checks = conn.execute(
                "SELECT count(*), count(DISTINCT check_name) FROM check_results"
            ).fetchone()
            incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
            outbox = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
    except sqlite3.Error:
        return {"results": 0, "checks": 0, "incidents": 0, "outbox": {}}
    return {"results": results, "checks": checks, "incidents": incidents, "outbox": outbox}


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (/proc/PID/stat fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def daemon_part(
    ports: list[int], n: int, fail_share: float, max_seconds: float, interval_s: int = INTERVAL_S
) -> dict[str, Any]:
    from daemon.store.database import DB_NAME
    from tests.peers.loopback import free_port
    from tests.peers.receivers import receiving

    with receiving() as receiver, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hook, dead = receiver.url(), free_port()
        config = write_config(work, ports, n, dead, fail_share, hook, interval_s)
        db = work / "state" / DB_NAME
        log = (work / "daemon.log").open("w")
        command = [*watchkeeper_command(), "run", "--config", str(config)]
        started = time.monotonic()
        proc = subprocess.Popen(
            command, env=isolated_env(), stdout=log, stderr=subprocess.STDOUT, cwd=work
        )
        marks: dict[str, Any] = {}
        deadline = started + max_seconds
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                seen, now = _read(db), time.monotonic() - started
                if seen["results"] and "first_result_s" not in marks:
                    marks["first_result_s"] = round(now, 1)
                if seen["incidents"] and "first_incident_s" not in marks:
                    marks["first_incident_s"] = round(now, 1)
                if seen["checks"] >= n and "round1_s" not in marks:
                    marks["round1_s"] = round(now, 1)
                    marks["rss_round1_mb"] = round((status_kb(proc.pid, "VmRSS") or 0) / 1024)
                    marks["cpu0"], marks["results0"] = _cpu_s(proc.pid), seen["results"]
                outbox = seen["outbox"]
                delivered = outbox.get("delivered", 0)
                if seen["incidents"] and delivered and delivered == sum(outbox.values()):
                    marks.setdefault("outbox_drained_s", round(now, 1))
                else:
                    marks.pop("outbox_drained_s", None)  # more arrived since
                if seen["results"] >= 2 * n and "round1_s" in marks:
                    marks["round2_s"] = round(now, 1)
                    marks["rss_round2_mb"] = round((status_kb(proc.pid, "VmRSS") or 0) / 1024)
                    cpu = _cpu_s(proc.pid) - marks.pop("cpu0")
                    done = seen["results"] - marks.pop("results0")
                    marks["cpu_us_per_result"] = round(cpu / max(done, 1) * 1e6, 1)
                    if "outbox_drained_s" in marks or not fail_share:
                        break
                time.sleep(0.5)
            peak = status_kb(proc.pid, "VmHWM")
            exited_early = proc.poll() is not None
        finally:
            code = stop(proc)
            log.close()
        final = _read(db)
        tail = (work / "daemon.log").read_text().splitlines()[-5:]
        messages = len(receiver.messages)
    marks.pop("cpu0", None)
    marks.pop("results0", None)
    drained = marks.get("outbox_drained_s")
    first = marks.get("first_incident_s")
    return {
        "n": n,
        "fail_share": fail_share,
        "interval_s": interval_s,
        **marks,
        "peak_rss_mb": round((peak or 0) / 1024),
        "results": final["results"],
        "incidents": final["incidents"],
        "outbox": final["outbox"],
        "messages_received": messages,
        "delivery_s": None if drained is None or first is None else round(drained - first, 1),
        "grouped": messages < final["incidents"],
        "exit_code": code,
        "exited_early": exited_early,
        "log_tail": tail if exited_early or code not in (0, None) else [],
    }


def render(z: dict[str, Any]) -> str:
    return (
        f"watchkeeper run, N={z['n']} ({z['fail_share']:.0%} failing, every {z['interval_s']} s): "
        f"first result {z.get('first_result_s')} s, every check reported {z.get('round1_s')} s "
        f"(RSS {z.get('rss_round1_mb')} MB), second round {z.get('round2_s')} s (RSS "
        f"{z.get('rss_round2_mb')} MB, peak {z['peak_rss_mb']} MB), daemon CPU "
        f"{z.get('cpu_us_per_result')} us a result; {z['incidents']} incidents, outbox "
        f"{z['outbox']}, {z['messages_received']} messages received, delivered "
        f"{z['delivery_s']} s after the first incident (grouped: {z['grouped']})"
    )
