"""New connections per client address, refused before the WebSocket handshake.

The per-user cap (``connection_limits.py``) acts at ``hello``, after the server has paid for
a TCP accept, an HTTP upgrade, a handler task and a token check: a storm of connections
from one address costs the one event loop all of that, for each, while honest players wait.
This gate counts new connections per address when the TCP connection is made (a token
bucket: ``[server] connections_per_address_per_s``, bursts of
``connection_burst_per_address``) and answers one over the limit with a bare
``HTTP 429 Too Many Requests`` and ``Retry-After``, then closes it: no parsing, no
handshake, no task, and not even the event loop's time (``front_door.py`` accepts and
refuses on a thread of its own).

IPv6 addresses are grouped by /64 (one subscriber usually holds a whole /64). The table of
addresses is bounded (``address_table``); the least recently seen address is forgotten
first, and a forgotten address starts again with a full bucket, which errs on the side of
serving. Behind a load balancer or a proxy every connection comes from its address: set the
rate to 0 (no limit here) and limit at the balancer.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from server.ratelimit import TokenBucket

REFUSED_LINGER_S = 1.0
"""How long a refused connection may stay open so the client reads the 429 (a close with
its request unread would send a TCP reset, which can discard the response)."""


class AddressGate:
    """Token buckets of new connections per address (one thread only: the front door's)."""

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
    if len(peer) == 2 and ":" not in peer[0]:  # AF_INET: the kernel's dotted quad as it is
        return peer[0]
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
    return _too_many_requests(max(1, math.ceil(retry_after_s)))


@functools.lru_cache(maxsize=64)
def _too_many_requests(seconds: int) -> bytes:
    body = f"too many new connections from this address; retry after {seconds} s\n".encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\n"
        f"Retry-After: {seconds}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body
