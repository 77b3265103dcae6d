"""Name the root cause of a network failure in words a person can act on: "connection
refused", "DNS lookup failed: …", "certificate verification failed: …" — shared by every
check that talks over the network."""

from __future__ import annotations

import socket
import ssl

import httpx

from jobs._tls import describe_handshake_error, describe_verify_error


def explain_http_error(exc: httpx.HTTPError) -> str:
    """Name the root cause a person can act on, from httpx's chain of wrapped errors."""
    reason = root_reason(exc)
    if reason is not None:
        return reason
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"malformed or incomplete response: {exc}"
    return str(exc) or type(exc).__name__


def root_reason(exc: BaseException | None) -> str | None:
    """The first cause in an exception chain (or group) a person can act on, or None."""
    while exc is not None:
        if isinstance(exc, BaseExceptionGroup):  # one failure per address tried
            reasons = {r for e in exc.exceptions if (r := root_reason(e)) is not None}
            return "; ".join(sorted(reasons)) if reasons else None
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"certificate verification failed: {describe_verify_error(exc)}"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(exc, socket.gaierror):
            return f"DNS lookup failed: {exc.strerror}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed: {describe_handshake_error(exc)}"
        exc = exc.__cause__ or exc.__context__
    return None
