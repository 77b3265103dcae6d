"""The benchmarks run end to end in their quickest mode and print one JSON object with the
figures the README quotes. Behaviour only: no timing is asserted here (timing is bench/'s job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests import ROOT

MACHINE_KEYS = {"platform", "cpu_count", "python"}


def bench(name: str, *args: str, timeout: float = 60) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    data: dict[str, Any] = json.loads(lines[-1])
    assert data["bench"] == name
    assert data["machine"].keys() >= MACHINE_KEYS
    return data


def test_cycle_prints_ratios_for_every_variant_and_size() -> None:
    data = bench("cycle", "--sizes", "10,20", "--repeats", "2", "--max-seconds", "20")
    assert [s["n"] for s in data["sizes"]] == [10, 20]
    for size in data["sizes"]:
        assert size["repeats"] >= 2
        assert set(size["ratio_vs_bare"]) == {
            "bare_gather_bounded",
            "run_checks",
            "run_checks_unbounded",
            "cycle",
        }
        assert all(count == 0 for count in size["not_ok"].values())  # loopback answers 200
    assert data["sizes"][-1]["profile"]["extra_by_package_s"]
    assert {"ratio", "limit", "met", "ratio_concurrency_n"} <= data["target"].keys()
    assert data["baselines_warm"]["us_per_result"] > 0
    assert set(data["growth_per_check_largest_vs_smallest"]) == set(data["linear"])


def test_economy_escalates_each_incident_once_and_prices_both_designs() -> None:
    data = bench("economy", "--cycles", "24", "--json")
    assert data["cycles"] == 24
    assert data["warmup_model_calls"] == 0
    assert data["incidents"] == 3
    assert data["cloud"]["calls"] == 3 and data["cloud"]["ok"] == 3
    assert data["cloud"]["unknown_cost_calls"] == 0
    assert data["local"]["usd"] == 0
    assert 0 < data["local"]["calls"] <= data["cycles_with_change"]
    assert data["naive"]["calls"] == 24 and data["naive"]["usd"] > data["cloud"]["usd"] > 0
    assert set(data["targets"]) == {
        "cloud_calls_eq_incidents",
        "local_calls_le_changed_cycles",
        "cloud_usd_le_1pct_naive",
    }


def test_footprint_quick_samples_a_real_daemon_and_times_help() -> None:
    data = bench("footprint", "--quick", "--json")
    daemon = data["daemon"]
    assert daemon["complete"] and daemon["exit_code"] == 0
    assert all(s["cycle"] >= c for s, c in zip(daemon["samples"], (3, 6), strict=True))
    assert all(s["rss_mb"] > 0 for s in daemon["samples"])
    assert data["rss_growth_mb"] is not None
    assert data["startup"]["ratio"] > 0 and data["startup"]["runs"] == 3
    assert data["import_rss"][0]["stage"] == "python"
    assert set(data["targets"]) == {"rss_le_80mb", "no_growth", "help_le_5x_python"}


def test_uptime_agrees_with_the_naive_query_on_a_small_store() -> None:
    data = bench("uptime", "--checks", "20", "--days", "1", "--repeats", "1", "--json")
    assert data["rows"] == 20 * 1440 + 2 * 1440  # one check in a hundred stores three results
    assert data["agree_with_naive"] is True
    assert data["cli_exit_code"] == 0
    assert set(data["median_s"]) == {"bare_count", "uptime", "digest_section", "history_7d"}
    assert data["proposed_index"]["median_s"] > 0


def test_sweep_shares_datasets_across_rules() -> None:
    data = bench("sweep", "--resources", "4", "--json", timeout=240)
    shared, per_rule = data["shared"], data["per_rule"]
    assert shared["rules"] == per_rule["rules"] > 40
    assert shared["rule_errors"] == per_rule["rule_errors"] == []
    assert shared["findings"] == per_rule["findings"] > 0  # the same verdicts either way
    assert shared["datasets"] < per_rule["datasets"]
    assert shared["requests"] < per_rule["requests"]


def test_scale_compares_baselines_scheduler_and_cycles_in_one_run() -> None:
    data = bench(
        "scale",
        *("--sizes", "20,40", "--rounds", "2", "--baseline-checks", "4"),
        *("--baseline-rounds", "2", "--jobs", "200", "--interval", "1", "--sched-seconds", "1"),
        *("--daemon-sizes", "40", "--daemon-interval", "2", "--daemon-s", "60"),
        "--json",
        timeout=180,
    )
    base = data["baselines"]
    # the coded windows flag what the exact computation does, but for borderline figures
    assert base["flagged"]["compact"] > 0 and base["flags_differ"] <= base["flagged"]["exact"] // 4
    assert base["samples_per_window"] == 2000 and base["windows_per_check"] == 2
    assert 0 < base["bytes_per_check"]["compact"] < base["bytes_per_check"]["exact"]
    assert base["us_per_result"]["compact"] > 0 and base["us_per_result"]["exact"] > 0
    sched = data["scheduler"]
    for variant in ("per_job", "grouped"):
        assert sched[variant]["runs"] >= 100  # every job ran in the measured second
    assert [z["n"] for z in data["sizes"]] == [20, 40]
    for size in data["sizes"]:
        assert size["not_ok"] == {"bare": 0, "cycle": 0}  # loopback answers every check
        assert size["windows"] >= 2 * size["n"]  # warm windows injected for every figure
        assert size["engine_us_per_result"] > 0 and size["ratio_cycle_vs_bare"] > 0
        assert size["db_bytes_per_cycle"] >= 0 and size["rss_mb"]["warm"] > 0
    assert set(data["targets"]) >= {"engine_le_50us_per_result", "rss_le_300mb"}
    (run,) = data["daemon"]  # a real `watchkeeper run`: every check reported, 4 failing
    assert run["n"] == 40 and run["round1_s"] > 0 and run["rss_round1_mb"] > 0
    assert run["incidents"] == 4 and run["messages_received"] >= 4
    assert run["outbox"].get("delivered", 0) >= 4 and run["exit_code"] == 0


def test_scale_reseed_times_the_rebuild_against_restoring_snapshots() -> None:
    data = bench(
        "scale",
        *("--parts", "reseed", "--reseed-sizes", "30", "--reseed-rows", "300"),
        *("--reseed-sample", "10", "--json"),
        timeout=180,
    )
    (z,) = data["reseed"]
    assert z["n"] == 30 and z["windows"] == 45  # half the checks carry connect_ms too
    assert z["restored_equal_rebuilt"] and z["before_sampled_checks"] == 10
    assert z["before_ms_per_check"] > 0 and z["after_clean_ms_per_check"] > 0
    assert z["after_crash_ms_per_check"] > 0  # 60 results a check read after the snapshot
    assert 1000 < z["snapshot_bytes_per_check"] < 20_000  # 300 samples, 1.5 windows a check


def test_storage_reaches_a_steady_size_and_measures_every_tier() -> None:
    data = bench(
        "storage", "--checks", "20", "--hours", "9", "--rounds", "2", "--json", timeout=120
    )
    sim = data["simulate"]
    assert [h["hour"] for h in sim["per_hour"]] == list(range(1, 10))
    # at 09:00: raw from 07:00 (2 h), minutes 05:00-08:45 (4 h, rolled up 15 min late),
    # hours 03:00-07:00 (6 h back; 08:00 has not closed)
    assert sim["per_hour"][-1]["rows"] == {"raw": 20 * 120, "minute": 20 * 225, "hour": 20 * 5}
    assert sim["steady_state"]["db_bytes"] and sim["steady_state"]["spread"] < 0.1
    assert 0 < sim["bytes_per_bucket"] < sim["bytes_per_raw_result"]
    assert set(sim["bytes_per_day"]) == {"raw", "minute", "hour"}
    assert set(sim["longest_maintenance_transaction_s"]) >= {"rolled up", "results pruned"}
    assert data["commit"]["us_per_result_statement"]["after"] > 0


@pytest.mark.parametrize(
    "name", ["cycle", "economy", "footprint", "uptime", "sweep", "scale", "cluster", "storage"]
)
def test_help_describes_the_bench(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "--json" in done.stdout


def test_rca_reports_what_the_investigator_sees_and_costs() -> None:
    data = bench("rca", "--json", timeout=180)
    rows = {r["scenario"]: r for r in data["scenarios"]}
    crash = rows["crash loop from a bad config value"]
    assert (crash["in_first_context"], crash["reachable_with_tools"]) == (2, 3)
    pool = rows["connection-pool exhaustion, visible only in Prometheus"]
    assert (pool["in_first_context"], pool["reachable_with_tools"]) == (1, 3)
    overall = data["overall"]
    assert overall["reachable_with_tools"] > overall["in_first_context"]
    assert all(r["usd"] is not None and r["usd"] < 0.25 for r in data["scenarios"])


def test_cluster_splits_a_cycle_over_three_nodes_and_times_both() -> None:
    data = bench("cluster", "--checks", "60", "--rounds", "1", "--json", timeout=240)
    one, many = data["one"], data["many"]
    assert one["shares"] == {"node-0": 60}
    assert sum(many["shares"].values()) == 60 and all(many["shares"].values())
    assert one["not_ok"] == many["not_ok"] == 0
    assert all(r["duplicates"] == 0 for r in one["rounds"] + many["rounds"])
    assert set(data["ratio_many_vs_one"]) == {"cycle", "node_cycle", "evaluated"}
