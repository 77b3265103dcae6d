from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trustme
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.tls import TlsCheck
from tests.jobs.conftest import assert_options_described
from tests.peers.targets import StartServer
from tests.peers.tls import issue, server_context


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A TLS peer that says nothing and hangs up when the client does."""
    try:
        await reader.read()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(start_server: StartServer, cert: trustme.LeafCert) -> int:
    return await start_server(_hold, server_context(cert))


async def run_tls(ctx: CheckContext, port: int, **options: Any) -> CheckResult:
    spec = TlsCheck.model_validate(
        {"name": "cert", "type": "tls", "host": "127.0.0.1", "port": port, **options}
    )
    results = await spec.run(ctx)
    assert len(results) == 1
    return results[0]


async def test_valid_certificate_far_from_expiry_is_ok(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "localhost", days=90))
    result = await run_tls(ctx, port, server_name="localhost", ca_file=ca_file)
    assert result.status == "ok"
    assert result.evidence.startswith("certificate for localhost (CN localhost, issuer ")
    assert ") expires in 90 days (" in result.evidence
    assert result.values["days_left"] == 90
    assert result.values["verified"] is True


async def test_ip_address_host_is_checked_against_ip_names(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "127.0.0.1", days=90))
    result = await run_tls(ctx, port, ca_file=ca_file)
    assert result.status == "ok"
    assert result.evidence.startswith("certificate for 127.0.0.1 (CN 127.0.0.1, issuer ")


async def test_certificate_below_min_days_is_degraded(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "localhost", days=5))
    result = await run_tls(ctx, port, server_name="localhost", ca_file=ca_file)
    assert result.status == "degraded"
    assert ") expires in 5 days (" in result.evidence
    assert result.evidence.endswith("); warn below 14")


async def test_certificate_below_critical_days_is_failing(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "localhost", days=1))
    result = await run_tls(ctx, port, server_name="localhost", ca_file=ca_file)
    assert result.status == "failing"
    assert ") expires in 1 day (" in result.evidence
    assert result.evidence.endswith("); critical below 3")


async def test_expired_certificate_is_failing_with_its_date(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    cert = issue(ca, "localhost", days=-3)
    port = await serve(start_server, cert)
    result = await run_tls(ctx, port, server_name="localhost", ca_file=ca_file)
    assert result.status == "failing"
    assert result.evidence.startswith("certificate for localhost (CN localhost, issuer ")
    assert ") expired 3 days ago (" in result.evidence
    assert result.values["days_left"] == -3
    assert result.values["verified"] is False


async def test_hostname_mismatch_is_failing_and_names_the_certificate(
    start_server: StartServer, ca: trustme.CA, ca_file: str, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "other.test", "www.other.test"))
    result = await run_tls(ctx, port, server_name="localhost", ca_file=ca_file)
    assert result.status == "failing"
    assert result.evidence.startswith("certificate for localhost (CN other.test, issuer ")
    assert (
        ") failed verification: the certificate does not match the "
        "hostname (Hostname mismatch, certificate is not valid for 'localhost'.); expires in 90"
    ) in result.evidence
    assert result.evidence.endswith("; certificate names: other.test, www.other.test")


async def test_untrusted_issuer_is_failing(
    start_server: StartServer, ca: trustme.CA, ctx: CheckContext
) -> None:
    port = await serve(start_server, issue(ca, "localhost"))
    result = await run_tls(ctx, port, server_name="localhost")  # system trust store only
    assert result.status == "failing"
    assert (
        ") failed verification: the issuer is not trusted "
        "(unable to get local issuer certificate); expires in 90 days"
    ) in result.evidence


async def test_refused_connection_is_failing(closed_port: int, ctx: CheckContext) -> None:
    result = await run_tls(ctx, closed_port)
    assert result.status == "failing"
    assert result.evidence.startswith(f"TLS connect to 127.0.0.1:{closed_port} refused after ")


async def test_plain_tcp_server_fails_the_handshake(
    start_server: StartServer, ctx: CheckContext
) -> None:
    async def not_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 smtp.example ESMTP ready\r\n" * 4)
        await writer.drain()
        writer.close()

    port = await start_server(not_tls)
    result = await run_tls(ctx, port)
    assert result.status == "failing"
    assert result.evidence == (
        f"TLS handshake with 127.0.0.1:{port} failed: wrong version number "
        "(is this port speaking TLS?)"
    )


async def test_silent_server_times_out(start_server: StartServer, ctx: CheckContext) -> None:
    port = await start_server(_hold)  # accepts TCP, never answers the ClientHello
    result = await run_tls(ctx, port, timeout="200ms")
    assert result.status == "failing"
    assert result.evidence == f"TLS handshake with 127.0.0.1:{port} timed out after 0.2 s"


async def test_unreadable_ca_file_is_an_error(tmp_path: Any, ctx: CheckContext) -> None:
    result = await run_tls(ctx, 443, ca_file=str(tmp_path / "missing.pem"))
    assert result.status == "error"
    assert result.evidence.startswith(f"cannot load ca_file {tmp_path / 'missing.pem'}: ")


def test_critical_days_above_min_days_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"critical_days \(20\) must not exceed min_days"):
        TlsCheck.model_validate(
            {"name": "c", "type": "tls", "host": "h", "min_days": 14, "critical_days": 20}
        )


def test_schema_describes_every_option() -> None:
    assert_options_described(TlsCheck)
