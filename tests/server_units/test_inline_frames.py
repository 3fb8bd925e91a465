"""Frames taken as they are parsed (server/inline_frames.py), and the gateway's use of it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgpack
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from server.inline_frames import GatewayConnection
from tests.server_units.support import TIMEOUT, client, encode, hello, recv, run_server


class Recorder:
    """A connection handler that records what reaches it; the inline handler takes binary
    frames starting with b"take" (and records them), declines the rest."""

    def __init__(self) -> None:
        self.inline: list[bytes] = []
        self.handled: list[bytes | str] = []
        self.busy = asyncio.Event()  # set: the handler holds the next frame until released
        self.release = asyncio.Event()
        self.connection: GatewayConnection | None = None

    def take(self, data: bytes) -> bool:
        if data.startswith(b"take"):
            self.inline.append(data)
            return True
        return False

    async def handler(self, connection: ServerConnection) -> None:
        assert isinstance(connection, GatewayConnection)
        self.connection = connection
        connection.inline = self.take
        async for data in connection:
            self.handled.append(data)
            if self.busy.is_set():
                self.busy.clear()
                await self.release.wait()


@asynccontextmanager
async def recorded() -> AsyncIterator[tuple[Recorder, ClientConnection]]:
    recorder = Recorder()
    async with (
        serve(recorder.handler, "127.0.0.1", 0, create_connection=GatewayConnection) as server,
    ):
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            yield recorder, ws


async def until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(TIMEOUT):
            while not check():
                await asyncio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def send_when_idle(
    recorder: Recorder, ws: ClientConnection, data: bytes | str | list[bytes]
) -> None:
    """Send once the handler waits for a frame (the frame before has been dealt with)."""

    def idle() -> bool:
        return recorder.connection is not None and recorder.connection.handler_idle()

    await until(idle, "an idle handler")
    seen = len(recorder.inline) + len(recorder.handled)
    await ws.send(data)
    await until(lambda: len(recorder.inline) + len(recorder.handled) > seen, "the frame")


async def test_an_idle_handlers_binary_frames_are_offered_inline_first() -> None:
    async with recorded() as (recorder, ws):
        await send_when_idle(recorder, ws, b"take-1")
        await send_when_idle(recorder, ws, b"keep-1")  # declined: the handler gets it
        await send_when_idle(recorder, ws, "take-as-text")  # text frames are never offered
        await send_when_idle(recorder, ws, b"take-2")
        assert recorder.inline == [b"take-1", b"take-2"]
        assert recorder.handled == [b"keep-1", "take-as-text"]


async def test_frames_behind_a_busy_handler_keep_their_order() -> None:
    """While the handler is not waiting for a frame, nothing is taken inline: a frame
    taken then would overtake the ones queued for the handler."""
    async with recorded() as (recorder, ws):
        recorder.busy.set()
        await send_when_idle(recorder, ws, b"keep-1")  # the handler holds on to this one
        await ws.send(b"take-1")
        await ws.send(b"take-2")
        connection = recorder.connection
        assert connection is not None
        await until(lambda: len(connection.recv_messages.frames.queue) == 2, "queued frames")
        assert recorder.inline == []  # they arrived with the handler busy: queued, not taken
        recorder.release.set()
        await until(lambda: len(recorder.handled) == 3, "the queued frames")
        assert recorder.handled == [b"keep-1", b"take-1", b"take-2"]
        await send_when_idle(recorder, ws, b"take-3")  # idle again: offered inline
        assert recorder.inline == [b"take-3"]


async def test_a_fragmented_message_reaches_the_handler_whole() -> None:
    async with recorded() as (recorder, ws):
        await send_when_idle(recorder, ws, [b"take", b"-in-", b"parts"])
        assert recorder.handled == [b"take-in-parts"]
        assert recorder.inline == []


def packed(msg: dict[str, object]) -> bytes:
    data: bytes = msgpack.packb(msg)
    return data


STRIKE = {"op": "strike", "raid_id": "r1", "action": "fight", "team": ["c1"]}


async def test_binary_strikes_of_a_gateway_connection_are_taken_inline() -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        connection = srv.session_of("alice").connection
        assert isinstance(connection, GatewayConnection) and connection.inline is not None
        for rid in range(20):
            await ws.send(packed({**STRIKE, "rid": rid, "strike_id": f"s{rid}"}))
        replies = [await recv(ws) for _ in range(20)]
        assert sorted(int(r["rid"]) for r in replies) == list(range(20))
        assert {r["op"] for r in replies} == {"strike.ok"}
        assert {r["strike_id"] for r in replies} == {f"s{rid}" for rid in range(20)}


async def test_what_the_inline_path_declines_gets_the_usual_answers() -> None:
    async with run_server() as srv, client(srv) as ws:
        await ws.send(packed({**STRIKE, "rid": 1, "strike_id": "early"}))  # before hello
        assert (await recv(ws))["code"] == "unauthenticated"
        await hello(ws)
        await ws.send(packed({**STRIKE, "rid": 2, "team": "c1", "strike_id": "x"}))
        bad = await recv(ws)
        assert (bad["code"], bad["rid"]) == ("bad_request", 2)
        assert "team" in bad["message"]
        await ws.send(b"\xc1")  # not MessagePack
        assert (await recv(ws))["code"] == "bad_request"
        await ws.send(packed({"op": "ping", "rid": 3}))  # not a strike: the handler's
        assert (await recv(ws))["op"] == "ping.ok"
        await ws.send(packed({**STRIKE, "rid": 4, "strike_id": "cooldown"}))
        refused = await recv(ws)
        assert (refused["code"], refused["rid"], refused["retry_after"]) == (
            "on_cooldown",
            4,
            12.5,
        )


async def test_a_flood_of_binary_strikes_is_read_at_the_rate_limit() -> None:
    """As for any frame: a rate_limited answer, then nothing read until a token is back,
    so never two rate_limited in a row, whichever path took the frames."""
    async with run_server(messages_per_s=100, message_burst=3) as srv, client(srv) as ws:
        await hello(ws)
        for rid in range(30):
            await ws.send(packed({**STRIKE, "rid": rid, "strike_id": f"f{rid}"}))
        replies = sorted([await recv(ws) for _ in range(30)], key=lambda r: int(r["rid"]))
        ops = [r["op"] if r["op"] != "error" else r["code"] for r in replies]
        assert "rate_limited" in ops and "strike.ok" in ops
        assert all(not (a == b == "rate_limited") for a, b in itertools.pairwise(ops)), ops


@pytest.mark.parametrize("binary", [True, False], ids=["inline", "handler"])
async def test_a_strike_that_raises_is_answered_internal_and_the_connection_lives_on(
    binary: bool,
) -> None:
    async with run_server() as srv, client(srv) as ws:
        await hello(ws)
        await ws.send(encode({**STRIKE, "rid": 1, "strike_id": "sync-boom"}, binary))
        failed = await recv(ws)
        assert (failed["op"], failed["code"], failed["rid"]) == ("error", "internal", 1)
        assert "raised by" not in failed["message"]  # no internals on the wire
        await ws.send(encode({"op": "ping", "rid": 2}, binary))
        assert (await recv(ws))["op"] == "ping.ok"
        assert 'strikes_total{code="internal"} 1.0' in srv.metrics.render()[0].decode()
