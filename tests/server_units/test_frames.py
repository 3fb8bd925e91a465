from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raid.errors import ErrorCode, ProtocolError
from server.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    Format,
    decode_frame,
    encode_frame,
    websocket_frame,
)


def bad_request(data: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_frame(data)
    assert caught.value.code is ErrorCode.BAD_REQUEST
    return caught.value


def test_msgpack_map_decodes() -> None:
    msg = {"op": "ping", "rid": 7, "nested": {"a": [1, 2.5, None, True]}}
    assert decode_frame(msgpack.packb(msg)) == (msg, Format.MSGPACK)


def test_json_object_decodes() -> None:
    assert decode_frame('{"op":"ping","rid":"a"}') == ({"op": "ping", "rid": "a"}, Format.JSON)


@pytest.mark.parametrize(
    "data", [b"", b"\xc1", b"\x92\x01", b"\x81\xa1a", b"\x01\x02", b"\xa2\xff\xfe"]
)
def test_garbage_bytes_are_bad_request(data: bytes) -> None:
    assert "malformed frame" in bad_request(data).message


@pytest.mark.parametrize("data", ["", "{", "nope", '{"a":1} x', "[1,2"])
def test_garbage_json_is_bad_request(data: str) -> None:
    bad_request(data)


@pytest.mark.parametrize("value", [[1, 2], "op", 3, None, 1.5])
def test_non_map_is_bad_request(value: Any) -> None:
    assert "map" in bad_request(msgpack.packb(value)).message
    assert "map" in bad_request(json.dumps(value)).message


@pytest.mark.parametrize("text", ['{"x":NaN}', '{"x":Infinity}', '{"x":-Infinity}', '{"x":1e999}'])
def test_json_non_finite_numbers_are_rejected(text: str) -> None:
    bad_request(text)


def test_msgpack_non_str_keys_are_rejected() -> None:
    bad_request(msgpack.packb({1: "a"}))
    bad_request(msgpack.packb({b"op": "ping"}, use_bin_type=True))


def test_msgpack_ext_types_are_rejected() -> None:
    bad_request(msgpack.packb({"t": msgpack.ExtType(5, b"xy")}))
    bad_request(msgpack.packb({"t": msgpack.Timestamp(1, 0)}))


def test_lengths_beyond_the_frame_are_refused_before_allocation() -> None:
    # Headers announcing 2**31 items or bytes, with none of them present.
    for header in (b"\xdb\x80\x00\x00\x00", b"\xc6\x80\x00\x00\x00", b"\xdd\x80\x00\x00\x00"):
        bad_request(b"\x81\xa1k" + header)
    bad_request(b"\xdf\x80\x00\x00\x00")


def test_huge_string_beyond_the_limit_is_rejected() -> None:
    big = msgpack.packb({"s": "x" * (DEFAULT_MAX_FRAME_BYTES + 1)})
    bad_request(big)
    small = msgpack.packb({"s": "x" * 100})
    with pytest.raises(ProtocolError):
        decode_frame(small, max_bytes=50)


def test_deep_nesting_is_bad_request() -> None:
    bad_request("[" * 100_000 + "]" * 100_000)
    bad_request('{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
    bad_request(b"\x81\xa1a" + b"\x91" * 60_000 + b"\xc0")


def test_encode_round_trips_in_both_formats() -> None:
    msg = {"op": "event", "seq": 3, "values": (1, 2), "name": "é"}
    packed = encode_frame(msg, Format.MSGPACK)
    assert isinstance(packed, bytes)
    assert msgpack.unpackb(packed) == {**msg, "values": [1, 2]}
    text = encode_frame(msg, Format.JSON)
    assert isinstance(text, str)
    assert text.isascii() and " " not in text
    assert json.loads(text) == {**msg, "values": [1, 2]}


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        encode_frame({"x": math.nan}, Format.JSON)


@given(st.binary(max_size=256))
def test_any_bytes_decode_to_a_map_or_bad_request(data: bytes) -> None:
    try:
        value, fmt = decode_frame(data)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.BAD_REQUEST
    else:
        assert isinstance(value, dict) and fmt is Format.MSGPACK


@given(st.text(max_size=256))
def test_any_text_decodes_to_a_map_or_bad_request(data: str) -> None:
    try:
        value, fmt = decode_frame(data)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.BAD_REQUEST
    else:
        assert isinstance(value, dict) and fmt is Format.JSON


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
@pytest.mark.parametrize("text", [False, True])
def test_prebuilt_websocket_frames_parse_as_websockets_parses_them(size: int, text: bool) -> None:
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    message: bytes | str = "é" * (size // 2) if text else bytes(range(256)) * (size // 256 + 1)
    message = message[: size // 2] if text else message[:size]
    reader = StreamReader()
    reader.feed_data(websocket_frame(message))
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:
        raise AssertionError("the frame was incomplete")
    assert frame.fin
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.data == (message.encode() if isinstance(message, str) else message)
