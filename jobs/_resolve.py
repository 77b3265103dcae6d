"""Name resolution for the dns, tcp and tls checks: the system resolver (getaddrinfo, so
/etc/hosts and the host's DNS settings apply), on a bounded pool of its own, under the check's
timeout.

Lookups a black-holed resolver never answers can fill this pool, but never the threads the
store, delivery or other checks use, and never the daemon's exit; an IP address is never
looked up at all.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from typing import Any, cast

from daemon.util.threads import DaemonPool

RESOLVER_THREADS = 16
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]

_pool = DaemonPool(RESOLVER_THREADS, "wk-resolve")


async def getaddrinfo(
    host: str, port: int | None, *, family: int = socket.AF_UNSPEC, kind: int = socket.SOCK_STREAM
) -> list[AddrInfo]:
    """`socket.getaddrinfo` without blocking the loop or the default executor; socket.gaierror
    or UnicodeError as getaddrinfo raises them. Bound it with the check's `asyncio.timeout`:
    a cancelled lookup gives its waiting place back at once."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # numeric: no lookup, answered at once
        return _lookup(host, port, family, kind, socket.AI_NUMERICHOST)
    lookup = functools.partial(_lookup, host, port, family, kind, 0)
    return await asyncio.get_running_loop().run_in_executor(_pool, lookup)


def _lookup(host: str, port: int | None, family: int, kind: int, flags: int) -> list[AddrInfo]:
    return cast("list[AddrInfo]", socket.getaddrinfo(host, port, family, kind, 0, flags))


async def open_connection(
    host: str, port: int, **kwargs: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """`asyncio.open_connection` with the name resolved here: each address in turn, failing
    the way asyncio does (one error as it is, several as one OSError naming each)."""
    infos = await getaddrinfo(host, port)
    errors: list[OSError] = []
    for family, _, _, _, address in infos:
        try:
            return await asyncio.open_connection(address[0], port, family=family, **kwargs)
        except OSError as exc:
            errors.append(exc)
    if not errors:
        raise OSError(f"no address for {host}")
    if len(errors) == 1 or all(str(e) == str(errors[0]) for e in errors):
        raise errors[0]
    raise OSError("Multiple exceptions: " + ", ".join(str(e) for e in errors))
