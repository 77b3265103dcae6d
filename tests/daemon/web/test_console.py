"""The console over loopback: the real listener (uvicorn + the door) and app, a real store
seeded with a scripted incident, a real HTTP client. The browser tests drive the same pages
through Chromium against a real daemon process."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.errors import ConfigError
from daemon.service.health import HealthReport, serve_health
from daemon.store import Store
from daemon.web.console import Console
from tests.cli import run_cli
from tests.daemon.web.seed import EVIL, RCA_COST, ROOT_CAUSE, SECRET_EVIDENCE, seed

TOKEN = "tok-web-3f9a1c"


def write_config(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path / "state"}"
[budget]
daily_usd = 1.0
monthly_usd = 20.0
[budget.providers.anthropic]
monthly_usd = 5.0
{web}
[[checks]]
name = "api"
type = "tcp"
host = "127.0.0.1"
port = 1
tags = ["storefront"]
depends_on = ["db"]
[[checks]]
name = "db"
type = "tcp"
host = "127.0.0.1"
port = 2
tags = ["storefront"]
[[checks]]
name = "payroll-internal"
type = "tcp"
host = "127.0.0.1"
port = 3
""")
    return path


LOOPBACK = """
[web]
enabled = true
[web.status]
enabled = true
title = "Example Corp status"
checks = ["tag:storefront"]
"""


class Served:
    def __init__(self, base: str, settings: Settings, path: Path) -> None:
        self.base = base
        self.settings = settings
        self.path = path

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10, **kwargs)  # type: ignore[arg-type]


async def _serve(tmp_path: Path, web: str) -> AsyncIterator[Served]:
    path = write_config(tmp_path, web)
    settings = load_settings(path)
    seed(settings.daemon.state_dir)
    store = Store.open(settings.daemon.state_dir)
    secrets = {"WEB_TOKEN": TOKEN}
    console = Console(
        settings=lambda: settings,
        open_store=lambda: store,
        config_path=path,
        last_cycle=lambda: None,
        resolve=lambda ref: secrets[ref.removeprefix("secret:")],
    )
    listener = await serve_health(
        "127.0.0.1", 0, lambda: HealthReport(True, {"checks": 3}), console=console
    )
    try:
        yield Served(f"http://127.0.0.1:{listener.port}", settings, path)
    finally:
        listener.close()
        await listener.wait_closed()
        store.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async for s in _serve(tmp_path, LOOPBACK):
        yield s


async def _get(served: Served, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(served.base + path, **kwargs)  # type: ignore[arg-type]


async def test_overview_lists_the_open_incident_first_and_escapes_evidence(
    served: Served,
) -> None:
    page = await _get(served, "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "#1" in html and "/incidents/1" in html
    assert EVIL not in html  # the markup never reaches the page as markup
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert html.index("Open incidents") < html.index("<h2>Checks")
    # failing checks first, each with its uptime and a sparkline where latencies exist
    rows = html[html.index('id="checks"') :]
    assert rows.index('data-check="api"') < rows.index('data-check="db"')
    assert 'class="spark"' in rows
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in html.replace('<script src="/static/live.js" defer></script>', "")
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in html


async def test_incident_page_shows_triage_rca_cost_graph_and_the_cli_hint(
    served: Served,
) -> None:
    page = await _get(served, "/incidents/1")
    html = page.text
    assert page.status_code == 200
    assert ROOT_CAUSE in html
    assert "high confidence" in html
    assert "kill the batch job" in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html  # model text stays text
    assert "$0.0123" in html and "5,321 / 642" in html
    assert "watchkeeper investigate 1" in html
    notices = html[html.index('id="notifications"') :]
    assert "ops-slack" in notices and "out-pending" in notices
    assert '<svg class="graph"' in html and "checkout" in html and "search" in html
    assert EVIL not in html
    missing = await _get(served, "/incidents/99")
    assert missing.status_code == 404


async def test_api_matches_the_cli_json(served: Served) -> None:
    """/api/... return the CLI's --json documents (same builders, same shapes)."""
    env = {**os.environ, "NO_COLOR": "1"}
    shown = run_cli("incidents", "show", "1", "--json", "--config", str(served.path), env=env)
    assert shown.returncode == 0, shown.stderr
    api = (await _get(served, "/api/incidents/1")).json()
    assert api == json.loads(shown.stdout)

    status = run_cli("status", "--json", "--config", str(served.path), env=env)
    cli_status = json.loads(status.stdout)
    api_status = (await _get(served, "/api/status")).json()
    assert api_status.keys() == cli_status.keys()
    assert api_status["checks"] == cli_status["checks"]
    assert api_status["open_incidents"] == cli_status["open_incidents"]
    assert api_status["daemon"]["running"] is True

    costs = json.loads(run_cli("costs", "--json", "--config", str(served.path), env=env).stdout)
    api_costs = (await _get(served, "/api/costs?since=7d")).json()
    assert {k: v for k, v in api_costs.items() if k != "since"} == {
        k: v for k, v in costs.items() if k != "since"
    }
    audit = json.loads(run_cli("audit", "--json", "--config", str(served.path), env=env).stdout)
    assert (await _get(served, "/api/audit?since=30d")).json()["hosts"] == audit["hosts"]
    assert (await _get(served, "/api/costs?since=soon")).status_code == 400


async def test_spend_page_charts_the_ledger_and_keeps_unknown_costs_unknown(
    served: Served,
) -> None:
    html = (await _get(served, "/spend?since=7d")).text
    assert "$0.0123" in html  # the one known cloud cost
    assert "1 call with unknown price" in html
    assert "+1 unknown" in html  # the chart bar says so instead of drawing $0
    assert "anthropic/claude-sonnet-4-5" in html and "ollama/gemma4:27b" in html
    assert 'class="chart"' in html
    where = html[html.index("Local vs cloud") :]
    assert "local (1 call)" in where and "cloud (2 calls)" in where
    assert "no limit" not in html and "$20.00" in html  # monthly budget with its limit
    budgets = html[html.index('class="budgets"') :]
    anthropic = budgets[budgets.index("<td>anthropic</td>") :]
    assert anthropic.index("$0.0123") < anthropic.index("$5.00") < anthropic.index("</tr>")
    export = await _get(served, "/spend.csv?since=7d")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {r["model"] for r in rows} == {
        "gemma4:27b",
        "claude-sonnet-4-5",
        "'=HYPERLINK(evil)",  # a formula never runs in the reviewer's spreadsheet
    }
    assert sum(float(r["cost_usd"]) for r in rows if r["cost_usd"]) == float(RCA_COST)


async def test_audit_lists_every_host_that_received_prompts(served: Served) -> None:
    html = (await _get(served, "/audit")).text
    for host in ("127.0.0.1:11434", "api.anthropic.com", "10.9.9.9:1234"):
        assert host in html
    assert "21,000" in html and "keyring" in html


async def test_sweeps_page_shows_findings_changes_and_report_links(served: Served) -> None:
    html = (await _get(served, "/sweeps")).text
    assert "nightly-security" in html
    assert "1 new" in html and "1 resolved since the previous run" in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html and "<script>x()" not in html
    for ext, kind in (
        ("md", "text/plain"),
        ("json", "application/json"),
        ("sarif", "application/json"),
        ("ocsf.json", "application/json"),
    ):
        assert f'href="/sweeps/nightly-security/latest.{ext}"' in html
        report = await _get(served, f"/sweeps/nightly-security/latest.{ext}")
        assert report.status_code == 200 and report.headers["content-type"].startswith(kind)
    for path in ("/sweeps/nightly-security/latest.txt", "/sweeps/other/latest.md"):
        assert (await _get(served, path)).status_code == 404
    api = (await _get(served, "/api/sweeps")).json()
    assert [d["sweep"]["name"] for d in api] == ["nightly-security"]


async def test_metrics_parse_with_the_prometheus_parser(served: Served) -> None:
    response = await _get(served, "/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    up = {s.labels["check"]: s.value for s in families["watchkeeper_check_up"].samples}
    assert up == {"api": 0.0, "db": 1.0, "payroll-internal": 0.0}
    open_ = {s.labels["severity"]: s.value for s in families["watchkeeper_incidents_open"].samples}
    assert open_["high"] == 1.0 and open_["critical"] == 0.0
    cost = families["watchkeeper_ai_cost_usd"]
    assert cost.type == "counter"
    by_model = {s.labels["model"]: s.value for s in cost.samples if s.name.endswith("_total")}
    assert by_model["claude-sonnet-4-5"] == pytest.approx(float(RCA_COST))
    unknown = families["watchkeeper_ai_unknown_cost_calls"].samples
    assert [s.labels["provider"] for s in unknown if s.name.endswith("_total")] == ["lmstudio"]
    remaining = {
        s.labels["period"]: s.value for s in families["watchkeeper_ai_budget_remaining_usd"].samples
    }
    assert remaining["month"] < 20.0
    latency = {
        s.labels["check"]: s.value for s in families["watchkeeper_check_latency_seconds"].samples
    }
    assert latency["db"] == pytest.approx(0.021)  # the newest run: 21 ms
    findings = {
        s.labels["severity"]: s.value for s in families["watchkeeper_sweep_findings"].samples
    }
    assert findings["high"] == 1.0 and findings["low"] == 0.0  # the resolved one is gone
    for family in families.values():  # no free text as a label
        for sample in family.samples:
            assert "evidence" not in sample.labels and "host" not in sample.labels


async def test_status_page_shows_only_public_checks_and_no_internals(served: Served) -> None:
    page = await _get(served, "/status")
    html = page.text
    assert page.status_code == 200
    assert "Example Corp status" in html
    assert "api" in html and "db" in html
    assert "payroll-internal" not in html and SECRET_EVIDENCE not in html
    for internal in ("api.internal.example", "HTTP 503", "anthropic", "$", "/incidents/"):
        assert internal not in html
    assert "Major outage" in html
    assert "api unavailable" in html  # the public incident title


async def test_status_page_is_off_unless_enabled(tmp_path: Path) -> None:
    async for served in _serve(tmp_path, "[web]\nenabled = true\n"):
        assert (await _get(served, "/status")).status_code == 404


async def test_everything_is_read_only(served: Served) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for path in ("/", "/incidents/1", "/api/status", "/metrics", "/spend"):
            response = await client.post(served.base + path, content=b"x")
            assert response.status_code in (404, 405), path


OFF_LOOPBACK = """
[web]
enabled = true
listen = "0.0.0.0:8787"
token = "secret:WEB_TOKEN"
[web.status]
enabled = true
checks = ["db"]
"""


async def test_off_loopback_needs_the_token_except_healthz_and_status(tmp_path: Path) -> None:
    async for served in _serve(tmp_path, OFF_LOOPBACK):
        async with httpx.AsyncClient(timeout=10) as client:
            refused = await client.get(served.base + "/api/status")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert (await client.get(served.base + "/metrics")).status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert (await client.get(served.base + "/", headers=wrong)).status_code == 401
            assert (await client.get(served.base + "/healthz")).status_code == 200
            assert (await client.get(served.base + "/status")).status_code == 200
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert (await client.get(served.base + "/api/status", headers=right)).status_code == 200
            # a browser: ?token= once, then a cookie that is not the token
            entered = await client.get(served.base + "/spend?since=7d&token=" + TOKEN)
            assert entered.status_code == 303
            assert entered.headers["location"] == "/spend?since=7d"
            cookie = entered.cookies["watchkeeper_session"]
            assert TOKEN not in cookie
            again = await client.get(served.base + "/spend?since=7d")
            assert again.status_code == 200 and "AI spend" in again.text


@pytest.mark.parametrize(
    ("web", "ok"),
    [
        ('[web]\nenabled = true\nlisten = "0.0.0.0:8787"\n', False),
        ('[web]\nenabled = true\nlisten = "192.0.2.1:8787"\n', False),
        ('[web]\nenabled = true\nlisten = "[::1]:8787"\n', True),
        ('[web]\nenabled = false\nlisten = "0.0.0.0:8787"\n', True),
        ('[web]\nenabled = true\nlisten = "0.0.0.0:8787"\ntoken = "secret:T"\n', True),
        ('[web]\nenabled = true\ntoken = "plain-value"\n', False),
    ],
)
def test_config_refuses_a_reachable_console_without_authentication(
    tmp_path: Path, web: str, ok: bool
) -> None:
    path = write_config(tmp_path, web)
    load: Callable[[], Settings] = lambda: load_settings(path)  # noqa: E731
    if ok:
        load()
        return
    with pytest.raises(ConfigError) as raised:
        load()
    text = str(raised.value) + " ".join(p.render(str(path)) for p in raised.value.problems)
    assert "web" in text
    assert "plain-value" not in text


@pytest.mark.parametrize(("proxies", "let_in"), [('["127.0.0.1"]', True), ('["192.0.2.1"]', False)])
async def test_a_trusted_proxy_header_is_honoured_only_from_the_proxy(
    tmp_path: Path, proxies: str, let_in: bool
) -> None:
    web = f"""
[web]
enabled = true
listen = "0.0.0.0:8787"
trusted_proxy_header = "X-Forwarded-User"
trusted_proxies = {proxies}
"""
    async for served in _serve(tmp_path, web):
        async with httpx.AsyncClient(timeout=10) as client:
            bare = await client.get(served.base + "/api/status")
            assert bare.status_code == 401
            proxied = await client.get(
                served.base + "/api/status", headers={"X-Forwarded-User": "alice"}
            )
            assert proxied.status_code == (200 if let_in else 401)
