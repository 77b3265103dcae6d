from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.alertmanager import AlertmanagerCheck
from jobs.base import CheckContext
from tests.jobs.conftest import assert_options_described
from tests.peers.prometheus import FakeProm, alert, params
from tests.peers.targets import StartServer

NOW = datetime(2024, 11, 27, 14, 40, 30, tzinfo=UTC)
SINCE = datetime(2024, 11, 27, 14, 2, 11, tzinfo=UTC)
CRASHLOOP = alert(
    "KubePodCrashLooping",
    "critical",
    labels={"namespace": "prod", "pod": "api-7d9", "prometheus": "monitoring/k8s"},
    annotations={
        "summary": "Pod prod/api-7d9 is crash looping.",
        "description": 'Pod prod/api-7d9 (container "api") is restarting 2.1 times / 10 minutes.',
        "runbook_url": "https://runbooks.example/KubePodCrashLooping",
    },
    starts_at=SINCE,
)


@pytest.fixture
async def am(start_server: StartServer) -> FakeProm:
    fake = FakeProm()
    fake.port = await start_server(fake.handle)
    return fake


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    async with httpx.AsyncClient() as client:
        yield CheckContext(http=client, now=lambda: NOW)


def check(url: str = "http://am:9093", **options: Any) -> AlertmanagerCheck:
    config = {"name": "alerts", "type": "alertmanager", "url": url}
    return AlertmanagerCheck.model_validate({**config, **options})


async def run_one(spec: AlertmanagerCheck, ctx: CheckContext) -> CheckResult:
    results = await spec.run(ctx)
    assert len(results) == 1, results
    return results[0]


# --- configuration ------------------------------------------------------------------------------


def test_every_option_is_described() -> None:
    assert_options_described(AlertmanagerCheck)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"matchers": ["severity"]}, "'severity' is not a matcher"),
        ({"matchers": ['{severity="critical"}']}, "write matchers without braces"),
        ({"url": "am:9093"}, "url must be http:// or https://"),
        ({"headers": {"Authorization": "x"}, "bearer_token": "secret:t"}, "conflicts with"),
    ],
)
def test_invalid_options_are_rejected_with_a_reason(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        check(**options)


# --- firing alerts ------------------------------------------------------------------------------


async def test_no_matching_alerts_is_one_ok(am: FakeProm, ctx: CheckContext) -> None:
    result = await run_one(check(am.url(""), matchers=['severity="critical"']), ctx)
    assert result.status == "ok"
    assert result.evidence == (
        f'no firing alerts matching severity="critical" at {am.url("")} '
        "(silenced and inhibited excluded)"
    )


async def test_critical_alert_is_failing_with_full_evidence(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.alerts = [CRASHLOOP]
    result = await run_one(check(am.url("")), ctx)
    assert result.status == "failing"
    assert result.evidence == (
        "KubePodCrashLooping firing since 14:02 UTC (38m): Pod prod/api-7d9 is crash looping; "
        'labels {namespace="prod",pod="api-7d9",prometheus="monitoring/k8s",severity="critical"}; '
        'description: "Pod prod/api-7d9 (container \\"api\\") is restarting 2.1 times / '
        '10 minutes."; source: http://prometheus:9090/graph?g0.expr=up+%3D%3D+0'
    )
    assert result.values["severity"] == "critical"
    assert result.values["fingerprint"] == CRASHLOOP["fingerprint"]


async def test_subject_is_alertname_and_identifying_labels(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [CRASHLOOP]
    result = await run_one(check(am.url("")), ctx)
    assert result.subject == 'KubePodCrashLooping{namespace="prod",pod="api-7d9"}'


@pytest.mark.parametrize(
    ("severity", "status"),
    [("critical", "failing"), ("CRITICAL", "failing"), ("warning", "degraded"),
     ("info", "degraded"), ("page", "degraded"), (None, "degraded")],
)  # fmt: skip
async def test_severity_label_maps_to_status(
    am: FakeProm, ctx: CheckContext, severity: str | None, status: str
) -> None:
    am.alerts = [alert("DiskFilling", severity, starts_at=SINCE)]
    result = await run_one(check(am.url("")), ctx)
    assert result.status == status


async def test_severity_label_and_failing_values_are_configurable(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.alerts = [alert("Down", None, labels={"priority": "P1"}, starts_at=SINCE)]
    spec = check(am.url(""), severity_label="priority", failing_severities=["P1", "P2"])
    result = await run_one(spec, ctx)
    assert result.status == "failing"


async def test_one_result_per_alert_failing_first_then_oldest(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.alerts = [
        alert("A", "warning", starts_at=SINCE - timedelta(hours=1)),
        alert("B", "critical", starts_at=SINCE),
        alert("C", "critical", starts_at=SINCE - timedelta(minutes=5)),
    ]
    results = await check(am.url("")).run(ctx)
    assert [(r.subject, r.status) for r in results] == [
        ("C", "failing"),
        ("B", "failing"),
        ("A", "degraded"),
    ]


async def test_alert_that_started_on_an_earlier_day_shows_the_date(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.alerts = [alert("Old", "warning", starts_at=SINCE - timedelta(days=2, hours=3))]
    result = await run_one(check(am.url("")), ctx)
    assert result.evidence.startswith("Old firing since 2024-11-25 11:02 UTC (2d 3h); labels ")


async def test_max_alerts_truncates_and_counts_the_rest(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [
        alert(f"A{i}", "warning", starts_at=SINCE + timedelta(minutes=i)) for i in range(5)
    ]
    results = await check(am.url(""), max_alerts=2).run(ctx)
    assert [r.subject for r in results[:2]] == ["A0", "A1"]
    assert results[2].status == "degraded"
    assert results[2].evidence == (
        "3 more firing alerts not shown (max_alerts = 2); "
        "5 firing of any kind (silenced and inhibited excluded)"
    )


# --- filters ------------------------------------------------------------------------------------


async def test_matchers_are_forwarded_as_filter_parameters(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [CRASHLOOP, alert("KubeletDown", "warning", starts_at=SINCE),
                 alert("NodeDown", "critical", starts_at=SINCE)]  # fmt: skip
    spec = check(am.url(""), matchers=['alertname=~"Kube.*"', 'severity="critical"'])
    result = await run_one(spec, ctx)
    assert result.subject is not None and result.subject.startswith("KubePodCrashLooping")
    assert params(am.requests[-1]) == [
        ("active", "true"),
        ("silenced", "false"),
        ("inhibited", "false"),
        ("filter", 'alertname=~"Kube.*"'),
        ("filter", 'severity="critical"'),
    ]


async def test_silenced_alerts_are_excluded_by_default(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [alert("Noisy", "critical", starts_at=SINCE, silenced_by=["5f1c-silence"])]
    result = await run_one(check(am.url("")), ctx)
    assert result.status == "ok"


async def test_include_silenced_reports_them_naming_the_silence(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.alerts = [alert("Noisy", "critical", starts_at=SINCE, silenced_by=["5f1c-silence"])]
    result = await run_one(check(am.url(""), include_silenced=True), ctx)
    assert result.status == "failing"
    assert "; silenced by 5f1c-silence" in result.evidence
    assert ("silenced", "true") in params(am.requests[-1])


async def test_inhibited_alerts_are_excluded_by_default(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [alert("Child", "warning", starts_at=SINCE, inhibited_by=["parent-fp"])]
    result = await run_one(check(am.url("")), ctx)
    assert result.status == "ok"


async def test_silenced_alerts_are_dropped_even_if_a_proxy_ignores_the_filter(
    am: FakeProm, ctx: CheckContext
) -> None:
    am.ignore_filters = True
    am.alerts = [alert("Noisy", "critical", starts_at=SINCE, silenced_by=["5f1c-silence"])]
    result = await run_one(check(am.url("")), ctx)
    assert result.status == "ok"


# --- errors, auth -------------------------------------------------------------------------------


async def test_alertmanager_error_body_is_quoted(am: FakeProm, ctx: CheckContext) -> None:
    result = await run_one(check(am.url(""), matchers=['alertname=~"("']), ctx)
    assert result.status == "error"
    assert result.evidence.startswith(
        f"GET {am.url('')}/api/v2/alerts returned 400: "
        'bad matcher format: alertname=~"(": error parsing regexp'
    )


async def test_html_503_is_error(am: FakeProm, ctx: CheckContext) -> None:
    am.down = True
    result = await run_one(check(am.url("")), ctx)
    assert result.status == "error"
    assert "/api/v2/alerts returned 503; body: " in result.evidence


async def test_unreachable_alertmanager_is_error(closed_port: int, ctx: CheckContext) -> None:
    result = await run_one(check(f"http://127.0.0.1:{closed_port}"), ctx)
    assert result.status == "error"
    assert result.evidence.endswith("connection refused")


async def test_secret_bearer_token_and_org_id_are_sent(am: FakeProm) -> None:
    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=lambda ref: "am-t0ken-xyz")
        spec = check(am.url(""), bearer_token="secret:am", org_id="tenant-1")
        result = await run_one(spec, ctx)
    assert am.requests[-1].headers["authorization"] == "Bearer am-t0ken-xyz"
    assert am.requests[-1].headers["x-scope-orgid"] == "tenant-1"
    assert "am-t0ken" not in result.evidence


async def test_echoed_basic_auth_never_reaches_evidence(am: FakeProm) -> None:
    am.echo_auth = True
    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=lambda ref: "hunter22")
        auth = {"username": "ops", "password": "secret:am_pw"}
        result = await run_one(check(am.url(""), basic_auth=auth), ctx)
    assert result.status == "error"
    assert "returned 401" in result.evidence
    assert "Basic ***" in result.evidence
    assert "hunter22" not in result.evidence


# --- context for root-cause analysis ------------------------------------------------------------


async def test_rca_context_carries_full_annotations(am: FakeProm, ctx: CheckContext) -> None:
    am.alerts = [CRASHLOOP]
    [block] = await check(am.url("")).rca_context(ctx, [])
    assert block.title == "Alertmanager alerts of any kind (silenced and inhibited excluded)"
    assert "runbook_url: https://runbooks.example/KubePodCrashLooping" in block.text
    assert 'description: Pod prod/api-7d9 (container "api") is restarting' in block.text
    assert "receivers slack-oncall" in block.text
