"""`status` shows a vantage check as its quorum judges it, not as whichever location reported
last: one location failing of three (quorum 2) is OK with that location named; two are
FAILING. On SQLite (the members and results repositories are the same on both backends)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from daemon.cli._output import plain
from daemon.cli.views import status_blocks
from daemon.config.load import load_settings
from daemon.models import CheckResult, Status
from daemon.report.status import load_status, status_json
from daemon.store import Store
from daemon.util.time import utcnow

CONFIG = """
[daemon]
state_dir = "state"

[store]
url = "postgresql://wk@db/wk"

[cluster]
mode = "sharded"

[[checks]]
name = "shop"
type = "http"
url = "http://127.0.0.1:1/"
interval = "30s"
locations = ["eu-1", "us-1", "ap-1"]
quorum = 2
"""


def result(location: str, status: Status, ago_s: float) -> CheckResult:
    return CheckResult(
        check="shop",
        status=status,
        evidence=f"{status} from {location}",
        started_at=utcnow() - timedelta(seconds=ago_s),
        latency_ms=12.0,
        location=location,
    )


def test_a_vantage_check_shows_its_quorum_verdict(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path)
    with Store.open(tmp_path) as store:
        for node, where in (("a", "eu-1"), ("b", "us-1"), ("c", "ap-1")):
            assert store.members.join(node, f"{node}:1:x", where, timedelta(seconds=30))
        store.results.add([result("us-1", "ok", 3), result("ap-1", "ok", 2)])
        store.results.add([result("eu-1", "failing", 1)])  # the newest row: one location's view

        view = load_status(store, settings, None)
        (judged,) = view.last["shop"]
        assert judged.status == "ok"
        assert judged.evidence.splitlines()[0] == (
            "1 of 3 locations not ok (quorum 2, below the quorum)"
        )
        assert "failing from eu-1" in judged.evidence
        assert status_json(view)["checks"]["shop"]["status"] == "ok"
        (row,) = [r for r in plain(status_blocks(view)).splitlines() if r.startswith("shop")]
        assert row.split()[1] == "OK" and "1 of 3 locations not ok" in row, row

        store.results.add([result("us-1", "failing", 0)])
        (judged,) = load_status(store, settings, None).last["shop"]
        assert judged.status == "failing"
        assert judged.evidence.startswith("2 of 3 locations not ok (quorum 2, agree)")


def test_without_a_reachable_quorum_the_raw_rows_stay(tmp_path: Path) -> None:
    """Only one location has a live member: nothing can be concluded, so status shows what was
    stored (the cluster section names the locations without a node)."""
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path)
    with Store.open(tmp_path) as store:
        assert store.members.join("a", "a:1:x", "eu-1", timedelta(seconds=30))
        store.results.add([result("eu-1", "failing", 1)])
        view = load_status(store, settings, None)
        assert [r.evidence for r in view.last["shop"]] == ["failing from eu-1"]
        assert view.cluster is not None and sorted(view.cluster.unstaffed) == ["ap-1", "us-1"]
