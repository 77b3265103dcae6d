from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest
import trustme
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.prometheus import PrometheusCheck
from tests.jobs.conftest import assert_options_described
from tests.peers.prometheus import (
    EVAL_TIME,
    Answer,
    FakeProm,
    histogram_vector,
    matrix,
    params,
    prom_error,
    scalar,
    string,
    vector,
)
from tests.peers.targets import StartServer
from tests.peers.tls import issue, server_context

CPU = "node_cpu_busy"
WEB1 = {"__name__": CPU, "instance": "web-1:9100", "job": "node"}
WEB2 = {"__name__": CPU, "instance": "web-2:9100", "job": "node"}
WEB3 = {"__name__": CPU, "instance": "web-3:9100", "job": "node"}


@pytest.fixture
async def prom(start_server: StartServer) -> FakeProm:
    fake = FakeProm()
    fake.port = await start_server(fake.handle)
    return fake


def check(url: str = "http://prom:9090", **options: Any) -> PrometheusCheck:
    config = {"name": "cpu", "type": "prometheus", "url": url, "query": CPU, "op": ">"}
    return PrometheusCheck.model_validate({**config, "threshold": 0.8, **options})


async def run(spec: PrometheusCheck, ctx: CheckContext) -> list[CheckResult]:
    return await spec.run(ctx)


async def run_one(spec: PrometheusCheck, ctx: CheckContext) -> CheckResult:
    results = await spec.run(ctx)
    assert len(results) == 1, results
    return results[0]


def with_secrets(client: httpx.AsyncClient, **secrets: str) -> CheckContext:
    return CheckContext(
        http=client, resolve_secret=lambda ref: secrets[ref.removeprefix("secret:")]
    )


# --- configuration ------------------------------------------------------------------------------


def test_every_option_is_described() -> None:
    assert_options_described(PrometheusCheck)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://prom:9090"}, "url must be http:// or https://"),
        ({"url": "http://admin:pw@prom:9090"}, "url must not hold credentials"),
        ({"url": "http://prom:9090/?x=1"}, "without '?' or '#'"),
        ({"op": "=>"}, "Input should be '>'"),
        ({"threshold": float("nan")}, "threshold cannot be NaN"),
        (
            {"bearer_token": "secret:t", "basic_auth": {"username": "u", "password": "p"}},
            "bearer_token or basic_auth, not both",
        ),
        ({"no_data": "maybe"}, "Input should be 'ok', 'degraded', 'failing' or 'error'"),
    ],
)
def test_invalid_options_are_rejected_with_a_reason(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        check(**{"url": "http://prom:9090", **options})


def test_trailing_slash_of_url_is_dropped() -> None:
    assert check(url="http://prom:9090/").url == "http://prom:9090"


# --- thresholds ---------------------------------------------------------------------------------


async def test_series_above_threshold_is_failing_and_names_its_labels(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers[CPU] = vector((WEB1, "0.93"), (WEB2, "0.41"))
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "failing"
    assert result.evidence == 'node_cpu_busy{instance="web-1:9100",job="node"} = 0.93 > 0.8'
    assert result.subject == 'node_cpu_busy{instance="web-1:9100",job="node"}'
    assert result.values["value"] == 0.93
    assert result.values["series"] == 2
    assert result.values["matching"] == 1


@pytest.mark.parametrize(
    ("op", "matches"),
    [(">", False), (">=", True), ("<", False), ("<=", True), ("==", True), ("!=", False)],
)
async def test_each_operator_compares_value_with_threshold(
    prom: FakeProm, ctx: CheckContext, op: str, matches: bool
) -> None:
    prom.answers[CPU] = vector((WEB1, "0.8"))
    result = await run_one(check(prom.url(""), op=op), ctx)
    assert result.status == ("failing" if matches else "ok")
    if matches:
        assert result.evidence.endswith(f"= 0.8 {op} 0.8")
    else:
        assert f"none {op} 0.8" in result.evidence


async def test_no_series_matching_is_one_ok_naming_the_count_and_closest(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers[CPU] = vector((WEB1, "0.5"), (WEB2, "0.74"), (WEB3, "0.1"))
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "ok"
    assert result.evidence == (
        "query `node_cpu_busy` returned 3 series, none > 0.8 "
        '(closest: node_cpu_busy{instance="web-2:9100",job="node"} = 0.74)'
    )


async def test_status_when_matching_can_be_degraded(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers[CPU] = vector((WEB1, "0.93"))
    result = await run_one(check(prom.url(""), status_when_matching="degraded"), ctx)
    assert result.status == "degraded"


async def test_matching_series_come_worst_first_one_result_each(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers[CPU] = vector((WEB1, "0.3"), (WEB2, "0.05"), (WEB3, "0.2"))
    results = await run(check(prom.url(""), op="<", threshold=0.25), ctx)
    assert [r.subject for r in results] == [
        'node_cpu_busy{instance="web-2:9100",job="node"}',
        'node_cpu_busy{instance="web-3:9100",job="node"}',
    ]
    assert [r.status for r in results] == ["failing", "failing"]


async def test_max_series_truncates_and_says_how_many_are_hidden(
    prom: FakeProm, ctx: CheckContext
) -> None:
    samples = [({"__name__": CPU, "instance": f"web-{i}"}, f"0.9{i}") for i in range(5)]
    prom.answers[CPU] = vector(*samples)
    results = await run(check(prom.url(""), max_series=2), ctx)
    assert [r.subject for r in results[:2]] == [
        'node_cpu_busy{instance="web-4"}',
        'node_cpu_busy{instance="web-3"}',
    ]
    assert len(results) == 3
    assert results[2].status == "failing"
    assert results[2].evidence == (
        "3 more series > 0.8 not shown (max_series = 2); "
        "query `node_cpu_busy` returned 5 series, 5 > 0.8"
    )


# --- labels and values --------------------------------------------------------------------------


async def test_label_values_are_quoted_and_escaped_like_prometheus(
    prom: FakeProm, ctx: CheckContext
) -> None:
    labels = {"__name__": "probe_failed", "path": 'C:\\tmp "x"', "msg": "two\nlines"}
    prom.answers["probe_failed"] = vector((labels, "1"))
    result = await run_one(check(prom.url(""), query="probe_failed", op="==", threshold=1), ctx)
    assert result.evidence == ('probe_failed{msg="two\\nlines",path="C:\\\\tmp \\"x\\""} = 1 == 1')


async def test_series_without_a_metric_name_also_names_the_query(
    prom: FakeProm, ctx: CheckContext
) -> None:
    query = "sum by (job) (rate(http_errors_total[5m]))"
    prom.answers[query] = vector(({"job": "api"}, "12.5"))
    result = await run_one(check(prom.url(""), query=query, threshold=10), ctx)
    assert result.evidence == f'{{job="api"}} = 12.5 > 10 (query `{query}`)'


async def test_positive_infinity_exceeds_any_threshold(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers[CPU] = vector((WEB1, "+Inf"))
    result = await run_one(check(prom.url(""), threshold=1e9), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith("= +Inf > 1000000000")
    assert result.values["value"] == "+Inf"


async def test_nan_never_matches_not_even_not_equal(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers[CPU] = vector((WEB1, "NaN"), (WEB2, "0"))
    result = await run_one(check(prom.url(""), op="!=", threshold=0), ctx)
    assert result.status == "ok"
    assert (
        result.evidence == "query `node_cpu_busy` returned 2 series, none != 0; 1 NaN not compared"
    )


async def test_only_nan_series_count_as_no_data(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers[CPU] = vector((WEB1, "NaN"), (WEB2, "NaN"))
    result = await run_one(check(prom.url(""), no_data="degraded"), ctx)
    assert result.status == "degraded"
    assert result.evidence == (
        "query `node_cpu_busy` returned 2 series, all NaN (no_data = degraded)"
    )


# --- no data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["ok", "degraded", "failing", "error"])
async def test_empty_result_takes_the_no_data_status(
    prom: FakeProm, ctx: CheckContext, choice: str
) -> None:
    result = await run_one(check(prom.url(""), query='up{job="gone"}', no_data=choice), ctx)
    assert result.status == choice
    assert result.evidence == f'query `up{{job="gone"}}` returned no series (no_data = {choice})'


async def test_empty_result_is_failing_by_default(prom: FakeProm, ctx: CheckContext) -> None:
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "failing"


# --- other result types -------------------------------------------------------------------------


async def test_scalar_result_is_compared_too(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers["scalar(x)"] = scalar("0.95")
    result = await run_one(check(prom.url(""), query="scalar(x)"), ctx)
    assert result.status == "failing"
    assert result.evidence == "scalar = 0.95 > 0.8 (query `scalar(x)`)"


async def test_scalar_within_threshold_is_ok(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers["vector(1)"] = scalar("0.5")
    result = await run_one(check(prom.url(""), query="vector(1)"), ctx)
    assert result.status == "ok"
    assert result.evidence == "query `vector(1)` returned scalar 0.5, not > 0.8"


async def test_range_vector_is_an_error_explaining_instant_queries(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers["up[5m]"] = matrix(WEB1, "1", "1")
    result = await run_one(check(prom.url(""), query="up[5m]"), ctx)
    assert result.status == "error"
    assert "query `up[5m]` returned a range vector (matrix)" in result.evidence
    assert "drop the [range] selector" in result.evidence


async def test_string_result_is_an_error(prom: FakeProm, ctx: CheckContext) -> None:
    prom.answers['"hello"'] = string("hello")
    result = await run_one(check(prom.url(""), query='"hello"'), ctx)
    assert result.status == "error"
    assert result.evidence == 'query `"hello"` returned a string, not a number'


async def test_native_histogram_is_an_error_suggesting_a_function(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers["rpc_latency"] = histogram_vector({"__name__": "rpc_latency"})
    result = await run_one(check(prom.url(""), query="rpc_latency"), ctx)
    assert result.status == "error"
    assert "rpc_latency{} as a native histogram" in result.evidence
    assert "histogram_quantile()" in result.evidence


async def test_server_warnings_are_added_to_evidence(prom: FakeProm, ctx: CheckContext) -> None:
    warning = "partial response: store gateway eu-1 unreachable"
    prom.answers[CPU] = vector((WEB1, "0.1"), warnings=[warning])
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "ok"
    assert result.evidence.endswith(f"; server warnings: {warning}")


async def test_malformed_sample_value_is_an_error_naming_the_field(
    prom: FakeProm, ctx: CheckContext
) -> None:
    sample = {"metric": {"__name__": CPU}, "value": [EVAL_TIME, "lots"]}
    body = {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
    prom.answers[CPU] = Answer(200, json.dumps(body).encode())
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "error"
    assert "returned JSON that is not a Prometheus query response" in result.evidence
    assert "(data.vector.result.0.value.1: Input should be a valid number" in result.evidence


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (400, "bad_data", "1:5: parse error: unclosed left parenthesis"),
        (422, "execution", "many-to-many matching not allowed"),
        (503, "timeout", "query timed out in expression evaluation"),
    ],
)
async def test_query_error_is_error_quoting_the_servers_message(
    prom: FakeProm, ctx: CheckContext, status: int, error_type: str, message: str
) -> None:
    prom.answers["rate(x[5m]"] = prom_error(error_type, message, status)
    result = await run_one(check(prom.url(""), query="rate(x[5m]"), ctx)
    assert result.status == "error"
    assert result.evidence == f"query `rate(x[5m]` failed (HTTP {status}, {error_type}): {message}"


async def test_html_503_from_a_proxy_is_error_quoting_the_page(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.down = True
    result = await run_one(check(prom.url("")), ctx)
    assert result.status == "error"
    assert result.evidence.startswith(f"GET {prom.url('')}/api/v1/query returned 503; body: ")
    assert "503 Service Temporarily Unavailable" in result.evidence


async def test_wrong_base_url_is_error_with_a_hint(prom: FakeProm, ctx: CheckContext) -> None:
    result = await run_one(check(prom.url("/graph")), ctx)
    assert result.status == "error"
    assert "returned 404 (is url the API base" in result.evidence


async def test_unreachable_server_is_error(closed_port: int, ctx: CheckContext) -> None:
    result = await run_one(check(f"http://127.0.0.1:{closed_port}"), ctx)
    assert result.status == "error"
    assert result.evidence.startswith(f"GET http://127.0.0.1:{closed_port}/api/v1/query failed")
    assert result.evidence.endswith("connection refused")


async def test_server_that_never_answers_is_error_after_timeout(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.hang = True
    result = await run_one(check(prom.url(""), timeout="200ms"), ctx)
    assert result.status == "error"
    assert result.evidence == f"GET {prom.url('')}/api/v1/query timed out after 0.2 s"


# --- requests, auth and secrets -----------------------------------------------------------------


async def test_query_is_sent_as_a_get_parameter(prom: FakeProm, ctx: CheckContext) -> None:
    await run(check(prom.url(""), query='rate(x{job="a b"}[5m]) > 0'), ctx)
    request = prom.requests[-1]
    assert request.method == "GET"
    assert request.path.startswith("/api/v1/query?")
    assert params(request) == [("query", 'rate(x{job="a b"}[5m]) > 0')]


async def test_long_query_is_posted_as_a_form(prom: FakeProm, ctx: CheckContext) -> None:
    query = " or ".join(f'up{{instance="host-{i}.example.internal:9100"}}' for i in range(60))
    prom.answers[query] = vector((WEB1, "0.1"))
    result = await run_one(check(prom.url(""), query=query), ctx)
    assert result.status == "ok"
    assert prom.requests[-1].method == "POST"
    assert params(prom.requests[-1]) == [("query", query)]


async def test_url_path_prefix_is_kept(start_server: StartServer, ctx: CheckContext) -> None:
    mimir = FakeProm(prefix="/prometheus")
    mimir.port = await start_server(mimir.handle)
    mimir.answers[CPU] = vector((WEB1, "0.1"))
    result = await run_one(check(mimir.url("/prometheus")), ctx)
    assert result.status == "ok"
    assert mimir.requests[-1].path.startswith("/prometheus/api/v1/query?")


async def test_secret_bearer_token_is_sent_and_never_in_evidence(prom: FakeProm) -> None:
    async with httpx.AsyncClient() as client:
        ctx = with_secrets(client, prom_token="tok-s3cr3t-123")
        spec = check(prom.url(""), bearer_token="secret:prom_token")
        await run(spec, ctx)
        assert prom.requests[-1].headers["authorization"] == "Bearer tok-s3cr3t-123"
        prom.echo_auth = True
        result = await run_one(spec, ctx)
    assert result.status == "error"
    assert "returned 401 (the credentials were refused" in result.evidence
    assert "Bearer ***" in result.evidence
    assert "s3cr3t" not in result.evidence


async def test_basic_auth_password_from_a_secret_is_sent(prom: FakeProm) -> None:
    async with httpx.AsyncClient() as client:
        ctx = with_secrets(client, prom_pw="pa55word")
        auth = {"username": "grafana", "password": "secret:prom_pw"}
        await run(check(prom.url(""), basic_auth=auth), ctx)
    expected = base64.b64encode(b"grafana:pa55word").decode()
    assert prom.requests[-1].headers["authorization"] == f"Basic {expected}"


async def test_org_id_sets_the_tenant_header(prom: FakeProm, ctx: CheckContext) -> None:
    await run(check(prom.url(""), org_id="team-a", headers={"X-Extra": "1"}), ctx)
    assert prom.requests[-1].headers["x-scope-orgid"] == "team-a"
    assert prom.requests[-1].headers["x-extra"] == "1"


async def test_unresolvable_secret_is_error_and_sends_nothing(prom: FakeProm) -> None:
    def missing(ref: str) -> str:
        raise KeyError(ref)

    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=missing)
        result = await run_one(check(prom.url(""), bearer_token="secret:nope"), ctx)
    assert result.status == "error"
    assert result.evidence == (
        f"GET {prom.url('')}/api/v1/query not sent: "
        "cannot resolve bearer_token (secret:nope): 'secret:nope'"
    )
    assert prom.requests == []


async def test_https_with_a_private_ca_file(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    secure = FakeProm(scheme="https")
    secure.port = await start_server(secure.handle, server_context(issue(ca, "localhost")))
    secure.answers[CPU] = vector((WEB1, "0.1"))
    result = await run_one(check(secure.url("", host="localhost"), ca_file=ca_file), ctx)
    assert result.status == "ok"


# --- context for root-cause analysis ------------------------------------------------------------


async def test_rca_context_shows_query_condition_and_series_marked(
    prom: FakeProm, ctx: CheckContext
) -> None:
    prom.answers[CPU] = vector((WEB1, "0.93"), (WEB2, "0.41"))
    spec = check(prom.url(""))
    [block] = await spec.rca_context(ctx, await run(spec, ctx))
    assert block.title == "Prometheus query of cpu"
    assert block.text.splitlines() == [
        "query: node_cpu_busy",
        "problem when: value > 0.8 (status failing; no data means failing)",
        "result (vector, 2 series now, worst first):",
        '  MATCH node_cpu_busy{instance="web-1:9100",job="node"} = 0.93',
        '        node_cpu_busy{instance="web-2:9100",job="node"} = 0.41',
    ]


async def test_rca_context_says_when_the_server_is_unreachable(
    closed_port: int, ctx: CheckContext
) -> None:
    [block] = await check(f"http://127.0.0.1:{closed_port}").rca_context(ctx, [])
    assert "re-running the query for context failed: " in block.text
    assert "connection refused" in block.text
