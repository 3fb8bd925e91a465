"""Per-address connection limits, backpressure and reply-sized rate limits, on a real gateway
(issue 9, abuse: connection storms, slow readers, large replies)."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.address_gate import AddressGate, address_key, too_many_requests
from server.frames import Format, encode_frame
from tests.server_units.support import (
    TIMEOUT,
    Running,
    call,
    client,
    eventually,
    hello,
    recv,
    run_server,
)

OTHER_ADDRESS = ("127.0.0.2", 0)  # Linux routes all of 127/8 to loopback


def shed(srv: Running, limit: str) -> float:
    text = srv.metrics.render()[0].decode()
    line = next(
        line
        for line in text.splitlines()
        if line.startswith(f'requests_shed_total{{limit="{limit}"}}')
    )
    return float(line.split()[1])


# -- the gate itself (pure) ----------------------------------------------------------------


def test_each_address_has_its_own_bucket() -> None:
    now = [0.0]
    gate = AddressGate(2.0, 3, 100, clock=lambda: now[0])
    assert [gate.admit(("10.0.0.1", 5)) for _ in range(3)] == [None, None, None]
    wait = gate.admit(("10.0.0.1", 6))
    assert wait is not None and 0 < wait <= 0.5
    assert gate.admit(("10.0.0.2", 5)) is None  # another address is not affected
    now[0] = 0.5  # one token back at 2 per second
    assert gate.admit(("10.0.0.1", 7)) is None
    assert gate.admit(("10.0.0.1", 7)) is not None
    assert gate.refused == 2


def test_ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() -> None:
    assert address_key(("2001:db8:1:2::1", 1, 0, 0)) == address_key(("2001:db8:1:2:ffff::9", 1))
    assert address_key(("2001:db8:1:3::1", 1, 0, 0)) != address_key(("2001:db8:1:2::1", 1))
    assert address_key(("::ffff:10.0.0.1", 1, 0, 0)) == "10.0.0.1"
    assert address_key("/tmp/socket") is None and address_key(None) is None
    gate = AddressGate(1.0, 1, 100, clock=lambda: 0.0)
    assert gate.admit(("2001:db8:1:2::1", 1, 0, 0)) is None
    assert gate.admit(("2001:db8:1:2::2", 1, 0, 0)) is not None
    assert gate.admit(None) is None  # no address to count (a Unix socket): admitted


def test_the_address_table_is_bounded() -> None:
    gate = AddressGate(1.0, 1, 50, clock=lambda: 0.0)
    for n in range(500):
        gate.admit((f"10.0.{n // 250}.{n % 250}", 1))
    assert len(gate) == 50


def test_rate_zero_means_no_limit() -> None:
    gate = AddressGate(0.0, 1, 10)
    assert all(gate.admit(("10.0.0.1", 1)) is None for _ in range(100))
    assert len(gate) == 0


def test_the_refusal_is_a_complete_http_response() -> None:
    head, _, body = too_many_requests(0.2).partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 429 Too Many Requests"
    assert "Retry-After: 1" in lines
    assert f"Content-Length: {len(body)}" in lines


# -- on a real gateway -------------------------------------------------------------------------


async def test_connections_past_the_address_burst_get_429_before_any_handshake() -> None:
    async with (
        run_server(connection_burst_per_address=2, connections_per_address_per_s=0.01) as srv,
        client(srv) as first,
        client(srv) as second,
    ):
        await hello(first)
        await hello(second, "bob")
        with pytest.raises(InvalidStatus) as refused:
            async with client(srv):
                pass
        response = refused.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert b"too many new connections" in response.body
        # Another address has its own bucket.
        async with connect(srv.url, local_addr=OTHER_ADDRESS) as other:
            await hello(other, "carol")
        assert shed(srv, "connections_per_address") == 1
        # The refused connection cost no session: the first two still work.
        assert (await call(first, {"op": "ping", "rid": 9}))["op"] == "ping.ok"
        assert len(srv.gateway.sessions) == 2  # carol left; the refused one never had one


async def test_a_silent_client_that_takes_no_output_is_closed_with_1013() -> None:
    """It sends nothing and reads nothing: no frame comes in to notice it, and the keepalive
    ping waits behind the output it does not read. The stall watch closes it."""
    async with run_server(ping_interval_s=60, ping_timeout_s=0.3) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        async with connect(srv.url, sock=sock, max_queue=1) as ws:
            await hello(ws)
            await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"})
            session = srv.session_of("alice")
            event = {"op": "event", "type": "announcement", "raid_id": "r1", "text": "x" * 8192}
            frames = {fmt: encode_frame(event, fmt) for fmt in Format}
            deadline = time.monotonic() + TIMEOUT
            while not session.backed_up:  # the client stopped reading: fill its socket
                assert time.monotonic() < deadline, "the socket never filled up"
                session.push_event(frames)
                await asyncio.sleep(0)
            await eventually(lambda: session.closing, "closed for not reading")
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(TIMEOUT):
                    async for _ in ws:
                        pass
            assert ws.close_code == 1013


async def test_a_reading_client_is_not_cut_by_the_stall_watch() -> None:
    async with run_server(ping_interval_s=60, ping_timeout_s=0.2) as srv, client(srv) as ws:
        await hello(ws)
        await call(ws, {"op": "raid.subscribe", "rid": 1, "raid_id": "r1"})
        session = srv.session_of("alice")
        event = {"op": "event", "type": "announcement", "raid_id": "r1", "text": "x" * 8192}
        frames = {fmt: encode_frame(event, fmt) for fmt in Format}
        count = 400  # several MB: the socket fills up now and then, the client reads on

        async def read_all() -> None:
            for _ in range(count):
                await ws.recv()
                await asyncio.sleep(0.001)  # a slow reader, but a reader

        reader = asyncio.create_task(read_all())
        backed_up = 0
        async with asyncio.timeout(TIMEOUT * 3):
            for _ in range(count):
                session.push_event(frames)
                await asyncio.sleep(0)
                if session.backed_up:  # the stall watch is armed: the reader must keep it off
                    backed_up += 1
                    await session.until_drained()
            await reader
        assert backed_up > 0, "the socket never filled: the watch was not exercised"
        assert not session.closing


async def test_a_large_reply_costs_the_rate_limit_by_its_size() -> None:
    async with (
        run_server(messages_per_s=1, message_burst=12, reply_bytes_per_message=1024) as srv,
        client(srv) as ws,
    ):
        await hello(ws)  # one token
        big = await call(ws, {"op": "team.options", "rid": 1, "raid_id": "big"})  # 1 + ~8
        assert big["op"] == "team.options.ok"
        replies = []
        for rid in range(2, 6):
            replies.append(await call(ws, {"op": "ping", "rid": rid}))
        ops = [r["op"] if r["op"] != "error" else r["code"] for r in replies]
        assert "rate_limited" in ops, ops  # small replies alone would allow 10 more pings


async def test_a_connection_runs_at_most_max_tasks_requests_and_reads_no_further() -> None:
    async with run_server(max_tasks_per_connection=1) as srv, client(srv) as ws:
        await hello(ws)
        await ws.send(json.dumps({"op": "raid.hub", "rid": 1, "raid_id": "slow"}))
        await ws.send(json.dumps({"op": "ping", "rid": 2}))
        with pytest.raises(TimeoutError):  # the ping waits unread behind the slow hub
            async with asyncio.timeout(0.3):
                await recv(ws)
        srv.service.release_slow_hub.set()
        replies = {(await recv(ws))["rid"] for _ in range(2)}
        assert replies == {1, 2}


async def test_client_connections_get_the_configured_send_buffer() -> None:
    async with run_server(socket_send_buffer=65536) as srv, client(srv) as ws:
        await hello(ws)
        session = srv.session_of("alice")
        sock = session.connection.transport.get_extra_info("socket")
        # Linux doubles the value asked for (bookkeeping); autotuning would be far larger.
        assert 65536 <= sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * 65536
