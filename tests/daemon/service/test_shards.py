"""Sharded mode and vantage points on a shared PostgreSQL (a real server the tests start),
with real `watchkeeper run` processes from one config file, each told its node and location
by its environment. Which node ran which check is seen by the loopback target itself: HTTP
checks name their node and location in the User-Agent (tests.peers.vantage)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Store
from tests.cli import run_cli
from tests.daemon.service.test_failover import PY, Node, env, titles, wait_for
from tests.peers.receivers import WebhookReceiver
from tests.peers.vantage import VantageTarget

LEASE_S = 3.0
CHECKS = 30
LOCATIONS = ("eu-1", "us-1", "ap-1")


def shard_config(home: Path, url: str, body: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(
        f"""
[daemon]
jitter = "0s"
drain_timeout = "3s"

[store]
url = "{url}"
lease = "{LEASE_S:g}s"

[cluster]
mode = "sharded"

[delivery]
retry_initial = "1s"
retry_max = "2s"
timeout = "5s"
{body}""",
        encoding="utf-8",
    )
    return path


class ShardNode(Node):
    """A node of one shared config file: its name and location come from its environment."""

    def __init__(self, config: Path, name: str, location: str | None = None) -> None:
        super().__init__(config)
        self.name = name
        self.log = config.parent / f"{name}.log"
        self.extra = {  # (each its own state directory: it holds the process's lock)
            "WATCHKEEPER_STORE__NODE": name,
            "WATCHKEEPER_DAEMON__STATE_DIR": str(config.parent / f"state-{name}"),
        }
        if location is not None:
            self.extra["WATCHKEEPER_CLUSTER__LOCATION"] = location

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PY, "-m", "daemon", "run", "--config", str(self.config)],
                env={**env(), **self.extra},
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def cluster(config: Path) -> dict[str, Any]:
    done = run_cli("status", "--json", "--config", str(config), env=env())
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)["cluster"]
    return data


def live_nodes(config: Path) -> set[str]:
    return {m["node"] for m in cluster(config)["members"] if m["live"]}


def owners(target: VantageTarget, window: float) -> dict[str, set[str]]:
    """path → nodes that requested it during the next `window` seconds."""
    start = time.monotonic()
    time.sleep(window)
    return target.runners(start)


def settle(target: VantageTarget, paths: set[str], timeout: float = 30.0) -> dict[str, str]:
    """Wait until two windows in a row show every path run by exactly one node, the same one:
    the plan every node computes has converged. path → node."""
    deadline = time.monotonic() + timeout
    previous: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        seen = owners(target, 1.6)
        if set(seen) == paths and all(len(n) == 1 for n in seen.values()) and seen == previous:
            return {path: next(iter(nodes)) for path, nodes in seen.items()}
        previous = seen
    raise AssertionError(f"the plan did not settle: {previous}")


@pytest.mark.reliability
def test_three_nodes_split_the_checks_and_rebalance_on_kill_and_join(
    tmp_path: Path, postgres_url: str, vantage_target: VantageTarget
) -> None:
    checks = "".join(
        f"""
[[checks]]
name = "site-{i:02d}"
type = "http"
url = "{vantage_target.url(f"/c{i:02d}")}"
interval = "1s"
timeout = "2s"
"""
        for i in range(CHECKS)
    )
    config = shard_config(tmp_path, postgres_url, checks)
    paths = {f"/c{i:02d}" for i in range(CHECKS)}
    nodes = {name: ShardNode(config, name) for name in ("a", "b", "c", "d")}
    try:
        for name in "abc":
            nodes[name].start()
        wait_for(lambda: live_nodes(config) == {"a", "b", "c"}, "three live members")
        before = settle(vantage_target, paths)
        shares = {n: sum(1 for o in before.values() if o == n) for n in "abc"}
        assert all(shares[n] > 0 for n in "abc"), shares  # disjoint and complete, all working
        shown = cluster(config)
        assert {m["node"]: m["checks"] for m in shown["members"]} == shares
        text = run_cli("status", "--config", str(config), env=env()).stdout
        assert "NODE" in text and "HEARTBEAT" in text and "CHECKS" in text

        # kill -9 of c: its checks (only those) move to a and b, within the lease
        lost = {p for p, n in before.items() if n == "c"}
        killed = time.monotonic()
        nodes["c"].kill9()
        moved = wait_for(
            lambda: lost <= set(vantage_target.runners(killed + LEASE_S / 3 + 0.5)),
            "c's checks run by the others",
        )
        takeover = time.monotonic() - killed
        after = settle(vantage_target, paths)
        assert {p: n for p, n in after.items() if p not in lost} == {
            p: n for p, n in before.items() if p not in lost
        }  # nothing else moved
        assert {after[p] for p in lost} <= {"a", "b"}
        wait_for(lambda: live_nodes(config) == {"a", "b"}, "c gone from the members")

        # d joins: it takes a share, from a and b, and nothing else moves
        joined = time.monotonic()
        nodes["d"].start()
        rebalance = wait_for(
            lambda: any(h.node == "d" for h in vantage_target.since(joined)), "d running checks"
        )
        assert "d" in live_nodes(config)
        final = settle(vantage_target, paths)
        taken = {p for p, n in final.items() if n == "d"}
        assert taken, final
        assert {p: n for p, n in final.items() if p not in taken} == {
            p: n for p, n in after.items() if p not in taken
        }
        print(
            f"c's {len(lost)} checks taken over {takeover:.2f} s after kill -9 "
            f"(seen {moved:.2f} s into the wait); d took {len(taken)} of {CHECKS} "
            f"(its first run {rebalance:.2f} s after its process started); shares {shares}"
        )
        # the member's last heartbeat is at most LEASE_S / 3 before the kill; it lapses after
        # LEASE_S, the others look every LEASE_S / 3 (+ a margin for a loaded 2-core machine)
        assert takeover <= LEASE_S + LEASE_S / 3 + 4.0, takeover
        for name in "abd":
            assert nodes[name].stop() == 0, nodes[name].output()
    finally:
        for node in nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()


@pytest.mark.reliability
def test_a_quorum_check_pages_only_when_two_of_three_locations_agree(
    tmp_path: Path,
    postgres_url: str,
    vantage_target: VantageTarget,
    webhook_receiver: WebhookReceiver,
) -> None:
    body = f"""
[[notify]]
name = "hook"
url = "json://127.0.0.1:{webhook_receiver.port}/hook"

[[checks]]
name = "shop"
type = "http"
url = "{vantage_target.url("/shop")}"
interval = "1s"
timeout = "2s"
locations = ["eu-1", "us-1", "ap-1"]
quorum = 2
failure_threshold = 2
"""
    config = shard_config(tmp_path, postgres_url, body)
    nodes = [ShardNode(config, f"n-{where}", where) for where in LOCATIONS]
    try:
        for node in nodes:
            node.start()
        wait_for(lambda: len(live_nodes(config)) == 3, "three live members")
        wait_for(
            lambda: (
                {h.location for h in vantage_target.since(time.monotonic() - 1.5)} == set(LOCATIONS)
            ),
            "the check run from every location",
        )
        # one location failing: its results are stored, nobody is paged
        vantage_target.fail_from("eu-1")
        one = time.monotonic()
        wait_for(
            lambda: sum(h.location == "eu-1" for h in vantage_target.since(one)) >= 4,
            "eu-1 failing four times",
        )
        time.sleep(2.0)  # the leader has evaluated them
        assert titles(webhook_receiver) == []
        with Store.open(tmp_path, postgres_url) as store:
            assert store.incidents.recent(include_resolved=True) == []
            failing = [r for r in store.results.recent("shop", 30) if r.status != "ok"]
            assert failing and {r.location for r in failing} == {"eu-1"}

        # two locations failing: the quorum agrees, one incident with every location's result
        vantage_target.fail_from("eu-1", "us-1")
        opened = wait_for(lambda: len(titles(webhook_receiver)) == 1, "the incident")
        assert titles(webhook_receiver)[0].startswith("[HIGH] shop failing — incident #1")
        with Store.open(tmp_path, postgres_url) as store:
            (incident,) = store.incidents.recent(include_resolved=False)
        evidence = incident.evidence
        assert "2 of 3 locations not ok (quorum 2, agree)" in evidence, evidence
        for where, shown in (("eu-1", "FAILING"), ("us-1", "FAILING"), ("ap-1", "OK")):
            assert f"{where}: {shown}, " in evidence, evidence
        assert "503" in evidence

        # back to one failing location: below the quorum, so it resolves
        vantage_target.fail_from("us-1")
        resolved = wait_for(lambda: len(titles(webhook_receiver)) == 2, "resolved")
        assert titles(webhook_receiver)[1].startswith("[RESOLVED] shop")
        vantage_target.fail_from()
        time.sleep(2.0)
        assert len(titles(webhook_receiver)) == 2  # nothing else
        print(f"opened {opened:.2f} s after the second location failed; resolved {resolved:.2f} s")
        for node in nodes:
            assert node.stop() == 0, node.output()
    finally:
        for node in nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
