from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from pydantic import ValidationError

from daemon.config.load import load_settings
from daemon.errors import ConfigError
from jobs.base import CheckContext
from jobs.http import HttpCheck
from tests.jobs.conftest import assert_options_described
from tests.peers.targets import HttpPeer, StartServer
from tests.peers.tls import issue, server_context


def check(url: str, **options: Any) -> HttpCheck:
    return HttpCheck.model_validate({"name": "web", "type": "http", "url": url, **options})


async def run_one(spec: HttpCheck, ctx: CheckContext) -> Any:
    results = await spec.run(ctx)
    assert len(results) == 1
    return results[0]


async def https_peer(
    start_server: StartServer, ca: trustme.CA, *names: str, days: float = 90
) -> HttpPeer:
    peer = HttpPeer(scheme="https")
    peer.port = await start_server(peer.handle, server_context(issue(ca, *names, days=days)))
    return peer


# --- status ---------------------------------------------------------------------------------


async def test_200_is_ok_with_status_and_latency(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/ok")), ctx)
    assert result.status == "ok"
    assert result.evidence.startswith(f"GET {http_peer.url('/ok')} returned 200 in ")
    assert result.evidence.endswith(" ms")
    assert result.values["status_code"] == 200
    assert isinstance(result.values["latency_ms"], float)


async def test_503_is_failing_and_quotes_expected_and_body(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    result = await run_one(check(http_peer.url("/status/503")), ctx)
    assert result.status == "failing"
    assert f"GET {http_peer.url('/status/503')} returned 503 in " in result.evidence
    assert result.evidence.endswith('; expected 200; body: "database unavailable"')
    assert result.values["status_code"] == 503


async def test_status_class_accepts_any_code_in_it(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/status/204"), expected_status=["2xx"]), ctx)
    assert result.status == "ok"
    assert "returned 204" in result.evidence


async def test_expected_status_lists_all_alternatives(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    spec = check(http_peer.url("/status/404"), expected_status=[200, "3xx"])
    result = await run_one(spec, ctx)
    assert result.status == "failing"
    assert "returned 404" in result.evidence
    assert "; expected 200 or 3xx" in result.evidence


async def test_post_sends_method_and_body(http_peer: HttpPeer, ctx: CheckContext) -> None:
    spec = check(http_peer.url("/echo"), method="post", body="ping", body_contains="POST ping")
    result = await run_one(spec, ctx)
    assert result.status == "ok"
    assert result.evidence.startswith("POST ")
    assert http_peer.requests[-1].body == b"ping"


# --- latency and timeouts ---------------------------------------------------------------------


async def test_slower_than_max_latency_is_degraded(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/slow"), max_latency="20ms"), ctx)
    assert result.status == "degraded"
    assert "returned 200 in" in result.evidence
    assert result.evidence.endswith("; slower than max_latency 20 ms")


async def test_no_answer_within_timeout_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/hang"), timeout="200ms"), ctx)
    assert result.status == "failing"
    assert result.evidence == f"GET {http_peer.url('/hang')} timed out after 0.2 s"


# --- broken peers ------------------------------------------------------------------------------


async def test_refused_connection_is_failing(closed_port: int, ctx: CheckContext) -> None:
    url = f"http://127.0.0.1:{closed_port}/ok"
    result = await run_one(check(url), ctx)
    assert result.status == "failing"
    assert result.evidence.startswith(f"GET {url} failed after ")
    assert result.evidence.endswith(" ms: connection refused")


async def test_garbage_response_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/garbage")), ctx)
    assert result.status == "failing"
    assert "failed after" in result.evidence
    assert "malformed or incomplete response" in result.evidence


async def test_reset_connection_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/reset")), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith(" ms: connection reset by peer")


async def test_every_address_refused_is_reported_once() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        attempts = [ConnectionRefusedError(111, "refused"), ConnectionRefusedError(111, "no")]
        error = httpx.ConnectError("All connection attempts failed", request=request)
        error.__cause__ = ExceptionGroup("multiple connection attempts failed", attempts)
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        result = await run_one(check("http://db.internal/ok"), CheckContext(http=client))
    assert result.status == "failing"
    assert result.evidence.endswith(" ms: connection refused")


async def test_dns_failure_is_failing_with_resolver_message() -> None:
    def unknown(request: httpx.Request) -> httpx.Response:
        error = httpx.ConnectError("[Errno -2] Name or service not known", request=request)
        error.__cause__ = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(unknown)) as client:
        result = await run_one(check("http://nope.internal/ok"), CheckContext(http=client))
    assert result.status == "failing"
    assert result.evidence.endswith(" ms: DNS lookup failed: Name or service not known")


# --- redirects ---------------------------------------------------------------------------------


async def test_redirect_is_followed_by_default(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/redirect")), ctx)
    assert result.status == "ok"
    assert "returned 200 in" in result.evidence
    assert f"after 1 redirect to {http_peer.url('/ok')}" in result.evidence


async def test_redirect_not_followed_reports_location(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    result = await run_one(check(http_peer.url("/redirect"), follow_redirects=False), ctx)
    assert result.status == "failing"
    assert "returned 302 in" in result.evidence
    assert "(Location: /ok); expected 200" in result.evidence


async def test_configured_headers_and_credentials_never_follow_a_redirect_to_another_origin(
    http_peer: HttpPeer, start_server: StartServer, ctx: CheckContext
) -> None:
    elsewhere = HttpPeer()
    elsewhere.port = await start_server(elsewhere.handle)
    secret_ctx = CheckContext(http=ctx.http, resolve_secret=lambda ref: "s3cr3t-api-key-value")
    spec = check(
        http_peer.url(f"/redirect-to?{elsewhere.url('/ok')}"),
        headers={"X-Api-Key": "secret:API_KEY", "Cookie": "session=abc123"},
        basic_auth={"username": "ops", "password": "secret:PW"},
    )
    result = await run_one(spec, secret_ctx)
    assert result.status == "ok"
    (first,) = http_peer.requests
    (second,) = elsewhere.requests
    assert first.headers["x-api-key"] == "s3cr3t-api-key-value"
    assert first.headers["cookie"] == "session=abc123"
    assert first.headers["authorization"].startswith("Basic ")
    for name in ("x-api-key", "cookie", "authorization"):
        assert name not in second.headers, name


async def test_configured_headers_do_follow_a_redirect_within_the_origin(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    result = await run_one(check(http_peer.url("/redirect"), headers={"X-Api-Key": "k1"}), ctx)
    assert result.status == "ok"
    assert [r.headers.get("x-api-key") for r in http_peer.requests] == ["k1", "k1"]


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_a_redirect_to_cloud_metadata_is_refused_without_a_request(
    http_peer: HttpPeer, ctx: CheckContext, target: str
) -> None:
    result = await run_one(check(http_peer.url(f"/redirect-to?{target}")), ctx)
    assert result.status == "failing"
    assert "returned 302 in " in result.evidence
    assert f"redirect to {target} refused: " in result.evidence
    assert len(http_peer.requests) == 1  # and the loopback guard saw no other connection


def test_a_url_with_credentials_or_a_bad_port_is_refused_without_quoting_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[checks]]\nname = "web"\ntype = "http"\n'
        'url = "https://ops:hunter2@api.example.com/health?token=abc123"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)  # what `config validate` prints and journald keeps
    assert "checks[web].url: url must not hold credentials" in text and "basic_auth" in text
    assert "hunter2" not in text and "abc123" not in text
    with pytest.raises(ValidationError, match="port 99999 is out of range"):
        check("http://api.example.com:99999/health")
    with pytest.raises(ValidationError, match="conflicts with basic_auth"):
        check(
            "http://api.example.com/",
            headers={"Authorization": "x"},
            basic_auth={"username": "a", "password": "b"},
        )


async def test_redirect_loop_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/loop")), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith(": too many redirects")


# --- body and JSON ---------------------------------------------------------------------------


async def test_body_contains_found_is_ok(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/ok"), body_contains="good"), ctx)
    assert result.status == "ok"


async def test_body_contains_missing_is_failing_with_collapsed_quote(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    result = await run_one(check(http_peer.url("/html"), body_contains="healthy"), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith(
        "; body does not contain 'healthy'; body: \"<html> <body>maintenance</body> </html>\""
    )


async def test_body_is_read_only_up_to_max_body_bytes(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    spec = check(http_peer.url("/big"), body_contains="END", max_body_bytes=1000)
    result = await run_one(spec, ctx)
    assert result.status == "failing"
    assert "; the first 1000 bytes of the body do not contain 'END'" in result.evidence
    assert result.values["body_bytes"] == 1000
    # the quote is clipped too
    assert 'body: "' + "x" * 200 + '…"' in result.evidence


async def test_json_field_equal_is_ok(http_peer: HttpPeer, ctx: CheckContext) -> None:
    spec = check(http_peer.url("/json"), json_path="checks.db.status", json_equals="up")
    result = await run_one(spec, ctx)
    assert result.status == "ok"
    assert result.evidence.endswith('; JSON checks.db.status is "up"')


async def test_json_array_index_in_path(http_peer: HttpPeer, ctx: CheckContext) -> None:
    spec = check(http_peer.url("/json"), json_path="items.1.name", json_equals="beta")
    assert (await run_one(spec, ctx)).status == "ok"


async def test_json_true_is_not_equal_to_one(http_peer: HttpPeer, ctx: CheckContext) -> None:
    spec = check(http_peer.url("/json"), json_path="ready", json_equals=1)
    result = await run_one(spec, ctx)
    assert result.status == "failing"
    assert result.evidence.endswith("; JSON ready is true; expected 1")


async def test_json_field_different_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    spec = check(http_peer.url("/json"), json_path="checks.db.status", json_equals="down")
    result = await run_one(spec, ctx)
    assert result.status == "failing"
    assert result.evidence.endswith('; JSON checks.db.status is "up"; expected "down"')


async def test_json_path_alone_requires_the_field(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/json"), json_path="checks.cache"), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith("; JSON checks.cache not found: no key 'cache' in checks")


async def test_json_index_out_of_range_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/json"), json_path="items.5.name"), ctx)
    assert result.status == "failing"
    assert "not found: items has 2 items, no index 5" in result.evidence


async def test_json_path_naming_a_key_in_an_array_is_an_error(
    http_peer: HttpPeer, ctx: CheckContext
) -> None:
    result = await run_one(check(http_peer.url("/json"), json_path="items.name"), ctx)
    assert result.status == "error"
    assert result.evidence.endswith(
        "; json_path items.name cannot apply to this body: items is an array and 'name' is "
        "not an index"
    )


async def test_invalid_json_is_failing(http_peer: HttpPeer, ctx: CheckContext) -> None:
    result = await run_one(check(http_peer.url("/html"), json_path="status"), ctx)
    assert result.status == "failing"
    assert "; body is not valid JSON (Expecting value: line 1 column 1 (char 0)); body: " in (
        result.evidence
    )


# --- headers and secrets -------------------------------------------------------------------


async def test_secret_header_is_resolved_and_never_shown(http_peer: HttpPeer) -> None:
    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=lambda ref: "s3cr3t-token")
        spec = check(
            http_peer.url("/status/503"), headers={"Authorization": "secret:api", "X-Plain": "v1"}
        )
        result = await run_one(spec, ctx)
    assert http_peer.requests[-1].headers["authorization"] == "s3cr3t-token"
    assert http_peer.requests[-1].headers["x-plain"] == "v1"
    assert "s3cr3t" not in result.evidence
    assert "secret:api" not in result.evidence


async def test_unresolvable_secret_is_an_error_and_sends_nothing(http_peer: HttpPeer) -> None:
    def missing(ref: str) -> str:
        raise KeyError(ref)

    async with httpx.AsyncClient() as client:
        ctx = CheckContext(http=client, resolve_secret=missing)
        result = await run_one(check(http_peer.url("/ok"), headers={"X-Key": "secret:k"}), ctx)
    assert result.status == "error"
    assert "not sent: cannot resolve header X-Key (secret:k): 'secret:k'" in result.evidence
    assert http_peer.requests == []


# --- https --------------------------------------------------------------------------------------


async def test_https_with_private_ca_is_ok(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "localhost")
    result = await run_one(check(peer.url("/ok", host="localhost"), ca_file=ca_file), ctx)
    assert result.status == "ok"


async def test_https_untrusted_certificate_is_failing(
    start_server: StartServer, ca: trustme.CA, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "localhost")
    result = await run_one(check(peer.url("/ok", host="localhost")), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith(
        " ms: certificate verification failed: the issuer is not trusted "
        "(unable to get local issuer certificate)"
    )


async def test_https_wrong_hostname_is_failing(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "other.test")
    result = await run_one(check(peer.url("/ok", host="localhost"), ca_file=ca_file), ctx)
    assert result.status == "failing"
    assert result.evidence.endswith(
        " ms: certificate verification failed: the certificate does not match the hostname "
        "(Hostname mismatch, certificate is not valid for 'localhost'.)"
    )


async def test_https_without_verification_accepts_untrusted(
    start_server: StartServer, ca: trustme.CA, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "other.test")
    result = await run_one(check(peer.url("/ok"), verify_tls=False), ctx)
    assert result.status == "ok"


async def test_https_certificate_near_expiry_is_degraded(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "localhost", days=5)
    spec = check(peer.url("/ok", host="localhost"), ca_file=ca_file, cert_min_days=14)
    result = await run_one(spec, ctx)
    assert result.status == "degraded"
    assert "returned 200 in" in result.evidence
    assert "; certificate expires in 5 days (" in result.evidence
    assert result.evidence.endswith("); warn below 14")
    assert result.values["days_left"] == 5


async def test_certificate_days_are_read_through_the_shared_client(
    start_server: StartServer, ca: trustme.CA
) -> None:
    peer = await https_peer(start_server, ca, "localhost", days=5)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with httpx.AsyncClient(verify=trusting) as shared:
        spec = check(peer.url("/ok", host="localhost"), cert_min_days=14)
        result = await run_one(spec, CheckContext(http=shared))
    assert result.status == "degraded"
    assert result.values["days_left"] == 5


async def test_https_certificate_far_from_expiry_is_ok(
    start_server: StartServer, ca: trustme.CA, ctx: CheckContext
) -> None:
    peer = await https_peer(start_server, ca, "localhost", days=90)
    spec = check(peer.url("/ok"), verify_tls=False, cert_min_days=14)
    result = await run_one(spec, ctx)
    assert result.status == "ok"
    assert result.values["days_left"] == 90


async def test_missing_ca_file_is_an_error(tmp_path: Any, ctx: CheckContext) -> None:
    spec = check("https://localhost:1/ok", ca_file=str(tmp_path / "nope.pem"))
    result = await run_one(spec, ctx)
    assert result.status == "error"
    assert f"cannot load ca_file {tmp_path / 'nope.pem'}" in result.evidence


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://example.com/"}, "url must be http:// or https://"),
        ({"expected_status": ["2xy"]}, "is not a status code"),
        ({"expected_status": [99]}, "is not a status code"),
        ({"json_equals": "up"}, "json_equals needs json_path"),
        ({"json_path": "a..b"}, "must be dotted keys"),
        ({"verify_tls": False, "ca_file": "/ca.pem"}, "ca_file has no effect"),
        ({"method": "BREW"}, "method"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configuration_is_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HttpCheck.model_validate(
            {"name": "web", "type": "http", "url": "http://localhost/", **options}
        )


def test_schema_describes_every_option() -> None:
    assert_options_described(HttpCheck)
