"""New connections per client address, refused before the WebSocket handshake.

The per-user cap (``connection_limits.py``) acts at ``hello``, after the server has paid for
a TCP accept, an HTTP upgrade, a handler task and a token check: a storm of connections
from one address costs the one event loop all of that, for each, while honest players wait.
This gate counts new connections per address when the TCP connection is made (a token
bucket: ``[server] connections_per_address_per_s``, bursts of
``connection_burst_per_address``) and answers one over the limit with a bare
``HTTP 429 Too Many Requests`` and ``Retry-After``, then closes it: no parsing, no
handshake, no task.

IPv6 addresses are grouped by /64 (one subscriber usually holds a whole /64). The table of
addresses is bounded (``address_table``); the least recently seen address is forgotten
first, and a forgotten address starts again with a full bucket, which errs on the side of
serving. Behind a load balancer or a proxy every connection comes from its address: set the
rate to 0 (no limit here) and limit at the balancer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, cast

from websockets.asyncio.server import ServerConnection

from server.ratelimit import TokenBucket

REFUSED_LINGER_S = 1.0
"""How long a refused connection may stay open so the client reads the 429 (a close with
its request unread would send a TCP reset, which can discard the response)."""


class AddressGate:
    """Token buckets of new connections per address (event-loop thread only)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        table_size: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.rate = rate  # new connections per second per address; 0: no limit
        self.burst = burst  # new connections at once per address
        self.table_size = table_size  # addresses tracked at most
        self.clock = clock
        self.on_refused = on_refused  # metrics
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.refused = 0  # connections refused so far (tests, logs)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def admit(self, peer: Any) -> float | None:
        """None if a new connection from ``peer`` (a socket's ``peername``) may proceed, else
        the seconds to wait. Unknown peers (a Unix socket) are admitted."""
        if not self.enabled:
            return None
        key = address_key(peer)
        if key is None:
            return None
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.table_size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        wait = bucket.take(now)
        if wait is not None:
            self.refused += 1
            self.on_refused()
        return wait


def address_key(peer: Any) -> str | None:
    """The address a connection is counted under: the IP, or its /64 for IPv6."""
    if not isinstance(peer, tuple) or not peer or not isinstance(peer[0], str):
        return None
    try:
        address = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def too_many_requests(retry_after_s: float) -> bytes:
    """The whole HTTP response of a refused connection."""
    seconds = max(1, math.ceil(retry_after_s))
    body = f"too many new connections from this address; retry after {seconds} s\n".encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        f"Retry-After: {seconds}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class GatedConnection(ServerConnection):
    """websockets' server connection, refused at ``connection_made`` past the gate.

    ``serve`` makes a subclass per server with its ``gate`` (websockets builds connections
    from a class). A refused connection becomes a ``_RefusedConnection``: its 429 is written,
    its input ignored, and it is closed once the client closes or after
    ``REFUSED_LINGER_S``; no handler task is ever created for it.
    """

    gate: ClassVar[AddressGate]
    send_buffer: ClassVar[int]  # SO_SNDBUF of admitted connections; 0: the system's

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wait = self.gate.admit(transport.get_extra_info("peername"))
        if wait is None:
            if self.send_buffer:
                _set_send_buffer(transport, self.send_buffer)
            super().connection_made(transport)
            return
        self.__class__ = _RefusedConnection
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(too_many_requests(wait))
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(REFUSED_LINGER_S, transport.abort)


class _RefusedConnection(GatedConnection):
    """A connection refused by the gate: nothing it sends is read (see GatedConnection)."""

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None  # falsy: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


def gated(gate: AddressGate, send_buffer: int = 0) -> type[GatedConnection]:
    """The connection class for a server whose new connections pass ``gate``, with a kernel
    send buffer of ``send_buffer`` bytes (0: the system's autotuning)."""
    return type("GatedConnection", (GatedConnection,), {"gate": gate, "send_buffer": send_buffer})


def _set_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    """A bounded kernel send buffer: a client that stops reading fills it after ``size``
    bytes (not the megabytes Linux autotunes to), so backpressure and the stall watch
    (server/session.py) see it early and the server stops working for it."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
