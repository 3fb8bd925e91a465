"""A WebSocket connection whose frames can be handled as they are parsed.

websockets hands every data frame to an ``Assembler`` queue, and the connection's handler
task takes it from there: a future is resolved, the task is woken and resumes through
``async for``, ``recv`` and the queue's ``get``, once per frame (5-10 % of the event loop's
time per strike in the profiles of docs/benchmarks.md). ``GatewayConnection`` offers each
complete binary frame to an ``inline`` callback first, in ``data_received``, while the
handler is idle: waiting for the next frame with none queued ahead of this one. The callback
either handles the frame then and there (True) or declines it (False), and the frame takes
websockets' usual path. So frames are still handled one at a time and in arrival order: a
frame is only handled inline when every frame before it has already been taken by the
handler.

This relies on websockets' asyncio internals (``process_event``, the assembler's queue), which
is why websockets is pinned to 17.x (pyproject.toml); ``tests/server_units/test_inline_frames.py``
checks them against the installed version.
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

InlineHandler = Callable[[bytes], bool]
"""Handles one complete binary frame's payload now (True) or declines it (False)."""


class GatewayConnection(ServerConnection):
    inline: InlineHandler | None = None
    """Set by the connection's handler once it can take frames inline."""

    def process_event(self, event: Event) -> None:
        inline = self.inline
        if (
            inline is not None
            and type(event) is Frame
            and event.opcode is Opcode.BINARY
            and event.fin
            and self.handler_idle()
            and inline(bytes(event.data))
        ):
            return
        super().process_event(event)

    def handler_idle(self) -> bool:
        """The handler waits for a frame and none is queued. (A binary frame never arrives in
        the middle of a fragmented message: websockets' protocol fails the connection.)"""
        frames = self.recv_messages.frames
        waiter = frames.get_waiter
        return waiter is not None and not waiter.done() and not frames.queue
