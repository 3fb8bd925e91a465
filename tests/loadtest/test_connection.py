"""LeanConnection against real websockets servers: handshake, messages, pings, closes."""

from __future__ import annotations

import asyncio
import http
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.http11 import Request, Response

from raidclient.loadtest.connection import LeanConnection, open_connection
from raidclient.loadtest.frames import MaskSource
from tests.timeouts import TIMEOUT

Handler = Callable[[ServerConnection], Awaitable[None]]


class Received:
    """A LeanConnection's messages and losses, awaitable."""

    def __init__(self, conn: LeanConnection) -> None:
        self.messages: asyncio.Queue[tuple[bytes, bool]] = asyncio.Queue()
        self.lost = asyncio.Event()
        conn.set_handlers(lambda p, t: self.messages.put_nowait((p, t)), self.lost.set)

    async def next(self) -> tuple[bytes, bool]:
        async with asyncio.timeout(TIMEOUT):
            return await self.messages.get()


async def serve(handler: Handler, **options: object) -> AsyncIterator[str]:
    async with websockets.serve(handler, "127.0.0.1", 0, **options) as server:  # type: ignore[arg-type]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            if message == "fragment":
                await ws.send(["frag", "mented"])
            elif message == b"ping":
                await asyncio.wait_for(await ws.ping(b"are you there"), TIMEOUT)
                await ws.send(b"pong received")
            elif message == b"bye":
                await ws.close(4000, "done")
            else:
                await ws.send(message)

    async for url in serve(echo):
        yield url


async def test_messages_both_ways_text_and_binary(echo_url: str) -> None:
    conn = await open_connection(echo_url, MaskSource(), TIMEOUT)
    got = Received(conn)
    big = bytes(range(256)) * 400
    assert conn.send(b"\x00\x01")
    assert conn.send(big)
    assert conn.send("héllo".encode(), is_text=True)
    assert await got.next() == (b"\x00\x01", False)
    assert await got.next() == (big, False)
    assert await got.next() == ("héllo".encode(), True)
    await conn.close()
    assert not conn.send(b"after close")
    assert not got.lost.is_set()  # a close of our own is not a loss


async def test_fragmented_message_arrives_whole(echo_url: str) -> None:
    conn = await open_connection(echo_url, MaskSource(), TIMEOUT)
    got = Received(conn)
    conn.send(b"fragment", is_text=True)
    assert await got.next() == (b"fragmented", True)
    await conn.close()


async def test_pings_are_answered(echo_url: str) -> None:
    conn = await open_connection(echo_url, MaskSource(), TIMEOUT)
    got = Received(conn)
    conn.send(b"ping")
    assert await got.next() == (b"pong received", False)  # the server got its pong
    await conn.close()


async def test_a_close_from_the_server_is_answered_and_reported(echo_url: str) -> None:
    conn = await open_connection(echo_url, MaskSource(), TIMEOUT)
    got = Received(conn)
    conn.send(b"bye")
    async with asyncio.timeout(TIMEOUT):
        await got.lost.wait()
    assert not conn.open


async def test_the_server_sees_a_clean_close() -> None:
    seen: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def wait_for_close(ws: ServerConnection) -> None:
        try:
            await ws.recv()
        except ConnectionClosed as exc:
            seen.set_result(exc.rcvd.code if exc.rcvd else None)

    async for url in serve(wait_for_close):
        conn = await open_connection(url, MaskSource(), TIMEOUT)
        await conn.close()
        async with asyncio.timeout(TIMEOUT):
            assert await seen == 1000


async def test_a_refused_upgrade_raises_invalid_handshake() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(http.HTTPStatus.NOT_FOUND, "no such path\n")

    async def never(ws: ServerConnection) -> None:
        raise AssertionError("not reached")

    async for url in serve(never, process_request=refuse):
        with pytest.raises(InvalidHandshake, match="404"):
            await open_connection(url, MaskSource(), TIMEOUT)


async def test_nothing_listening_raises_oserror_and_bad_urls_valueerror() -> None:
    with pytest.raises(OSError):
        await open_connection("ws://127.0.0.1:1/ws", MaskSource(), TIMEOUT)
    with pytest.raises(ValueError, match="not a WebSocket URL"):
        await open_connection("http://127.0.0.1/ws", MaskSource(), TIMEOUT)
