"""The `tls` check: handshake with a server, verify its certificate, and watch its expiry.

It only reads the certificate (a second, non-verifying handshake when verification fails, so
the evidence can still name the certificate); it never sends application data.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Literal, Self

from pydantic import Field, model_validator

from daemon.models import CheckResult, Status
from jobs._resolve import open_connection
from jobs._tls import (
    X509_V_ERR_CERT_HAS_EXPIRED,
    CertInfo,
    describe_cert,
    describe_expiry,
    describe_handshake_error,
    describe_verify_error,
    parse_der,
    ssl_context,
)
from jobs.base import CheckContext, CheckSpec
from jobs.tcp import close_writer, host_port


class TlsCheck(CheckSpec):
    """A TLS endpoint presents a trusted certificate for its name that is not about to expire."""

    type: Literal["tls"]
    host: str = Field(min_length=1, description="Host name or IP address to connect to.")
    port: int = Field(default=443, ge=1, le=65535, description="TCP port of the TLS endpoint.")
    server_name: str | None = Field(
        default=None,
        description="Name sent as SNI and checked against the certificate. Defaults to host.",
    )
    min_days: int = Field(
        default=14, ge=0, description="Report degraded when the certificate expires sooner."
    )
    critical_days: int = Field(
        default=3, ge=0, description="Report failing when the certificate expires sooner."
    )
    ca_file: str | None = Field(
        default=None,
        description="PEM file of CA certificates to trust instead of the system store "
        "(for private CAs).",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if self.critical_days > self.min_days:
            raise ValueError(
                f"critical_days ({self.critical_days}) must not exceed min_days ({self.min_days})"
            )
        return self

    @property
    def _name(self) -> str:
        return self.server_name or self.host

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        values: dict[str, float | int | str | bool | None] = {}

        def done(status: Status, evidence: str) -> list[CheckResult]:
            latency = (time.perf_counter() - t0) * 1000
            return [
                self.result(
                    status, evidence, started_at=started_at, latency_ms=latency, values=values
                )
            ]

        try:
            verifying = await ssl_context(ca_file=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            return done("error", f"cannot load ca_file {self.ca_file}: {exc}")

        target = host_port(self.host, self.port)
        seconds = self.timeout.total_seconds()
        verify_error: ssl.SSLCertVerificationError | None = None
        try:
            async with asyncio.timeout(seconds):
                try:
                    der = await self._peer_cert(verifying)
                except ssl.SSLCertVerificationError as exc:
                    verify_error = exc
                    der = await self._peer_cert(await ssl_context(verify=False))
        except TimeoutError:
            return done("failing", f"TLS handshake with {target} timed out after {seconds:g} s")
        except ConnectionRefusedError:
            ms = (time.perf_counter() - t0) * 1000
            return done("failing", f"TLS connect to {target} refused after {ms:.0f} ms")
        except ssl.SSLError as exc:
            reason = describe_handshake_error(exc)
            return done("failing", f"TLS handshake with {target} failed: {reason}")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return done("failing", f"TLS connect to {target} failed: {reason}")

        if der is None:
            return done("failing", f"TLS server {target} presented no certificate")
        cert = parse_der(der)
        days = cert.days_left(ctx.now())
        values.update(
            days_left=days, not_after=cert.not_after.isoformat(), verified=verify_error is None
        )
        status, evidence = self._judge(cert, days, verify_error)
        return done(status, evidence)

    def _judge(
        self, cert: CertInfo, days: int, verify_error: ssl.SSLCertVerificationError | None
    ) -> tuple[Status, str]:
        head = f"certificate for {self._name} ({describe_cert(cert)})"
        expiry = describe_expiry(days, cert.expiry_date)
        if verify_error is not None:
            if verify_error.verify_code == X509_V_ERR_CERT_HAS_EXPIRED and days < 0:
                return "failing", f"{head} {expiry}"
            detail = f"{head} failed verification: {describe_verify_error(verify_error)}; {expiry}"
            if cert.names:
                detail += f"; certificate names: {', '.join(cert.names)}"
            return "failing", detail
        if days < 0:
            return "failing", f"{head} {expiry}"
        if days < self.critical_days:
            return "failing", f"{head} {expiry}; critical below {self.critical_days}"
        if days < self.min_days:
            return "degraded", f"{head} {expiry}; warn below {self.min_days}"
        return "ok", f"{head} {expiry}"

    async def _peer_cert(self, context: ssl.SSLContext) -> bytes | None:
        _, writer = await open_connection(
            self.host,
            self.port,
            ssl=context,
            server_hostname=self._name,
        )
        try:
            ssl_object: ssl.SSLObject | None = writer.get_extra_info("ssl_object")
            return None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
        finally:
            await close_writer(writer)
