"""One WebSocket connection of raid-loadtest: an asyncio ``Protocol`` with callbacks.

The handshake is websockets' (its Sans-I/O ``ClientProtocol`` builds the request and
checks the response); the frames after it go through frames.py. Every received message
is handed to the owner's ``on_message(payload, is_text)`` from ``data_received``, so a
reply costs no task, no future and no queue, and a closed-loop client can send its next
strike from inside that call. Pings are answered, a close from the server is answered and ends the
connection, and ``on_lost`` is called once when the connection is gone.

Writes are not paced: a closed-loop client has one strike in flight, and an open-loop
client must send at its intended times whatever the server does (the bytes waiting in
the transport are bounded by the run's rate times its duration).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, InvalidURI
from websockets.protocol import State
from websockets.uri import parse_uri

from raidclient.loadtest.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameReader,
    MaskSource,
    client_frame,
)

MAX_RESPONSE_HEAD = 64 * 1024  # bytes of HTTP response head before giving up
CLOSE_NORMAL = 1000
_CLOSE_NORMAL_PAYLOAD = CLOSE_NORMAL.to_bytes(2, "big")
_SWITCHING = b"HTTP/1.1 101 "


def _ignore_message(payload: bytes, is_text: bool) -> None:
    """The handler until the owner sets one."""


def _ignore_loss() -> None:
    """The loss handler until the owner sets one."""


class LeanConnection(asyncio.Protocol):
    """A client WebSocket connection; ``open_connection`` makes one."""

    def __init__(self, url: str, masks: MaskSource) -> None:
        self.url = url
        self.handshake = ClientProtocol(parse_uri(url), max_size=None)  # the handshake only
        self.masks = masks  # shared by the worker's connections
        self.reader = FrameReader(_ignore_message, self._on_control)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.open = False  # True from the handshake until the connection is lost or closing
        self.on_lost: Callable[[], None] = _ignore_loss
        self._head = b""  # the HTTP response head, until the handshake is done
        self._handshaking = True
        self._established = False  # the handshake succeeded (so a loss is worth reporting)
        self._close_sent = False

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

        self.handshake.send_request(self.handshake.connect())
        self.transport.write(b"".join(self.handshake.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if self._handshaking:
            self._handshake_data(data)
            return
        try:
            self.reader.feed(data)
        except FrameError as exc:
            self.fail(exc.code, str(exc))

    def eof_received(self) -> bool | None:
        if self._handshaking:
            self.handshake.receive_eof()
            self._check_handshake()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._handshaking = False
        reason = f": {exc}" if exc else ""
        self._settle(ConnectionError(f"connection closed during the handshake{reason}"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self._established:
            self.on_lost()

    # -- handshake ---------------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_RESPONSE_HEAD:
                self._abort_handshake(ConnectionError("the HTTP response head is too long"))
            else:
                self._head = head
            return
        if not head.startswith(_SWITCHING):
            # Refused: websockets reads the whole response (body too) and says why.
            self._head = b""
            self.handshake.receive_data(head)
            self._check_handshake()
            return
        end += 4
        self.handshake.receive_data(head[:end])
        self._head = b""
        if self._check_handshake() and end < len(head):
            self.data_received(head[end:])  # frames sent right after the response

    def _check_handshake(self) -> bool:
        """Settle ``opened`` once websockets has read the response; True when open."""
        if not self.handshake.events_received() and self.handshake.handshake_exc is None:
            return False  # the response is not complete yet
        failure = self.handshake.handshake_exc
        if failure is None and self.handshake.state is not State.OPEN:
            failure = InvalidHandshake("the server did not switch protocols")
        if failure is not None:
            self._abort_handshake(failure)
            return False
        self._handshaking = False
        self._established = self.open = True
        self._settle(None)
        return True

    def _abort_handshake(self, failure: Exception) -> None:
        self._handshaking = False
        self._settle(failure)
        if self.transport is not None:
            self.transport.abort()

    def _settle(self, failure: Exception | None) -> None:
        if self.opened.done():
            return
        if failure is None:
            self.opened.set_result(None)
        else:
            self.opened.set_exception(failure)
            self.opened.exception()  # retrieved: nobody may be waiting any more (timeout)

    # -- frames --------------------------------------------------------------------------

    def set_handlers(
        self, on_message: Callable[[bytes, bool], None], on_lost: Callable[[], None]
    ) -> None:
        """``on_message(payload, is_text)`` for every message (called from
        ``data_received``), ``on_lost()`` once when the open connection is gone."""
        self.reader.on_data = on_message
        self.on_lost = on_lost

    def _on_control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self._write(0xA, payload)
        elif opcode == OP_CLOSE:
            # Answer with the same code, then let the server close TCP (RFC 6455 §7.1.1);
            # closing our end after the answer is flushed is fine too.
            if not self._close_sent:
                self._close_sent = True
                self._write(OP_CLOSE, payload[:2])
            self.open = False
            if self.transport is not None:
                self.transport.close()
        # OP_PONG: nothing to do (no pings are sent)

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload, self.masks.take()))

    def fail(self, code: int, reason: str) -> None:
        """The server broke the protocol: close with ``code`` and drop the connection."""
        if not self._close_sent:
            self._close_sent = True
            self._write(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:120])
        self.open = False
        if self.transport is not None:
            self.transport.close()

    # -- the owner's side ----------------------------------------------------------------

    def send(self, payload: bytes, is_text: bool = False) -> bool:
        """Send one message; False when the connection is no longer open."""
        if not self.open:
            return False
        transport = self.transport
        assert transport is not None
        transport.write(client_frame(OP_TEXT if is_text else OP_BINARY, payload, self.masks.take()))
        return True

    async def close(self, timeout: float = 2.0) -> None:
        """Close cleanly (close frame, wait for the server's), or drop after ``timeout``."""
        transport = self.transport
        if transport is None or self.closed.done():
            return
        self.on_lost = _ignore_loss  # a close of our own is not a loss
        if not self._close_sent and not transport.is_closing():
            self._close_sent = True
            self.open = False
            self._write(OP_CLOSE, _CLOSE_NORMAL_PAYLOAD)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            transport.abort()


async def open_connection(url: str, masks: MaskSource, timeout: float) -> LeanConnection:
    """Connect and finish the WebSocket handshake within ``timeout`` seconds.

    Raises ``OSError``/``ConnectionError`` when the server cannot be reached,
    ``InvalidHandshake`` when it refuses the upgrade, ``TimeoutError``, and ``ValueError``
    for a URL that is not ``ws://`` or ``wss://``.
    """
    try:
        uri = parse_uri(url)
    except InvalidURI as exc:
        raise ValueError(f"not a WebSocket URL: {url}") from exc
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if uri.secure else None
    async with asyncio.timeout(timeout):
        _, connection = await loop.create_connection(
            lambda: LeanConnection(url, masks), uri.host, uri.port, ssl=context
        )
        try:
            await connection.opened
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
    return connection
