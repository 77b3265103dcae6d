"""Certificates for loopback TLS peers: a leaf from the test CA (trustme) that expires when a
test needs it to, and the server-side context that serves it."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import trustme


def issue(
    ca: trustme.CA, *names: str, days: float = 90, common_name: str | None = None
) -> trustme.LeafCert:
    """A leaf for `names` expiring `days` from now (negative: already expired)."""
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days, hours=1)
    not_before = min(now, not_after) - timedelta(days=30)
    return ca.issue_cert(
        *names,
        common_name=common_name or names[0],
        not_before=not_before,
        not_after=not_after,
    )


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context
