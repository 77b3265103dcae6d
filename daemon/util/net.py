"""Network addresses as config writes them: `host:port`, `[v6]:port`."""

from __future__ import annotations

import contextlib
import ipaddress


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port); ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port, e.g. '127.0.0.1:8787'")
    return host.removeprefix("[").removesuffix("]"), int(port)


def host_port(host: str, port: int) -> str:
    """`db.internal:5432`, `[::1]:443`."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    return f"{host}:{port}"


def masked_url(value: str) -> str:
    """A URL as it may be shown (an error, a log): user info and query values hidden, e.g.
    `https://***@api.example.com/v1?token=***`. Unparseable: `(this URL)`."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(value.strip())
        netloc = parts.netloc
    except ValueError:
        return "(this URL)"
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(
        f"{pair.partition('=')[0]}=***" if "=" in pair else pair
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, "")) or "(this URL)"
