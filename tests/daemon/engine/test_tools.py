"""The investigator's toolbox against loopback Prometheus and HTTP peers: what each tool
returns, and what the allow-list refuses (names, arguments, scope, size)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.config.load import load_settings
from daemon.engine.tools import build_toolbox, cap
from daemon.models import Incident, Severity
from daemon.store import Store
from jobs.base import CheckContext
from tests.peers.prometheus import FakeProm, alert, matrix, vector
from tests.peers.targets import HttpPeer, asyncio_servers

NOW = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
POOL = 'hikaricp_connections_pending{pool="orders"}'


@pytest.fixture
async def peers() -> AsyncIterator[tuple[FakeProm, HttpPeer]]:
    async with asyncio_servers() as start:
        prom, web = FakeProm(), HttpPeer()
        prom.port = await start(prom.handle)
        web.port = await start(web.handle)
        yield prom, web


async def toolbox(tmp_path: Path, prom: FakeProm, web: HttpPeer, client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"
[[checks]]
name = "orders-latency"
type = "prometheus"
url = "{prom.url("")}"
query = "orders_p99_seconds"
op = ">"
threshold = 1
[[checks]]
name = "orders-api"
type = "http"
url = "{web.url("/status/200")}"
[[checks]]
name = "alerts"
type = "alertmanager"
url = "{prom.url("")}"
[[checks]]
name = "unrelated"
type = "http"
url = "{web.url("/status/204")}"
""")
    settings = load_settings(path)
    store = Store.open(settings.daemon.state_dir)
    incident = Incident(
        id=1, fingerprint="f", check="orders-latency", severity=Severity.HIGH, opened_at=NOW,
        blast_radius=["orders-api", "alerts"],
    )  # fmt: skip
    ctx = CheckContext(http=client, now=lambda: NOW)
    return build_toolbox(incident, settings.checks, store, ctx, output_bytes=2048), store


async def test_prometheus_and_http_tools_answer_within_the_incident_scope(
    tmp_path: Path, peers: tuple[FakeProm, HttpPeer]
) -> None:
    prom, web = peers
    prom.answers[POOL] = vector(({"pool": "orders"}, "48"))
    prom.ranges[POOL] = matrix({"pool": "orders"}, "0", "3", "17", "48")
    prom.alerts = [
        alert("PoolSaturated", starts_at=NOW, labels={"pool": "orders"}),
        alert("DiskFull", starts_at=NOW),
    ]
    async with httpx.AsyncClient(trust_env=False) as client:
        box, store = await toolbox(tmp_path, prom, web, client)
        with store:
            names = sorted(box.tools)
            instant = await box.call("prometheus_query", {"query": POOL})
            window = await box.call("prometheus_range", {"query": POOL, "minutes": 30})
            page = await box.call("http_get", {"url": web.url("/status/200")})
            other = await box.call("http_get", {"url": web.url("/status/204")})
            evil = await box.call("http_get", {"url": "http://169.254.169.254/latest/meta-data"})
            shell = await box.call("run_command", {"cmd": "rm -rf /"})
            typed = await box.call("prometheus_range", {"query": POOL, "minutes": "all"})
            extra = await box.call("check_history", {"check": "orders-api", "sql": "DROP"})
            history = await box.call("check_history", {"check": "orders-api"})
            firing = await box.call("alertmanager_alerts", {"filter": 'alertname="PoolSaturated"'})
    assert names == [
        "alertmanager_alerts", "check_history", "http_get", "prometheus_query",
        "prometheus_range", "run_check",
    ]  # fmt: skip
    [found] = json.loads(firing.text)
    assert found["labels"]["alertname"] == "PoolSaturated"
    assert instant.ok and json.loads(instant.text)[0]["value"][1] == "48"
    assert window.ok and [v[1] for v in json.loads(window.text)[0]["values"]] == [
        "0", "3", "17", "48"
    ]  # fmt: skip
    [asked] = [r for r in prom.requests if "query_range" in r.path]
    assert "step=" in asked.path and "start=" in asked.path
    assert page.ok and page.text.startswith("HTTP 200")
    assert not other.ok and "outside this incident's scope" in other.text
    assert not evil.ok and "outside this incident's scope" in evil.text
    assert not shell.ok and "not an available tool" in shell.text
    assert not typed.ok and "must be a integer" in typed.text
    assert not extra.ok and "unknown argument 'sql'" in extra.text
    assert history.ok and history.text == "no stored results of orders-api"
    assert not any("169.254" in r.path or "/status/204" in r.path for r in web.requests)


def test_cap_keeps_the_end_within_the_byte_limit() -> None:
    text = "".join(f"line {i} ünïcode\n" for i in range(1000))
    capped = cap(text, 300)
    assert len(capped.encode()) <= 300 + len("[…cut to the last part]\n".encode())
    assert capped.rstrip().endswith("line 999 ünïcode")
