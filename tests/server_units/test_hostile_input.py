"""Hostile input against the frame decoder, every op's parser and a real gateway (issue 9).

Property: a frame is either answered (a reply or a one-line error) or refused with
``ProtocolError`` — never an unhandled exception — and the connection stays usable, before
and after ``hello``. Hypothesis generates the inputs; the gateway is a real server on a free
port (tests/server_units/support.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection

from raid.errors import ProtocolError
from raid.limits import MAX_TIME
from server.frames import decode_frame
from server.requests import PARSERS, AdminRaidCreate, parse_request
from tests.server_units.support import call, client, hello, run_server, token

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: 10**400 included
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.binary(max_size=16),
    st.sampled_from(["fight", "analyze", "", "x" * 65, "2030-01-01", "9999-12-31T23:59:59"]),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64, -(2**63) - 1, 1e308, -0.0, 2**53]),
)
edge_numbers = st.sampled_from(
    [10**400, -(10**400), 2**1100, 2**64, 2**63, -(2**63) - 1, math.inf, math.nan, 1e308]
)
"""Numbers no field can hold, and numbers at the edge of what fields hold."""
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = int(os.environ.get("RAID_FUZZ_EXAMPLES", "150"))
"""Examples per property: small in `make test`; set RAID_FUZZ_EXAMPLES=5000 for a long run."""

OP_FIELDS = {
    op: [f.name for f in dataclasses.fields(parse.__self__)]  # type: ignore[attr-defined]
    for op, parse in PARSERS.items()
}
"""Each op's own fields, so that most generated requests reach the field checks."""

FIELDS = sorted(
    {name for names in OP_FIELDS.values() for name in names}
    | {"character_id", "name", "rarity", "stats", "tags"}  # a character's fields
)


@st.composite
def _op_request(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(sorted(OP_FIELDS)))
    names = OP_FIELDS[op] or ["rid"]
    plausible = st.sampled_from(["r1", "fight", "analyze", "b"]) | st.text(min_size=1, max_size=8)
    fields = draw(
        st.dictionaries(
            st.sampled_from(names), edge_numbers | plausible | values, max_size=len(names)
        )
    )
    return {"op": op, "rid": draw(st.integers(-5, 5) | values), **fields}


requests = (
    _op_request()
    | _op_request()
    | st.builds(
        lambda op, rid, fields: {"op": op, "rid": rid, **fields},
        st.text(max_size=10) | values,
        values,
        st.dictionaries(st.sampled_from(FIELDS), values, max_size=6),
    )
)


def _packable(value: Any) -> bool:
    """MessagePack itself cannot carry integers outside [-2**63, 2**64)."""
    try:
        msgpack.packb(value, use_bin_type=True)
    except (OverflowError, TypeError, ValueError):
        return False
    return True


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


@settings(max_examples=FUZZ, deadline=None)
@given(requests)
@example({"op": "admin.raid.create", "rid": 1, "boss": "b", "start": 10**400})
@example({"op": "admin.raid.create", "rid": 1, "boss": "b", "end": -(10**400)})
@example({"op": "admin.raid.create", "rid": 1, "boss": "b", "start": math.nan})
@example({"op": "admin.rewards.ack", "rid": 2**64, "ids": [2**64]})
def test_every_parser_accepts_or_answers_bad_request(msg: dict[str, Any]) -> None:
    try:
        parse_request(msg)
    except ProtocolError as exc:
        assert exc.message and "\n" not in exc.message


@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=200))
def test_the_decoder_takes_any_bytes(data: bytes) -> None:
    try:
        decoded, _ = decode_frame(data)
    except ProtocolError:
        return
    assert isinstance(decoded, dict)


@settings(max_examples=FUZZ, deadline=None)
@given(st.text(max_size=200) | values.filter(_json_safe).map(json.dumps))
def test_the_decoder_takes_any_text(text: str) -> None:
    try:
        decoded, _ = decode_frame(text)
    except ProtocolError:
        return
    assert isinstance(decoded, dict)


@settings(max_examples=FUZZ, deadline=None)
@given(values.filter(_packable))
def test_the_decoder_takes_any_msgpack_value(value: Any) -> None:
    try:
        decoded, _ = decode_frame(msgpack.packb(value, use_bin_type=True))
    except ProtocolError:
        return
    assert isinstance(decoded, dict)


HUGE = "1" + "0" * 400  # 10**400: more than a float can hold


@pytest.mark.parametrize(
    "frame",
    [
        '{"op":"admin.raid.create","rid":1,"boss":"b","start":' + HUGE + "}",
        '{"op":"admin.raid.create","rid":1,"boss":"b","end":-' + HUGE + "}",
        '{"op":"admin.raid.create","rid":1,"boss":"b","start":1e308}',
        '{"op":"admin.raid.create","rid":1,"boss":"b","start":"99999-01-01"}',
        '{"op":"raid.subscribe","rid":1,"raid_id":"r","since_seq":' + HUGE + "}",
        '{"op":"admin.rewards.ack","rid":1,"ids":[' + HUGE + "]}",
        '{"op":"ping","rid":' + HUGE + "}",
    ],
)
async def test_numbers_no_field_can_hold_answer_bad_request_before_and_after_hello(
    frame: str,
) -> None:
    """Item 10: 10**400 as a time raised OverflowError and closed the connection (1011)."""
    async with run_server() as running, client(running) as ws:
        for authenticated in (False, True):
            await ws.send(frame)
            reply = await _recv_json(ws)
            assert reply["op"] == "error" and reply["code"] == "bad_request", reply
            assert reply["rid"] in (1, None)
            if not authenticated:
                await hello(ws, "ops", "admin")
        assert (await call(ws, {"op": "ping", "rid": 2}))["op"] == "ping.ok"


def test_times_are_checked_for_range() -> None:
    for value in (
        10**400,
        -1,
        MAX_TIME + 1,
        math.inf,
        math.nan,
        "0001-01-01",
        "9999-12-31T23:59:60",
    ):
        with pytest.raises(ProtocolError):
            parse_request({"op": "admin.raid.create", "rid": 1, "boss": "b", "start": value})
    _, req = parse_request({"op": "admin.raid.create", "rid": 1, "boss": "b", "start": MAX_TIME})
    assert isinstance(req, AdminRaidCreate) and req.start == MAX_TIME


@pytest.mark.parametrize("bad_token", ["", ".", "a.b", "x" * 4096])
async def test_empty_or_malformed_tokens_are_unauthenticated(bad_token: str) -> None:
    """Item 12: an empty token answered bad_request; the protocol says unauthenticated."""
    async with run_server() as running, client(running) as ws:
        reply = await call(ws, {"op": "hello", "rid": 1, "token": bad_token})
        assert reply["code"] == "unauthenticated", reply
        ok = await call(ws, {"op": "hello", "rid": 2, "token": token()})
        assert ok["op"] == "hello.ok"


async def _recv_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        data = await ws.recv()
    value = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)
    assert isinstance(value, dict)
    return value


frames = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    requests.filter(_packable).map(lambda m: msgpack.packb(m, use_bin_type=True)),
    requests.filter(_json_safe).map(lambda m: json.dumps(m, allow_nan=True)),
)


@settings(
    max_examples=max(3, FUZZ // 40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(frames, min_size=20, max_size=40), st.booleans())
def test_a_real_gateway_survives_any_frames(batch: list[bytes | str], authenticated: bool) -> None:
    """Fuzzing the whole path (rate limit, decode, parse, authorise, dispatch) through a
    real socket: every frame is answered and the connection stays usable."""

    async def scenario() -> None:
        async with run_server(messages_per_s=10_000, message_burst=10_000) as running:
            running.service.release_slow_strike.set()
            async with client(running) as ws:
                if authenticated:
                    await hello(ws, "ops", "admin")
                for frame in batch:
                    await ws.send(frame)
                answered = 0
                while answered < len(batch):
                    reply = await _recv_json(ws)
                    answered += reply.get("op") != "event"
                assert (await call(ws, {"op": "ping", "rid": "last"}))["rid"] == "last"

    asyncio.run(scenario())
