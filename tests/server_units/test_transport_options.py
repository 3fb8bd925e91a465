"""Transport options: permessage-deflate off by default, and silent peers are dropped."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest

from tests.server_units.support import TIMEOUT, call, client, hello, recv, run_server


async def test_compression_is_off_by_default_and_can_be_enabled() -> None:
    async with run_server() as running, client(running, compression="deflate") as ws:
        assert ws.protocol.extensions == []
    async with (
        run_server(compression=True) as running,
        client(running, compression="deflate") as ws,
    ):
        assert [type(e).__name__ for e in ws.protocol.extensions] == ["PerMessageDeflate"]


async def test_a_silent_peer_is_dropped_after_ping_interval_plus_timeout() -> None:
    async with run_server(ping_interval_s=0.2, ping_timeout_s=0.2) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{running.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert b"101" in status
        began = time.monotonic()
        # Never answer the server's pings: read (and ignore) until the server hangs up.
        while await asyncio.wait_for(reader.read(4096), TIMEOUT):
            pass
        elapsed = time.monotonic() - began
        assert 0.2 <= elapsed < TIMEOUT
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("compression", [False, True])
@pytest.mark.parametrize("binary", [False, True])
async def test_events_reach_plain_and_compressed_sessions_intact(
    compression: bool, binary: bool
) -> None:
    """Uncompressed sessions get the fan-out's shared pre-built frames, compressed ones their
    own: both decode to the same events, in order, after the subscribe reply."""
    async with (
        run_server(compression=compression) as running,
        client(running, compression="deflate") as ws,
    ):
        await hello(ws)
        reply = await call(ws, {"op": "raid.subscribe", "rid": 3, "raid_id": "r"}, binary)
        assert reply["op"] == "raid.subscribe.ok"
        big = "x" * 70_000  # a 64-bit length field
        events = [{"op": "event", "type": "t", "seq": n, "text": big[: 10**n]} for n in range(6)]
        session = running.session_of("alice")
        assert running.service.sink is not None
        running.service.sink.deliver([session.session_id], events[:3])
        running.service.sink.deliver([session.session_id], events[3:])
        assert [await recv(ws) for _ in events] == events
        assert bool(ws.protocol.extensions) is compression
