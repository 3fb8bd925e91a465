"""Wire frames: one MessagePack map per binary frame, one JSON object per text frame.

Decoding is the first line of defence against hostile input, so it either returns a
``dict`` with string keys or raises ``ProtocolError(bad_request)``; nothing else escapes.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

import msgpack

from raid.config import shipped_defaults
from raid.errors import ErrorCode, ProtocolError

DEFAULT_MAX_FRAME_BYTES = shipped_defaults().server.max_frame_bytes
"""``[server] max_frame_bytes`` of the shipped defaults (defined once, in the TOML)."""


class Format(enum.Enum):
    """How a frame is encoded; the server answers in the format the client used last."""

    MSGPACK = "msgpack"  # binary frames
    JSON = "json"  # text frames


def _bad_frame(problem: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"malformed frame: {problem}")


def _reject_constant(name: str) -> NoReturn:
    raise _bad_frame(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _bad_frame("number out of range")
    return value


def _unpack(data: bytes, max_bytes: int) -> object:
    # No single item of a frame of max_bytes can be longer than the frame, and every
    # array item or map entry takes at least one byte: these bounds refuse any header
    # that announces more than the frame can hold before memory is allocated for it.
    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=True,
        max_str_len=max_bytes,
        max_bin_len=max_bytes,
        max_array_len=max_bytes,
        max_map_len=max_bytes // 2,
        max_ext_len=0,  # no extension types, the timestamp extension included
    )


def _load_json(text: str) -> object:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def decode_frame(
    data: bytes | str, max_bytes: int = DEFAULT_MAX_FRAME_BYTES
) -> tuple[dict[str, Any], Format]:
    """Decode one frame into a map with string keys and the format it came in."""
    fmt = Format.JSON if isinstance(data, str) else Format.MSGPACK
    try:
        value = _load_json(data) if isinstance(data, str) else _unpack(data, max_bytes)
    except ProtocolError:
        raise
    except RecursionError:
        raise _bad_frame("nested too deeply") from None
    except (ValueError, msgpack.UnpackException) as exc:
        # json.JSONDecodeError, UnicodeDecodeError and msgpack's errors are ValueErrors.
        name = "JSON" if fmt is Format.JSON else "MessagePack"
        raise _bad_frame(f"not valid {name} ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise _bad_frame("the message must be a map/object")
    if not all(isinstance(key, str) for key in value):
        raise _bad_frame("map keys must be strings")
    return value, fmt


def encode_frame(msg: Mapping[str, Any], fmt: Format) -> bytes | str:
    """Encode one outgoing message: bytes for a binary frame, str for a text frame."""
    plain = msg if isinstance(msg, dict) else dict(msg)
    if fmt is Format.JSON:
        return json.dumps(plain, separators=(",", ":"), allow_nan=False)
    packed: bytes = msgpack.packb(plain, use_bin_type=True)
    return packed


def websocket_frame(frame: bytes | str) -> bytes:
    """A complete, unfragmented server-to-client WebSocket frame carrying ``frame`` (RFC 6455
    section 5.2: FIN, opcode text for str and binary for bytes, no mask, no extension).

    Server frames are never masked, so without compression a frame's bytes are the same for
    every session: the fan-out builds an event's frame once and writes the same bytes to all.
    """
    if isinstance(frame, str):
        payload, first = frame.encode(), 0x81
    else:
        payload, first = frame, 0x82
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload
