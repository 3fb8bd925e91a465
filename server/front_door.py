"""The front door: TCP connections are accepted on a thread of their own, refused there past
the address gate, and only admitted ones reach the event loop.

A connection storm costs the kernel ~150 µs per connection on this kind of machine (accept,
the 429, the close; measured with a bare accept-send-close server), and websockets another
~200 µs of event-loop time to build a transport, protocol and connection for each before
``connection_made`` could refuse it. While the loop did that for a burst of a few hundred
connections, every honest player's strike waited behind it. Here the kernel work runs in
this thread's system calls, which release the GIL, beside the loop on the other core; the
Python work per refused connection (the gate, a send, a close) is a few µs, and the loop
only ever sees admitted sockets, handed over in one crossing per accept round.

To websockets this object *is* the ``asyncio.Server`` of its ``Server`` (see ``open_door``):
websockets' handshake, handler and graceful close are used unchanged; only accepting is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import selectors
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from server.address_gate import REFUSED_LINGER_S, AddressGate, too_many_requests

log = logging.getLogger(__name__)

BACKLOG = 1024
"""The kernel's queue of connections not yet accepted, per listening socket. The door's
thread drains it in rounds, so it only fills while that thread waits for the GIL."""

ACCEPTS_PER_ROUND = 256
"""Connections accepted before the door looks at lingering refusals and hands over."""

PAUSE_S = 1.0
"""How long the door stops accepting when the process is out of file descriptors or memory
(the kernel keeps the connections queued meanwhile), or after an unexpected error: as
``asyncio`` does, so a full descriptor table is not a busy loop."""

IN_TRANSIT = 1024
"""Admitted sockets handed to the loop and not yet taken by it, at most: past it the door
accepts nothing more until the loop catches up (the connections wait in the kernel's
queue), so a loop that falls behind cannot pile up sockets without bound."""

CATCH_UP_S = 0.01
"""How long the door waits before it looks again whether the loop has caught up."""

_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

LINGERING = 1024
"""Refused connections kept open at most while their client reads the 429 (the oldest is
closed first past it)."""

_WAKE = object()  # selector data of the wake-up socket
_LISTENER = object()  # selector data of a listening socket


class FrontDoor:
    """Accepts on ``sockets`` (bound; the door listens) in its own thread. An admitted
    socket is handed to ``admit`` on the loop's thread; a refused one gets
    ``too_many_requests`` and is closed once its client has read it (or after ``linger_s``,
    ``REFUSED_LINGER_S`` by default)."""

    def __init__(
        self,
        sockets: list[socket.socket],
        gate: AddressGate,
        loop: asyncio.AbstractEventLoop,
        admit: Callable[[socket.socket], None],
        *,
        send_buffer: int = 0,
        lingering: int = LINGERING,
        linger_s: float = REFUSED_LINGER_S,
        in_transit: int = IN_TRANSIT,
    ) -> None:
        self.sockets = tuple(sockets)  # asyncio.Server's attribute: the listening sockets
        self.gate = gate  # only this door's thread uses it
        self.loop = loop
        self.admit = admit  # called on the loop's thread, one admitted socket at a time
        self.send_buffer = send_buffer  # SO_SNDBUF of admitted sockets; 0: the system's
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self.max_lingering = lingering  # refused connections kept open at most
        self.linger_s = linger_s  # for at most this long each
        self._lingering: OrderedDict[socket.socket, float] = OrderedDict()  # -> deadline
        self._closing = False
        self._paused_until: float | None = None  # not accepting until then
        self._transit_lock = threading.Lock()  # guards _in_transit (door thread and loop)
        self._in_transit = 0  # admitted sockets posted to the loop, not yet taken by it
        self.max_in_transit = in_transit  # the bound of _in_transit
        self._closed = asyncio.Event()  # set on the loop once the thread has stopped
        self._thread = threading.Thread(target=self._run, name="front-door", daemon=True)

    # -- the asyncio.Server face websockets' Server uses ----------------------------------

    def start(self) -> None:
        for sock in self.sockets:
            sock.listen(BACKLOG)
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ, _LISTENER)
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        self._thread.start()

    @property
    def lingering(self) -> int:
        """Refused connections still open (their client has not read the 429 yet)."""
        return len(self._lingering)

    def is_serving(self) -> bool:
        return self._thread.is_alive() and not self._closing

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    def close(self) -> None:
        """Stop accepting (idempotent); ``wait_closed`` returns once the thread is gone."""
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if not self._thread.is_alive():
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def start_serving(self) -> None:
        return None  # serving from start()

    # -- the door's thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing:
                try:
                    self._turn()
                except Exception:
                    log.exception("front door error: not accepting for %.0f s", PAUSE_S)
                    self._pause(PAUSE_S)
        finally:
            self._shut()
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self.loop.call_soon_threadsafe(self._closed.set)

    def _turn(self) -> None:
        """Wait for connections, data from refused clients or a deadline, and handle them."""
        for key, _ in self._selector.select(self._timeout()):
            if key.data is _LISTENER:
                self._accept(key.fileobj)  # type: ignore[arg-type]
            elif key.data is not _WAKE:
                self._drain(key.fileobj)  # type: ignore[arg-type]
        now = time.monotonic()
        self._expire(now)
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            for sock in self.sockets:
                self._selector.register(sock, selectors.EVENT_READ, _LISTENER)

    def _pause(self, seconds: float) -> None:
        """Stop accepting for ``seconds`` (queued connections wait in the kernel)."""
        if self._paused_until is None:
            for sock in self.sockets:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(sock)
        self._paused_until = time.monotonic() + seconds

    def _accept(self, listener: socket.socket) -> None:
        admitted: list[socket.socket] = []
        with self._transit_lock:
            room = self.max_in_transit - self._in_transit
        for _ in range(ACCEPTS_PER_ROUND):
            if len(admitted) >= room:
                self._pause(CATCH_UP_S)  # the loop is behind: let it take what it has
                break
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionAbortedError:
                continue  # the client gave up while it was queued
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    raise
                log.error(
                    "cannot accept connections: %s; not accepting for %.0f s "
                    "(each client holds a file descriptor: raise the limit, `ulimit -n`)",
                    exc.strerror or exc,
                    PAUSE_S,
                )
                self._pause(PAUSE_S)
                break
            wait = self.gate.admit(peer)
            if wait is None:
                if self.send_buffer and sock.family in (socket.AF_INET, socket.AF_INET6):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
                admitted.append(sock)
            else:
                self._refuse(sock, wait)
        if admitted:
            with self._transit_lock:
                self._in_transit += len(admitted)
            try:
                self.loop.call_soon_threadsafe(self._hand_over, admitted)
            except RuntimeError:  # the loop is closed: nobody is left to serve them
                for sock in admitted:
                    sock.close()

    @property
    def in_transit(self) -> int:
        """Admitted sockets posted to the loop and not yet taken by it."""
        with self._transit_lock:
            return self._in_transit

    def _hand_over(self, admitted: list[socket.socket]) -> None:
        """On the loop: each admitted socket to websockets (via ``admit``)."""
        with self._transit_lock:
            self._in_transit -= len(admitted)
        for sock in admitted:
            if self._closing:
                sock.close()
            else:
                self.admit(sock)

    def _refuse(self, sock: socket.socket, wait: float) -> None:
        """The 429, then a close once the client has read it: closing with its request
        unread would send a TCP reset, which can discard the response."""
        try:
            sock.setblocking(False)
            sock.send(too_many_requests(wait))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        if len(self._lingering) >= self.max_lingering:
            oldest, _ = self._lingering.popitem(last=False)
            self._forget(oldest)
        self._lingering[sock] = time.monotonic() + self.linger_s
        self._selector.register(sock, selectors.EVENT_READ, sock)

    def _drain(self, sock: socket.socket) -> None:
        """A refused client sent something or closed: read and drop it; close on EOF."""
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._lingering.pop(sock, None)
            self._forget(sock)

    def _expire(self, now: float) -> None:
        while self._lingering:
            sock, deadline = next(iter(self._lingering.items()))
            if deadline > now:
                return
            del self._lingering[sock]
            self._forget(sock)

    def _timeout(self) -> float | None:
        """Until the next linger deadline or the end of a pause (None: nothing pending)."""
        deadlines = [] if self._paused_until is None else [self._paused_until]
        if self._lingering:
            deadlines.append(next(iter(self._lingering.values())))
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        sock.close()

    def _shut(self) -> None:
        for sock in list(self._lingering):
            self._forget(sock)
        self._lingering.clear()
        for sock in self.sockets:
            self._forget(sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


async def listening_sockets(host: str | None, port: int) -> list[socket.socket]:
    """Bound sockets for ``host`` (every address it resolves to; None: every interface) and
    ``port`` (0: a free one, the same for every address), as ``loop.create_server`` binds."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        host, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # the port the first one was given
                sock.bind((address[0], sockets[0].getsockname()[1], *address[2:]))
            else:
                sock.bind(address)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
