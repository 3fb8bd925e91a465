from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Mapping

import msgpack
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from server.frames import Format, encode_frame
from server.session import Session
from server.tokens import issue_token
from tests.server_units.support import (
    SECRET,
    TIMEOUT,
    call,
    client,
    decode,
    eventually,
    hello,
    recv,
    run_server,
    token,
    until,
)

STRIKE = {"op": "strike", "raid_id": "r1", "action": "fight", "team": ["c1"]}


async def test_hello_first_then_requests_work() -> None:
    async with run_server() as srv, client(srv) as ws:
        for op in ("ping", "raid.hub", "admin.snapshot"):
            reply = await call(ws, {"op": op, "rid": op, "raid_id": "r1"})
            assert (reply["op"], reply["code"], reply["rid"]) == ("error", "unauthenticated", op)
        reply = await call(ws, {"op": "hello", "rid": 1, "token": token("alice")})
        assert reply["op"] == "hello.ok" and reply["rid"] == 1
        assert (reply["user_id"], reply["role"]) == ("alice", "player")
        assert reply["raids"] == [{"raid_id": "r1", "name": "Leviathan", "status": "active"}]
        assert abs(reply["server_time"] - time.time()) < TIMEOUT
        reply = await call(ws, {"op": "ping", "rid": 2})
        assert reply["op"] == "ping.ok" and reply["rid"] == 2
        reply = await call(ws, {"op": "raid.hub", "rid": 3, "raid_id": "r1"})
        assert reply["op"] == "raid.hub.ok" and reply["me"] == {"user_id": "alice"}
        reply = await call(ws, {"op": "hello", "rid": 4, "token": token("alice")})
        assert reply["code"] == "bad_request"


@pytest.mark.parametrize(
    "bad_token",
    [
        "garbage",
        issue_token("wrong-secret", "alice", "player", 60, time.time()),
        issue_token(SECRET, "alice", "player", 60, time.time() - 120),
    ],
)
async def test_bad_tokens_are_unauthenticated_and_hello_can_be_retried(bad_token: str) -> None:
    async with run_server() as srv, client(srv) as ws:
        reply = await call(ws, {"op": "hello", "rid": 1, "token": bad_token})
        assert (reply["op"], reply["code"]) == ("error", "unauthenticated")
        await hello(ws)


async def test_failed_service_hello_does_not_authenticate() -> None:
    async with run_server() as srv, client(srv) as ws:
        reply = await call(ws, {"op": "hello", "rid": 1, "token": token("down")})
        assert reply["code"] == "unavailable"
        reply = await call(ws, {"op": "ping", "rid": 2})
        assert reply["code"] == "unauthenticated"


async def test_admin_ops_need_an_admin_token() -> None:
    async with run_server() as srv:
        async with client(srv) as ws:
            await hello(ws, "alice", "player")
            reply = await call(ws, {"op": "admin.raid.end", "rid": 1, "raid_id": "r1"})
            assert (reply["code"], reply["rid"]) == ("forbidden", 1)
        async with client(srv) as ws:
            await hello(ws, "root", "admin")
            reply = await call(ws, {"op": "admin.raid.end", "rid": 1, "raid_id": "r1"})
            assert reply == {"op": "admin.raid.end.ok", "rid": 1, "status": "ended"}


async def test_malformed_frames_answer_bad_request_and_the_connection_stays_usable() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        cases: list[tuple[bytes | str, object]] = [
            (b"\xc1\xc1", None),
            ("{not json", None),
            ("[1, 2]", None),
            (msgpack.packb({"rid": 5}), 5),
            (json.dumps({"op": "raid.hub", "rid": "h", "raid_id": "x" * 65}), "h"),
            (json.dumps({"op": "ping", "rid": True}), None),
        ]
        for frame, rid in cases:
            await ws.send(frame)
            reply = await recv(ws)
            assert (reply["op"], reply["code"], reply["rid"]) == ("error", "bad_request", rid)
        reply = await call(ws, {"op": "nope", "rid": 9})
        assert (reply["code"], reply["rid"]) == ("unknown_op", 9)
        reply = await call(ws, {"op": "ping", "rid": 10})
        assert reply["op"] == "ping.ok"


async def test_replies_use_the_format_the_client_used_last() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        await ws.send(msgpack.packb({"op": "ping", "rid": 1}))
        assert isinstance(await until(ws.recv()), bytes)
        await ws.send(json.dumps({"op": "ping", "rid": 2}))
        assert isinstance(await until(ws.recv()), str)
        await ws.send(b"\xc1")  # even a malformed frame sets the format
        raw = await until(ws.recv())
        assert isinstance(raw, bytes) and decode(raw)["code"] == "bad_request"


async def test_service_errors_become_error_replies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="raid.gateway")
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        reply = await call(ws, {"op": "raid.hub", "rid": 1, "raid_id": "r2"})
        assert (reply["code"], reply["rid"]) == ("unknown_raid", 1)
        refused = [r for r in caplog.records if r.getMessage().startswith("request refused")]
        assert refused and getattr(refused[0], "raid", None) == "r2"
        assert getattr(refused[0], "user", None) is not None
        reply = await call(ws, {**STRIKE, "rid": 2, "strike_id": "cooldown"})
        assert (reply["code"], reply["retry_after"]) == ("on_cooldown", 12.5)


async def test_unexpected_exceptions_answer_internal_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        reply = await call(ws, {**STRIKE, "rid": 1, "strike_id": "boom"})
        assert reply == {"op": "error", "rid": 1, "code": "internal", "message": "internal error"}
        assert (await call(ws, {"op": "ping", "rid": 2}))["op"] == "ping.ok"
    tracebacks = [r.exc_text or "" for r in caplog.records if r.name == "raid.gateway"]
    assert any("hunter2" in text for text in tracebacks)  # the details go to the log only
    metrics = srv.metrics.render()[0].decode()
    assert 'strikes_total{code="internal"} 1.0' in metrics


async def test_strikes_are_counted_by_outcome() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        reply = await call(ws, {**STRIKE, "rid": 1, "strike_id": "s1"})
        assert reply["op"] == "strike.ok" and reply["team"] == ["c1"]
        await call(ws, {**STRIKE, "rid": 2, "strike_id": "cooldown"})
    metrics = srv.metrics.render()[0].decode()
    assert 'strikes_total{code="ok"} 1.0' in metrics
    assert 'strikes_total{code="on_cooldown"} 1.0' in metrics
    assert "strike_latency_seconds_count 2.0" in metrics
    assert 'requests_total{op="strike"} 2.0' in metrics


async def test_ping_is_answered_while_a_slow_strike_is_in_flight() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        await ws.send(json.dumps({**STRIKE, "rid": "slow", "strike_id": "slow"}))
        reply = await call(ws, {"op": "ping", "rid": "p"})
        assert (reply["op"], reply["rid"]) == ("ping.ok", "p")
        srv.service.release_slow_strike.set()
        reply = await recv(ws)
        assert (reply["op"], reply["rid"]) == ("strike.ok", "slow")


async def test_subscribe_reply_comes_from_the_service() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        reply = await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"})
        assert reply == {"op": "raid.subscribe.ok", "rid": 1, "seq": 0}
        reply = await call(ws, {"op": "raid.unsubscribe", "rid": 2, "raid_id": "r1"})
        assert reply == {"op": "raid.unsubscribe.ok", "rid": 2}


async def test_events_use_the_session_format() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"}, binary=True)
        session = srv.session_of("alice")
        event = {"op": "event", "type": "milestone", "raid_id": "r1", "seq": 1, "hp_pct": 50}
        frames = {fmt: encode_frame(event, fmt) for fmt in Format}
        assert session.push_event(frames)
        assert await until(ws.recv()) == frames[Format.MSGPACK]
        await call(ws, {"op": "ping", "rid": 2})
        assert session.push_event(frames)
        assert await until(ws.recv()) == frames[Format.JSON]
    assert "events_sent_total 2.0" in srv.metrics.render()[0].decode()


async def test_flood_is_rate_limited() -> None:
    async with run_server(messages_per_s=0.5, message_burst=3) as srv, client(srv) as ws:
        await hello(ws)  # takes one token
        for rid in range(3):
            await ws.send(json.dumps({"op": "ping", "rid": rid}))
        # Replies may come out of order (requests run as tasks): match them by rid.
        replies = sorted([await recv(ws) for _ in range(3)], key=lambda r: int(r["rid"]))
        assert [r["op"] for r in replies[:2]] == ["ping.ok", "ping.ok"]
        limited = replies[2]
        assert (limited["code"], limited["rid"]) == ("rate_limited", 2)
        assert 0 < limited["retry_after"] <= 2


async def test_a_flood_is_read_at_the_rate_limit() -> None:
    """After a rate_limited answer the server reads nothing from the connection until a
    token is back, so the next frame is served: never two rate_limited in a row."""
    async with run_server(messages_per_s=100, message_burst=3) as srv, client(srv) as ws:
        await hello(ws)
        for rid in range(30):
            await ws.send(json.dumps({"op": "ping", "rid": rid}))
        replies = sorted([await recv(ws) for _ in range(30)], key=lambda r: int(r["rid"]))
        ops = [r["op"] if r["op"] != "error" else r["code"] for r in replies]
        assert "rate_limited" in ops
        assert all(not (a == b == "rate_limited") for a, b in itertools.pairwise(ops)), ops


async def test_oversized_frame_closes_with_1009() -> None:
    async with run_server(max_frame_bytes=1024) as srv, client(srv) as ws:
        await hello(ws)
        await ws.send(json.dumps({"op": "ping", "rid": 1, "pad": "x" * 2000}))
        with pytest.raises(ConnectionClosedError):
            await recv(ws)
        assert ws.close_code == 1009
        await eventually(lambda: len(srv.service.closed) == 1, "session_closed")


PENDING_CAP = 64 * 1024
ANNOUNCEMENT = {"op": "event", "type": "announcement", "raid_id": "r1", "text": "x" * 8192}


async def push_paced(session: Session, frames: Mapping[Format, bytes | str]) -> None:
    """Push one event, then give the writer a few loop turns to hand it to the socket.

    A client that reads keeps the outbox empty at this pace; one that does not makes
    the socket buffers fill up, the writer block, and the outbox grow.
    """
    session.push_event(frames)
    for _ in range(20):
        if session.pending_bytes == 0:
            return
        await asyncio.sleep(0)  # a yield to the loop, not a timed wait


async def test_slow_reader_is_closed_with_1013() -> None:
    async with run_server(max_pending_bytes=PENDING_CAP) as srv, client(srv, max_queue=1) as ws:
        await hello(ws)
        await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"})
        session = srv.session_of("alice")
        frames = {fmt: encode_frame(ANNOUNCEMENT, fmt) for fmt in Format}
        # The client now stops reading while the server pushes events at it.
        pushed = 0
        deadline = time.monotonic() + TIMEOUT
        while not session.closing:
            assert time.monotonic() < deadline, "the outbox never filled up"
            await push_paced(session, frames)
            pushed += 1
        # The socket took far more than the cap before the outbox filled: the close came
        # from the client not reading, not from pushing faster than the writer sends.
        assert pushed * len(frames[Format.JSON]) > 4 * PENDING_CAP
        assert session.pending_bytes <= PENDING_CAP
        assert not session.push_event(frames)  # further pushes are dropped
        # Reading again drains what was sent before the close frame, then the close.
        received = 0
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(TIMEOUT):
                async for _ in ws:
                    received += 1
        assert ws.close_code == 1013
        assert 0 < received < pushed
    metrics = srv.metrics.render()[0].decode()
    dropped = next(line for line in metrics.splitlines() if line.startswith("events_dropped_total"))
    assert float(dropped.split()[1]) >= 2


async def test_a_reading_client_is_not_closed_at_the_same_pace() -> None:
    async with run_server(max_pending_bytes=PENDING_CAP) as srv, client(srv, max_queue=1) as ws:
        await hello(ws)
        await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"})
        session = srv.session_of("alice")
        frames = {fmt: encode_frame(ANNOUNCEMENT, fmt) for fmt in Format}
        count = 300  # about 2.4 MB, far more than the cap and than a socket's buffers

        async def read_all() -> None:
            for _ in range(count):
                await ws.recv()

        reader = asyncio.create_task(read_all())
        for _ in range(count):
            await push_paced(session, frames)
            assert not session.closing
        await until(reader)


async def test_close_all_closes_sessions_with_1001() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        await until(srv.gateway.close_all())
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1001
        await eventually(lambda: not srv.gateway.sessions, "sessions to be released")


async def test_connections_gauge_and_session_closed() -> None:
    async with run_server() as srv:
        async with client(srv) as ws:
            await hello(ws)
            assert b"connections 1.0" in srv.metrics.render()[0]
        await eventually(lambda: len(srv.service.closed) == 1, "session_closed")
        await eventually(lambda: b"connections 0.0" in srv.metrics.render()[0], "gauge at 0")
