"""ICMP echo (RFC 792, RFC 4443) on the event loop: the socket work under the `ping` check.

It opens an unprivileged ICMP datagram socket where the OS allows one (Linux, within
`net.ipv4.ping_group_range`; macOS), else a raw socket when the process may (CAP_NET_RAW,
root), else says exactly what to change. It never blocks the loop, never resolves a name (the
caller passes an address), and never outlives its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ECHO_REQUEST: dict[int, int] = {socket.AF_INET: 8, socket.AF_INET6: 128}
ECHO_REPLY: dict[int, int] = {socket.AF_INET: 0, socket.AF_INET6: 129}
PROTOCOL: dict[int, int] = {
    socket.AF_INET: socket.IPPROTO_ICMP,
    socket.AF_INET6: socket.IPPROTO_ICMPV6,
}
PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
_UNAVAILABLE = {errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL}

SocketKind = Literal["datagram", "raw"]


class IcmpUnavailable(Exception):
    """No ICMP socket could be opened; the message says what to change (it is the evidence)."""


@dataclass
class EchoOutcome:
    """What one series of echo requests got back."""

    kind: SocketKind
    sent: int = 0
    rtts_ms: list[float] = field(default_factory=list)
    """One round-trip time per reply, in arrival order."""
    send_errors: list[str] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.rtts_ms)


def open_socket(family: int) -> tuple[socket.socket, SocketKind]:
    """A non-blocking ICMP socket for `family`: datagram first (no privilege needed where the
    OS allows it), raw as a fallback. IcmpUnavailable when neither can be opened."""
    proto = PROTOCOL[family]
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
        kind: SocketKind = "datagram"
    except OSError as dgram:
        if dgram.errno in _UNAVAILABLE:
            raise IcmpUnavailable(_unavailable(family, dgram)) from None
        try:
            sock = socket.socket(family, socket.SOCK_RAW, proto)
            kind = "raw"
        except OSError as raw:
            if raw.errno in _UNAVAILABLE:
                raise IcmpUnavailable(_unavailable(family, raw)) from None
            raise IcmpUnavailable(not_permitted(dgram)) from None
    sock.setblocking(False)
    return sock, kind


def not_permitted(exc: OSError) -> str:
    """Why this process may not ping, and what to change, in one sentence."""
    if sys.platform.startswith("linux"):
        group = os.getegid()
        try:
            now = " ".join(PING_GROUP_RANGE.read_text(encoding="ascii").split())
        except OSError:
            now = "unreadable"
        return (
            f"ICMP sockets are not allowed for group {group} (net.ipv4.ping_group_range is "
            f'"{now}"): set net.ipv4.ping_group_range = "0 2147483647" (sysctl) or grant '
            "CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_RAW)"
        )
    reason = exc.strerror or str(exc)
    return (
        f"cannot open an ICMP socket ({reason}): run watchkeeper as a user that may open "
        "ICMP or raw sockets"
    )


def _unavailable(family: int, exc: OSError) -> str:
    version = "IPv6" if family == socket.AF_INET6 else "IPv4"
    return f"{version} ICMP is not available on this machine ({exc.strerror or exc})"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: int, ident: int, seq: int, payload: bytes) -> bytes:
    """An echo request. ICMPv6 checksums cover a pseudo-header the kernel fills in, so only
    ICMPv4 carries one computed here (Linux datagram sockets recompute it anyway)."""
    kind = ECHO_REQUEST[family]
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if family == socket.AF_INET:
        header = struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq)
    return header + payload


def parse_reply(family: int, data: bytes) -> tuple[int, int, bytes] | None:
    """(identifier, sequence, payload) of an echo reply; None for anything else. IPv4 raw
    sockets (and macOS datagram ones) hand over the IP header too: it is skipped."""
    if family == socket.AF_INET and len(data) >= 20 and data[0] >> 4 == 4:
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8:
        return None
    kind, _, _, ident, seq = struct.unpack("!BBHHH", data[:8])
    if kind != ECHO_REPLY[family]:
        return None
    return ident, seq, data[8:]


def _payload(token: bytes, seq: int) -> bytes:
    return token + struct.pack("!H", seq) + b"watchkeeper"


async def echo(
    sockaddr: tuple[Any, ...],
    family: int,
    *,
    count: int,
    interval_s: float,
    deadline: float,
) -> EchoOutcome:
    """Send `count` echo requests `interval_s` apart to `sockaddr` and collect the replies
    until every one is back or `deadline` (time.monotonic()) passes. A send that fails (no
    route, unreachable network) is a lost packet with its reason, never an exception."""
    sock, kind = open_socket(family)
    outcome = EchoOutcome(kind)
    ident, token = secrets.randbits(16), secrets.token_bytes(8)
    sent_at: dict[int, float] = {}
    all_back = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Linux gives a datagram socket the replies to its own identifier only (it rewrites the
    # identifier we send); elsewhere, and on raw sockets, every echo reply arrives here.
    any_ident = kind == "datagram" and sys.platform.startswith("linux")
    target = sockaddr[0].partition("%")[0]

    async def receive() -> None:
        while True:
            data, source = await loop.sock_recvfrom(sock, 65535)
            arrived = time.perf_counter()
            reply = parse_reply(family, data)
            if reply is None or source[0].partition("%")[0] != target:
                continue
            got_ident, seq, payload = reply
            if (any_ident or got_ident == ident) and payload == _payload(token, seq):
                started = sent_at.pop(seq, None)
                if started is not None:
                    outcome.rtts_ms.append((arrived - started) * 1000)
                    if not sent_at and outcome.sent + len(outcome.send_errors) == count:
                        all_back.set()

    receiver = asyncio.create_task(receive())
    try:
        for seq in range(1, count + 1):
            if seq > 1:
                await asyncio.sleep(max(0.0, min(interval_s, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                break
            try:
                sent_at[seq] = time.perf_counter()
                await loop.sock_sendto(
                    sock, echo_request(family, ident, seq, _payload(token, seq)), sockaddr
                )
                outcome.sent += 1
            except OSError as exc:
                sent_at.pop(seq, None)
                outcome.send_errors.append(exc.strerror or str(exc))
        if sent_at and not receiver.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_back.wait(), max(0.0, deadline - time.monotonic()))
        if receiver.done() and not receiver.cancelled() and receiver.exception() is not None:
            outcome.send_errors.append(f"receiving failed: {receiver.exception()}")
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await receiver
        sock.close()
    return outcome
