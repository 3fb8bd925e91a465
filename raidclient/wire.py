"""Frames on the wire: MessagePack maps in binary frames (default) or JSON in text frames."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from typing import Any

import msgpack

from raidclient.errors import ProtocolViolation


class Format(enum.Enum):
    """How the client encodes its frames; the server answers in the same format."""

    MSGPACK = "msgpack"
    JSON = "json"


def encode(msg: Mapping[str, Any], fmt: Format) -> bytes | str:
    """One request frame: bytes (a binary frame) or str (a text frame)."""
    if fmt is Format.JSON:
        return json.dumps(msg, separators=(",", ":"))
    packed: bytes = msgpack.packb(msg, use_bin_type=True)
    return packed


def decode(data: bytes | str) -> dict[str, Any]:
    """One server frame as a map; anything else is a ``ProtocolViolation``."""
    try:
        value = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise ProtocolViolation(f"undecodable frame from the server ({exc})") from None
    if not isinstance(value, dict):
        raise ProtocolViolation("the server sent a frame that is not a map")
    return value
