"""`watchkeeper uptime` and `history` as a user meets them: a seeded store, the real command
in a subprocess, figures checked against hand-computed values, completion of check names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.models import Status
from daemon.store import Store
from daemon.util.time import utcnow
from tests.daemon.cli.test_commands import wk
from tests.daemon.store.history import runs, write
from tests.peers.loopback import free_port

DAY = 1440


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two weeks (plus a minute) of results, as retention keeps them: `outage` was failing for
    the 30 runs that started 120 to 91 minutes ago; `steady` never failed."""
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
retention = "14d"

[[checks]]
name = "outage"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
timeout = "2s"
interval = "1m"
failure_threshold = 1
slo = 99.9
tags = ["prod"]

[[checks]]
name = "steady"
type = "dns"
host = "localhost"
interval = "1m"
tags = ["prod", "dns"]
""",
        encoding="utf-8",
    )
    statuses: list[Status] = ["ok"] * (14 * DAY + 1)
    for back in range(91, 121):
        statuses[-back] = "failing"
    # 30 s ahead: every run of the series falls inside windows measured a moment later
    until = utcnow() + timedelta(seconds=30)
    with Store.open(tmp_path / "state") as store:
        write(store, runs("outage", until, statuses), runs("steady", until, ["ok"] * (14 * DAY)))
    return path


def test_uptime_json_has_the_hand_computed_figures(config: Path) -> None:
    done = wk("uptime", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [w["name"] for w in data["windows"]] == ["24h", "7d", "30d", "month"]
    outage = next(c for c in data["checks"] if c["check"] == "outage")
    day = outage["windows"]["24h"]
    assert day["runs"] == {"ok": DAY - 30, "degraded": 0, "failing": 30, "error": 0}
    assert day["availability_pct"] == round(100 * 1410 / 1440, 4)
    assert day["down_s"] == 1800
    # 30d: only 14 days stored; the budget is 0.1 % of what was measured
    thirty = outage["windows"]["30d"]
    measured = (14 * DAY + 1) * 60
    assert thirty["budget"]["allowed_s"] == round(measured * 0.001, 1)
    assert thirty["budget"]["remaining_s"] == round(measured * 0.001 - 1800, 1)
    assert thirty["coverage"] == round(measured / (30 * 86400), 4)
    assert outage["burn_rate"] == {"1h": 0.0, "24h": round((30 / 1440) / 0.001, 3)}
    assert data["windows"][2]["stored_s"] == pytest.approx(14 * 86400 + 60, abs=120)
    assert data["retention_s"] == 14 * 86400
    prod = next(t for t in data["tags"] if t["tag"] == "prod")
    assert prod["windows"]["24h"]["availability_pct"] == round(100 * (2880 - 30) / 2880, 4)


def test_uptime_text_names_the_budget_and_what_retention_left(config: Path) -> None:
    done = wk("uptime", "--config", str(config))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "check" in out and "24h" in out and "30d*" in out and "budget left (30d)" in out
    outage = next(line for line in out.splitlines() if line.startswith("outage "))
    assert "97.916%" in outage and "99.9%" in outage and "20.83" in outage
    assert "tag prod (2)" in out
    assert "* 30d: covers only 14d of stored results" in out
    assert "retention 14d" in out


def test_uptime_narrows_to_names_and_tags_and_rejects_unknown_ones(config: Path) -> None:
    done = wk("uptime", "steady", "--window", "24h", "--json", "--config", str(config))
    data = json.loads(done.stdout)
    assert [c["check"] for c in data["checks"]] == ["steady"]
    tagged = json.loads(wk("uptime", "--tag", "dns", "--json", "--config", str(config)).stdout)
    assert [c["check"] for c in tagged["checks"]] == ["steady"]
    assert [t["tag"] for t in tagged["tags"]] == ["dns"]
    unknown = wk("uptime", "nope", "--config", str(config))
    assert unknown.returncode == 2
    assert "no check named 'nope'; configured: outage, steady" in unknown.stderr
    bad = wk("uptime", "--window", "1w", "--config", str(config))
    assert bad.returncode == 2
    assert "'1w' is not a window: use e.g. 24h, 7d, 30d or month" in bad.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr


def test_history_shows_status_changes_with_durations_and_incidents(config: Path) -> None:
    recorded = wk("check", "outage", "--record", "--config", str(config))  # a real incident
    assert recorded.returncode == 1
    done = wk("history", "outage", "--since", "1d", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    statuses = [(s["status"], s["runs"]) for s in data["spans"]]
    assert statuses[:3] == [("ok", DAY - 120), ("failing", 30), ("ok", 90)]
    assert data["spans"][1]["duration_s"] == 1800
    assert data["spans"][1]["evidence"] == "outage failing #0"
    [incident] = data["incidents"]
    assert incident["check"] == "outage" and incident["status"] == "open"
    assert data["uptime"]["runs"]["failing"] == 31  # the 30 seeded, and the one just recorded
    assert data["latest"][0]["evidence"].startswith("TCP connect to 127.0.0.1:")

    text = wk("history", "outage", "--since", "1d", "--config", str(config)).stdout
    failing = next(line for line in text.splitlines() if " failing " in line and "30m" in line)
    assert failing.rstrip().endswith("outage failing #0")
    assert "incidents (1):" in text and f"#{incident['id']} open high" in text
    assert "latest results:" in text


def test_history_of_an_unknown_check_is_a_usage_error(config: Path) -> None:
    done = wk("history", "nope", "--config", str(config))
    assert done.returncode == 2
    assert "no check named 'nope'; configured: outage, steady" in done.stderr


def test_check_names_and_tags_complete_from_the_config(config: Path) -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_WATCHKEEPER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            "WATCHKEEPER_CONFIG": str(config),
        }
        full = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"} | env
        script = Path(sys.executable).parent / "watchkeeper"  # completion keys on the prog name
        done = subprocess.run([str(script)], capture_output=True, text=True, env=full, timeout=30)
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert complete("watchkeeper history ou") == ["outage"]
    assert complete("watchkeeper uptime ") == ["outage", "steady"]
    assert complete("watchkeeper uptime --tag p") == ["prod"]
    assert os.environ.get("WATCHKEEPER_CONFIG") != str(config)


def test_history_and_uptime_beyond_raw_retention_read_the_rollups(tmp_path: Path) -> None:
    """Results pruned after 2 days, but rolled up first: the outage 4 days ago still shows,
    with its length and its runs, and uptime counts it."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[daemon]\nstate_dir = "state"\nretention = "2d"\nminute_rollups = "5d"\n\n'
        '[[checks]]\nname = "steady"\ntype = "dns"\nhost = "localhost"\ninterval = "1m"\n',
        encoding="utf-8",
    )
    statuses: list[Status] = ["ok"] * (7 * DAY)
    for back in range(4 * DAY, 4 * DAY + 30):
        statuses[-back] = "failing"
    now = utcnow()
    with Store.open(tmp_path / "state") as store:
        write(store, runs("steady", now, statuses))
        done = store.maintain(now, timedelta(days=2), timedelta(days=5), timedelta(days=400))
        assert done["results pruned"] > 4 * DAY
    history = wk("history", "steady", "--since", "6d", "--json", "--config", str(path))
    assert history.returncode == 0, history.stderr
    data = json.loads(history.stdout)
    failing = [s for s in data["spans"] if s["status"] == "failing"]
    assert [(s["runs"], s["duration_s"]) for s in failing] == [(30, 1800)]
    assert failing[0]["evidence"] == "rolled up: 1 failing"  # a minute bucket's counts
    runs_ = data["uptime"]["runs"]
    assert runs_["failing"] == 30
    # a bucket counts when it starts in the window: at most the first hour's is left out
    assert 6 * DAY - 60 <= runs_["ok"] + runs_["failing"] <= 6 * DAY
    uptime = json.loads(wk("uptime", "--json", "--config", str(path)).stdout)
    week = uptime["checks"][0]["windows"]["7d"]
    assert week["runs"]["failing"] == 30
    ok = week["runs"]["ok"]
    assert week["availability_pct"] == round(100 * ok / (ok + 30), 4)
