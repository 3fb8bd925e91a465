"""One connection's session: who it is, how it speaks, and its outbox.

Everything here runs on the event-loop thread (the actor bridge posts to the loop before
calling ``push``). ``push`` never blocks: it queues an encoded frame and a writer task
sends queued frames in order. A client that does not read makes the queue grow; once
more than ``max_pending_bytes`` are waiting the connection is closed with 1013 and every
later frame is dropped and counted, so a slow client costs bounded memory and never
slows down the actors or the other clients.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

from server.frames import Format, encode_frame, websocket_frame
from server.metrics import Metrics
from server.ratelimit import TokenBucket

logger = logging.getLogger("raid.session")

Frame = bytes | str
"""An encoded frame: bytes go out as a binary frame, str as a text frame."""


class FramesByFormat(Protocol):
    """An event encoded once per wire format (server.fanout.EncodedEvent)."""

    def __getitem__(self, fmt: Format, /) -> Frame: ...


class FramedEvents(Protocol):
    """Events encoded and framed once per wire format (server.fanout.EncodedBatch)."""

    def __len__(self) -> int: ...

    def frames(self, fmt: Format, /) -> list[Frame]: ...

    def wire(self, fmt: Format, /) -> bytes: ...


CLOSE_TIMEOUT_S = 10.0
"""How long a close may take (flushing, then the closing handshake) before the TCP
connection is aborted. websockets' own close timeout only starts once the close frame
is written, which never happens while a client that does not read keeps the socket full."""


class Session:
    """The state of one WebSocket connection."""

    def __init__(
        self,
        connection: ServerConnection,
        *,
        bucket: TokenBucket,
        max_pending_bytes: int,
        metrics: Metrics,
        stall_limit_s: float,
    ) -> None:
        self.connection = connection  # the websockets connection the outbox writes to
        self.session_id = connection.id.hex  # also websockets' connection id, for logs
        self.user_id: str | None = None  # set by a successful hello
        self.role: str | None = None  # "player" or "admin", set by a successful hello
        self.format = Format.MSGPACK  # replies and events use the format the client used last
        self.bucket = bucket  # this connection's message rate limit
        self.max_pending_bytes = max_pending_bytes  # outbox cap before closing with 1013
        self._metrics = metrics
        self._queue: collections.deque[Frame] = collections.deque()  # frames not yet sent
        self._pending_bytes = 0  # bytes queued plus the frame being sent
        self._wakeup = asyncio.Event()  # set when the writer has something to do
        self._drained = asyncio.Event()  # set while nothing waits in the queue
        self._drained.set()
        self._closing = False  # no more pushes are accepted
        self._writer: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.stall_limit_s = stall_limit_s  # backed up with no progress this long: 1013
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stall_mark = 0  # bytes the socket had taken when the stall timer was armed
        self._written = 0  # bytes handed to the transport so far

    def __repr__(self) -> str:
        return f"Session({self.session_id}, user={self.user_id!r})"

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def pending_bytes(self) -> int:
        """Bytes pushed but not yet handed to the socket."""
        return self._pending_bytes

    @property
    def closing(self) -> bool:
        """True once the session accepts no more frames."""
        return self._closing

    @property
    def backed_up(self) -> bool:
        """The client is not keeping up: frames wait in the outbox or the socket's buffer is
        past its high-water mark. The gateway reads no more requests until it drains."""
        return bool(self._queue) or self.connection.paused

    async def until_drained(self) -> None:
        """Wait until the client has taken what was sent, or the session is closing (a client
        that takes nothing is closed by the stall watch, ``_check_stall``)."""
        connection = self.connection
        while not self._closing and self.backed_up:
            if self._queue:
                await self._drained.wait()
                continue
            try:
                await connection.drain()  # until resumed, or the connection is lost
            except (ConnectionClosed, OSError):
                return

    @property
    def log_extra(self) -> dict[str, Any]:
        return {"conn": self.session_id[:8], "user": self.user_id}  # as in the access line

    def start(self) -> None:
        """Start the writer task; call once, from the connection handler."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"outbox-{self.session_id}")

    def push(self, msg: Mapping[str, Any] | Frame) -> bool:
        """Queue a message (encoded in the current format) or an encoded frame.

        Returns False if the frame was dropped because the session is closing.
        """
        if self._closing:
            self._metrics.events_dropped.inc()
            return False
        frame = msg if isinstance(msg, (bytes, str)) else encode_frame(msg, self.format)
        if not self._queue and self._write_now(frame):
            return True
        # JSON frames are ASCII (ensure_ascii), so len() is their size in bytes.
        if self._pending_bytes + len(frame) > self.max_pending_bytes:
            self._too_slow()
            return False
        self._queue.append(frame)
        self._pending_bytes += len(frame)
        self._drained.clear()
        self._wakeup.set()
        if self._stall_timer is None:
            self._arm_stall_watch()
        return True

    def push_event(self, frames_by_format: FramesByFormat) -> bool:
        """Queue an event pre-encoded once per format; picks this session's format."""
        queued = self.push(frames_by_format[self.format])
        if queued:
            self._metrics.events_sent.inc()
        return queued

    def push_events(self, batch: FramedEvents) -> bool:
        """Queue a delivery's events; when nothing is queued before them and the socket takes
        data, write their shared pre-built frames in one write (no framing per session)."""
        count = len(batch)
        if self._closing:
            self._metrics.events_dropped.inc(count)
            return False
        if not self._queue and self._writable(raw=True):
            self._write_raw(batch.wire(self.format))
            self._metrics.events_sent.inc(count)
            return True
        for frame in batch.frames(self.format):
            if not self.push(frame):
                return False
        self._metrics.events_sent.inc(count)
        return True

    async def close(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Stop accepting frames, send what is queued, then close the connection."""
        self._begin_close(code, reason, flush=True)
        if self._close_task is not None:
            await self._close_task

    async def aclose(self) -> None:
        """Release the session once its connection is over; queued frames are dropped."""
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self._drop_queue()
        self._closing = True
        tasks = [task for task in (self._writer, self._close_task) if task is not None]
        if self._writer is not None:
            self._writer.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _drop_queue(self) -> None:
        self._drained.set()
        if self._queue:
            self._metrics.events_dropped.inc(len(self._queue))
            self._pending_bytes -= sum(len(frame) for frame in self._queue)
            self._queue.clear()

    def _begin_close(self, code: int, reason: str, *, flush: bool) -> None:
        if not flush:
            self._drop_queue()
        if self._closing:
            return
        self._closing = True
        self._wakeup.set()  # an idle writer exits once the queue is empty
        self._close_task = asyncio.create_task(
            self._close_connection(code, reason, flush=flush),
            name=f"close-{self.session_id}",
        )

    async def _close_connection(self, code: int, reason: str, *, flush: bool) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                if flush and self._writer is not None:
                    await asyncio.wait([self._writer])
                # Without flushing, the close frame follows the frame being sent, if any.
                await self.connection.close(code, reason)
        except TimeoutError:
            logger.info("close timed out: aborting the connection", extra=self.log_extra)
            self.connection.transport.abort()

    async def _write_loop(self) -> None:
        """Send queued frames: all of them at once when the connection is open (one socket
        write per burst, websockets' Sans-I/O protocol), one by one through ``send`` otherwise
        (closing, or a fragmented send in progress), so websockets handles the edge cases."""
        connection = self.connection
        protocol = connection.protocol
        while True:
            if not self._queue:
                self._drained.set()
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if protocol.state is not State.OPEN or connection.send_in_progress is not None:
                if not await self._send_one(self._queue.popleft()):
                    return
                continue
            frames = list(self._queue)
            self._queue.clear()
            size = 0
            for frame in frames:
                if isinstance(frame, str):
                    protocol.send_text(frame.encode())
                else:
                    protocol.send_binary(frame)
                size += len(frame)
            try:
                self._write_out()
                await connection.drain()  # flow control: waits while the socket buffer is full
            except (ConnectionClosed, OSError):
                self._lost()
                return
            finally:
                self._pending_bytes -= size

    def _write_now(self, frame: Frame) -> bool:
        """Write a frame straight to the socket when nothing is queued before it and the
        socket takes data (not paused by flow control): no writer-task wake-up per reply or
        per event, which was most of the cost of fanning events out to thousands of sessions.
        False when the frame must be queued instead."""
        if not self._writable(raw=False):
            return False
        protocol = self.connection.protocol
        if not protocol.extensions:  # framed here, as the fan-out does: no Frame object
            self._write_raw(websocket_frame(frame))
            return True
        if isinstance(frame, str):
            protocol.send_text(frame.encode())
        else:
            protocol.send_binary(frame)
        self._write_out()
        return True

    def _writable(self, *, raw: bool) -> bool:
        """The socket takes a frame now: open, not paused by flow control, no fragmented send
        in progress; for bytes framed elsewhere (``raw``), no extension (compression) either,
        since an extension makes frames specific to the session."""
        connection = self.connection
        protocol = connection.protocol
        return not (
            protocol.state is not State.OPEN
            or connection.paused
            or connection.send_in_progress is not None
            or connection.transport.is_closing()
            or (raw and protocol.extensions)
        )

    def _write_raw(self, wire: bytes) -> None:
        """Write complete frames built elsewhere, after anything the protocol has pending."""
        pending = self.connection.protocol.data_to_send()
        if pending:
            self._write_out_chunks(pending)
        self._write_bytes(wire)

    def _write_out(self) -> None:
        """Hand the protocol's outgoing bytes to the socket in one write (one syscall for a
        burst of frames: per-frame writes were a quarter of the server's CPU under fan-out)."""
        self._write_out_chunks(self.connection.protocol.data_to_send())

    def _write_out_chunks(self, chunks: list[bytes]) -> None:
        transport = self.connection.transport
        data = b"".join(chunks)
        if data:
            self._write_bytes(data)
        if not all(chunks):
            # An empty chunk is websockets' end-of-stream marker (as in its send_data).
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()

    async def _send_one(self, frame: Frame) -> bool:
        self._written += len(frame)  # the payload: close enough for the stall watch
        try:
            await self.connection.send(frame)
        except ConnectionClosed:
            self._lost()
            return False
        finally:
            self._pending_bytes -= len(frame)
        return True

    def _write_bytes(self, data: bytes) -> None:
        """Hand bytes to the transport, counted for the stall watch (armed once they fill it)."""
        self.connection.transport.write(data)
        self._written += len(data)
        if self.connection.paused and self._stall_timer is None:
            self._arm_stall_watch()

    def _socket_took(self) -> int:
        """Bytes the socket has taken from this session so far (not left in its buffer)."""
        return self._written - self.connection.transport.get_write_buffer_size()

    def _arm_stall_watch(self) -> None:
        self._stall_mark = self._socket_took()
        self._stall_timer = asyncio.get_running_loop().call_later(
            self.stall_limit_s, self._check_stall
        )

    def _check_stall(self) -> None:
        """Backed up for ``stall_limit_s``: on with the watch if the client took anything
        meanwhile, else close it with 1013. The keepalive cannot catch such a client: its ping
        waits behind the very output the client does not read."""
        self._stall_timer = None
        if self._closing or not self.backed_up:
            return
        if self._socket_took() > self._stall_mark:
            self._arm_stall_watch()  # slow, but reading
            return
        self._too_slow()

    def _too_slow(self) -> None:
        """Close a client that does not read (outbox over its cap, or no progress): 1013."""
        logger.warning(
            "client is not reading: closing with 1013",
            extra={**self.log_extra, "pending_bytes": self._pending_bytes},
        )
        self._metrics.events_dropped.inc()
        self._begin_close(CloseCode.TRY_AGAIN_LATER, "client too slow", flush=False)

    def _lost(self) -> None:
        self._metrics.events_dropped.inc()
        self._closing = True
        self._drop_queue()
