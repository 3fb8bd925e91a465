"""raid-loadtest's own WebSocket framing and strike encoding, checked against websockets'."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from raidclient.loadtest.frames import (
    CLOSE_TOO_BIG,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameError,
    FrameReader,
    MaskSource,
    client_frame,
)
from raidclient.loadtest.strike_frames import StrikeEncoder


class Collected:
    """What a FrameReader handed on."""

    def __init__(self, max_message: int = 1 << 20) -> None:
        self.data: list[tuple[bytes, bool]] = []
        self.control: list[tuple[int, bytes]] = []
        self.reader = FrameReader(
            lambda payload, is_text: self.data.append((payload, is_text)),
            lambda opcode, payload: self.control.append((opcode, payload)),
            max_message,
        )


def server_frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=False)


@given(
    st.lists(st.binary(max_size=70_000), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=70_000),
)
def test_messages_survive_any_split_of_the_byte_stream(payloads: list[bytes], chunk: int) -> None:
    stream = b"".join(server_frame(Opcode.BINARY, p) for p in payloads)
    got = Collected()
    for at in range(0, len(stream), chunk):
        got.reader.feed(stream[at : at + chunk])
    assert got.data == [(p, False) for p in payloads]


def test_fragmented_messages_and_control_frames_in_between() -> None:
    got = Collected()
    got.reader.feed(
        server_frame(Opcode.TEXT, b"he", fin=False)
        + server_frame(Opcode.PING, b"p1")
        + server_frame(Opcode.CONT, b"ll", fin=False)
        + server_frame(Opcode.CONT, b"o")
        + server_frame(Opcode.BINARY, b"\x01")
        + server_frame(Opcode.CLOSE, b"\x03\xe8bye")
    )
    assert got.data == [(b"hello", True), (b"\x01", False)]
    assert got.control == [(OP_PING, b"p1"), (OP_CLOSE, b"\x03\xe8bye")]


@pytest.mark.parametrize(
    ("stream", "problem"),
    [
        (Frame(Opcode.BINARY, b"x").serialize(mask=True), "masked"),
        (bytes((0x80 | OP_BINARY, 0x80 | 126)) + bytes(6), "masked"),
        (bytes((0x80 | 0x40 | OP_BINARY, 1)) + b"x", "reserved bits"),
        (server_frame(Opcode.CONT, b"x"), "continuation frame outside"),
        (bytes((OP_PING, 1)) + b"x", "fragmented"),
        (bytes((0x80 | OP_PING, 126)) + (200).to_bytes(2, "big") + b"x" * 200, "longer than 125"),
        (bytes((0x80 | 0x3, 0)), "unknown data opcode"),
        (bytes((0x80 | 0xB, 0)), "unknown control opcode"),
        (
            server_frame(Opcode.TEXT, b"a", fin=False) + server_frame(Opcode.TEXT, b"b"),
            "inside a fragmented one",
        ),
    ],
)
def test_what_a_server_must_not_send_is_refused(stream: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem) as caught:
        Collected().reader.feed(stream)
    assert caught.value.code == 1002


def test_oversized_messages_are_refused_with_1009() -> None:
    with pytest.raises(FrameError) as whole:
        Collected(max_message=10).reader.feed(server_frame(Opcode.BINARY, b"x" * 11))
    assert whole.value.code == CLOSE_TOO_BIG
    with pytest.raises(FrameError) as parts:
        Collected(max_message=10).reader.feed(
            server_frame(Opcode.BINARY, b"x" * 6, fin=False) + server_frame(Opcode.CONT, b"y" * 6)
        )
    assert parts.value.code == CLOSE_TOO_BIG


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_client_frames_are_read_by_a_websockets_server(size: int) -> None:
    """Our masked frames, at each length encoding, as websockets' server reads them."""
    server = ServerProtocol(max_size=None)
    server.receive_data(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    masks = MaskSource()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    server.receive_data(
        client_frame(OP_BINARY, payload, masks.take()) + client_frame(OP_TEXT, b"hi", masks.take())
    )
    frames = [f for f in server.events_received() if isinstance(f, Frame)]
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.BINARY, payload),
        (Opcode.TEXT, b"hi"),
    ]


def test_masks_are_fresh_and_four_bytes() -> None:
    masks = MaskSource()
    drawn = [masks.take() for _ in range(3000)]  # crosses the pool's refill
    assert all(len(m) == 4 for m in drawn)
    assert len(set(drawn)) > 2900


@pytest.mark.parametrize("n", [0, 127, 128, 65535, 65536, 2**40])
def test_strike_frames_decode_to_the_strike_request(n: int) -> None:
    actions = ("fight", "fight", "analyze")
    packed = StrikeEncoder("msgpack", "titan-1", actions, "run-7-")
    assert msgpack.unpackb(packed.encode(n, "char-3")) == {
        "op": "strike",
        "rid": n,
        "raid_id": "titan-1",
        "action": actions[n % 3],
        "team": ["char-3"],
        "strike_id": f"run-7-{n}",
    }
    as_json = StrikeEncoder("json", "titan-1", actions, "run-7-")
    assert as_json.is_text
    assert json.loads(as_json.encode(n, "char-3")) == packed.as_dict(n, "char-3")
