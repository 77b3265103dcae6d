"""Certificate helpers shared by the `tls` and `http` checks: SSL contexts, DER parsing, wording.

Pure parsing and formatting, plus context building off the event loop; nothing here connects.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

# OpenSSL X509_V_ERR_* codes worth naming in plain words.
_VERIFY_WORDS = {
    10: "the certificate has expired",
    9: "the certificate is not yet valid",
    18: "the certificate is self-signed and not trusted",
    19: "the chain ends in a self-signed root that is not trusted",
    20: "the issuer is not trusted",
    21: "the chain is incomplete (unable to verify the first certificate)",
    62: "the certificate does not match the hostname",
    64: "the certificate does not match the IP address",
}
X509_V_ERR_CERT_HAS_EXPIRED = 10


@dataclass(frozen=True)
class CertInfo:
    """The parts of a leaf certificate a person needs to act on."""

    subject: str
    """The subject CN, or the first DNS/IP name when the certificate has no CN."""
    issuer: str
    not_after: datetime
    names: tuple[str, ...]
    """Subject alternative names (DNS names and IP addresses)."""

    def days_left(self, now: datetime) -> int:
        """Whole days until expiry, rounded down; negative once expired."""
        return int((self.not_after - now).total_seconds() // 86400)

    @property
    def expiry_date(self) -> str:
        return self.not_after.date().isoformat()


def parse_der(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(
            [*san.get_values_for_type(x509.DNSName)]
            + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        names = ()
    subject = _first(cert.subject, NameOID.COMMON_NAME) or (names[0] if names else "")
    issuer = (
        _first(cert.issuer, NameOID.COMMON_NAME)
        or _first(cert.issuer, NameOID.ORGANIZATION_NAME)
        or cert.issuer.rfc4514_string()
    )
    return CertInfo(
        subject=subject or cert.subject.rfc4514_string(),
        issuer=issuer,
        not_after=cert.not_valid_after_utc,
        names=names,
    )


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    if not attrs:
        return ""
    value = attrs[0].value
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def describe_cert(cert: CertInfo) -> str:
    """`CN example.com, issuer R3` — for evidence sentences."""
    return f"CN {cert.subject or '(none)'}, issuer {cert.issuer}"


def describe_expiry(days_left: int, date: str) -> str:
    """`expires in 5 days (2026-12-02)` or `expired 3 days ago (2026-11-24)`."""
    if days_left < 0:
        ago = -days_left
        return f"expired {ago} day{'s' if ago != 1 else ''} ago ({date})"
    return f"expires in {days_left} day{'s' if days_left != 1 else ''} ({date})"


def describe_verify_error(exc: ssl.SSLCertVerificationError) -> str:
    """Why verification failed, in words, with OpenSSL's own message alongside."""
    message = exc.verify_message or exc.reason or str(exc)
    words = _VERIFY_WORDS.get(exc.verify_code)
    return message if words is None else f"{words} ({message})"


def describe_handshake_error(exc: ssl.SSLError) -> str:
    """`wrong version number (is this port speaking TLS?)` rather than `WRONG_VERSION_NUMBER`."""
    reason = (exc.reason or str(exc)).replace("_", " ").lower()
    if exc.reason == "WRONG_VERSION_NUMBER":
        reason += " (is this port speaking TLS?)"
    return reason


def _build_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


async def ssl_context(*, verify: bool = True, ca_file: str | None = None) -> ssl.SSLContext:
    """A client context; loading CA files reads the disk, so it happens off the event loop.

    Raises OSError or ssl.SSLError when `ca_file` cannot be read or parsed.
    """
    return await asyncio.to_thread(_build_context, verify, ca_file)
