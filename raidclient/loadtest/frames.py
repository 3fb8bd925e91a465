"""WebSocket framing for raid-loadtest's measured phase (RFC 6455, the client's side).

websockets' own layers cost the load generator more than the whole per-strike budget it
has (40 µs of CPU): through its asyncio connection a request and its reply cost ~130 µs
here, and even its Sans-I/O ``ClientProtocol`` alone costs ~13 µs (a parser generator,
one ``Frame`` object and one event list per message). The measured phase needs much
less: unextended frames (compression is never negotiated), masked on the way out,
unmasked on the way in. So the handshake stays with websockets (connection.py) and the
frames after it are read and written here:

- ``client_frame`` writes one masked frame (the mask from ``MaskSource``).
- ``FrameReader`` turns received bytes into whole messages and control frames, joins
  fragmented messages, and raises ``FrameError`` for anything a server must not send
  (masked or reserved-bit frames, bad control frames, oversized messages): the caller
  closes the connection with the error's close code.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from websockets.speedups import apply_mask

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009
MAX_MESSAGE_BYTES = 64 * 2**20
"""Largest message accepted (the old connections had no limit; a raid view is ~10 KB)."""

_MASK_POOL_BYTES = 4096  # 1,024 masks per os.urandom call
_HEAD_16 = struct.Struct("!BBH")
_HEAD_64 = struct.Struct("!BBQ")
_LEN_16 = struct.Struct("!H")
_LEN_64 = struct.Struct("!Q")


class FrameError(Exception):
    """The server broke the framing; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class MaskSource:
    """Mask keys from the OS's random source, drawn 1,024 at a time (RFC 6455 §5.3 wants
    them unpredictable; one ``os.urandom`` call per frame would cost a system call)."""

    def __init__(self) -> None:
        self._pool = os.urandom(_MASK_POOL_BYTES)
        self._at = 0

    def take(self) -> bytes:
        at = self._at
        if at >= _MASK_POOL_BYTES:
            self._pool = os.urandom(_MASK_POOL_BYTES)
            at = 0
        self._at = at + 4
        return self._pool[at : at + 4]


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final, masked frame carrying ``payload``."""
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        head = _HEAD_16.pack(0x80 | opcode, 0xFE, length)
    else:
        head = _HEAD_64.pack(0x80 | opcode, 0xFF, length)
    return head + mask + apply_mask(payload, mask)


DataHandler = Callable[[bytes, bool], None]
"""Called with (payload, is_text) for each whole message."""
ControlHandler = Callable[[int, bytes], None]
"""Called with (opcode, payload) for each control frame (OP_CLOSE, OP_PING, OP_PONG)."""


class FrameReader:
    """Server frames in, whole messages out, in order: data messages to ``on_data``,
    control frames to ``on_control``."""

    def __init__(
        self, on_data: DataHandler, on_control: ControlHandler, max_message: int = MAX_MESSAGE_BYTES
    ) -> None:
        self.on_data = on_data  # the hot path calls it directly: no dispatch in between
        self.on_control = on_control
        self.max_message = max_message
        self._tail = b""  # bytes of a frame not yet complete
        self._fragments: list[bytes] = []  # the parts of a fragmented message so far
        self._fragmented_opcode = 0  # OP_TEXT or OP_BINARY while a message is fragmented
        self._fragmented_size = 0

    def feed(self, data: bytes) -> None:
        """Parse ``data``; raises ``FrameError`` (and parses nothing more) on a bad frame."""
        if self._tail:
            data = self._tail + data
            self._tail = b""
        end = len(data)
        at = 0
        on_data = self.on_data
        while end - at >= 2:
            first = data[at]
            second = data[at + 1]
            length = second & 0x7F
            start = at + 2
            if length == 126:
                if end - at < 4:
                    break
                length = _LEN_16.unpack_from(data, start)[0]
                start += 2
            elif length == 127:
                if end - at < 10:
                    break
                length = _LEN_64.unpack_from(data, start)[0]
                start += 8
            if second & 0x80:
                raise FrameError("the server sent a masked frame")
            if first & 0x70:
                raise FrameError("reserved bits set, but no extension was negotiated")
            if length > self.max_message:
                raise FrameError(f"a frame of {length} bytes is too big", CLOSE_TOO_BIG)
            stop = start + length
            if stop > end:
                break
            payload = data[start:stop]
            at = stop
            opcode = first & 0x0F
            if first & 0x80 and opcode in (OP_BINARY, OP_TEXT):
                if self._fragments:
                    raise FrameError("a new message began inside a fragmented one")
                on_data(payload, opcode == OP_TEXT)  # the hot path: a message in one frame
            else:
                self._other(opcode, bool(first & 0x80), payload)
        if at < end:
            self._tail = data[at:]

    def _other(self, opcode: int, final: bool, payload: bytes) -> None:
        if opcode >= OP_CLOSE:
            if opcode not in (OP_CLOSE, OP_PING, OP_PONG):
                raise FrameError(f"unknown control opcode {opcode:#x}")
            if not final or len(payload) > 125:
                raise FrameError("a control frame was fragmented or longer than 125 bytes")
            self.on_control(opcode, payload)
            return
        if opcode in (OP_TEXT, OP_BINARY):  # the first part of a fragmented message
            if self._fragments:
                raise FrameError("a new message began inside a fragmented one")
            self._fragmented_opcode = opcode
        elif opcode != OP_CONTINUATION:
            raise FrameError(f"unknown data opcode {opcode:#x}")
        elif not self._fragments:
            raise FrameError("a continuation frame outside a fragmented message")
        self._fragmented_size += len(payload)
        if self._fragmented_size > self.max_message:
            raise FrameError("a fragmented message is too big", CLOSE_TOO_BIG)
        self._fragments.append(payload)
        if final:
            message = b"".join(self._fragments)
            self._fragments = []
            self._fragmented_size = 0
            self.on_data(message, self._fragmented_opcode == OP_TEXT)
