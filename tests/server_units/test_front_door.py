"""The front door (server/front_door.py): accepting and refusing on its own thread, real
sockets on free ports, the door driven by a real event loop."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from server.address_gate import REFUSED_LINGER_S, AddressGate
from server.front_door import PAUSE_S, FrontDoor, listening_sockets
from tests.e2e.harness import ROOT
from tests.server_units.support import TIMEOUT, eventually

OTHER_ADDRESS = "127.0.0.3"


@asynccontextmanager
async def door(
    gate: AddressGate,
    *,
    lingering: int = 1024,
    linger_s: float = REFUSED_LINGER_S,
    in_transit: int = 1024,
) -> AsyncIterator[tuple[FrontDoor, list[socket.socket], int]]:
    """A door on a free loopback port whose admitted sockets are collected."""
    admitted: list[socket.socket] = []
    sockets = await listening_sockets("127.0.0.1", 0)
    front = FrontDoor(
        sockets,
        gate,
        asyncio.get_running_loop(),
        admitted.append,
        lingering=lingering,
        linger_s=linger_s,
        in_transit=in_transit,
    )
    front.start()
    try:
        yield front, admitted, sockets[0].getsockname()[1]
    finally:
        front.close()
        await asyncio.wait_for(front.wait_closed(), TIMEOUT)
        for sock in admitted:
            sock.close()


def connect_from(port: int, address: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((address, 0))
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_admitted_sockets_reach_the_loop_and_the_rest_read_a_429() -> None:
    async with door(AddressGate(0.001, 2, 100)) as (_, admitted, port):
        clients = [await asyncio.to_thread(connect_from, port) for _ in range(4)]
        await eventually(lambda: len(admitted) == 2, "two admitted (the burst)")
        for refused in clients[2:]:
            refused.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")  # read and dropped
            response = await asyncio.to_thread(read_all, refused)
            assert response.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), response
            assert b"\r\nRetry-After: " in response
        other = await asyncio.to_thread(connect_from, port, OTHER_ADDRESS)
        await eventually(lambda: len(admitted) == 3, "another address admitted")
        assert admitted[-1].getpeername()[0] == OTHER_ADDRESS
        for sock in [*clients, other]:
            sock.close()


async def test_a_refused_client_that_never_closes_is_closed_after_the_linger() -> None:
    async with door(AddressGate(0.001, 1, 100)) as (front, admitted, port):
        first = await asyncio.to_thread(connect_from, port)
        silent = await asyncio.to_thread(connect_from, port)
        started = time.monotonic()
        await eventually(lambda: front.lingering == 1, "the refused one lingers")
        response = await asyncio.to_thread(read_all, silent)  # EOF once the door closes it
        assert response.startswith(b"HTTP/1.1 429"), response
        await eventually(lambda: front.lingering == 0, "the linger ended")
        assert time.monotonic() - started >= REFUSED_LINGER_S * 0.9
        assert len(admitted) == 1
        first.close()
        silent.close()


async def test_refused_connections_kept_open_are_bounded() -> None:
    # A long linger: however slowly the ten connect, only the count bound can end one.
    async with door(AddressGate(0.001, 1, 100), lingering=3, linger_s=TIMEOUT * 10) as (
        front,
        _,
        port,
    ):
        clients = [await asyncio.to_thread(connect_from, port) for _ in range(10)]
        # The gate counts a refusal before the door's thread registers its socket: wait for
        # both (more than 3 lingering would never come down to 3 and time out).
        await eventually(
            lambda: front.gate.refused == 9 and front.lingering == 3, "nine refused, 3 kept"
        )
        for sock in clients:
            sock.close()


async def test_closing_stops_accepting_and_the_thread() -> None:
    sockets = await listening_sockets("127.0.0.1", 0)
    port = sockets[0].getsockname()[1]
    front = FrontDoor(sockets, AddressGate(0, 1, 10), asyncio.get_running_loop(), print)
    front.start()
    assert front.is_serving()
    front.close()
    front.close()  # idempotent
    await asyncio.wait_for(front.wait_closed(), TIMEOUT)
    assert not front.is_serving()
    assert not front._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(connect_from, port)


async def test_a_name_with_several_addresses_listens_on_one_port_for_all() -> None:
    sockets = await listening_sockets("localhost", 0)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1 and 0 not in ports
        families = {sock.family for sock in sockets}
        assert socket.AF_INET in families
    finally:
        for sock in sockets:
            sock.close()


async def test_out_of_file_descriptors_the_door_pauses_and_resumes_instead_of_spinning() -> None:
    """accept() failing with EMFILE leaves the connection queued and the listener readable:
    retried at once it would spin at full CPU and flood the log. The door stops accepting
    for PAUSE_S, as asyncio does, and takes the queued connections once descriptors are
    free again."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.server_units.door_process",
        "4",  # descriptors to spare: four admitted sockets, then EMFILE
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def ask(line: str) -> str:
        stdin.write(f"{line}\n".encode())
        await stdin.drain()
        return (await asyncio.wait_for(stdout.readline(), TIMEOUT)).decode().strip()

    clients: list[socket.socket] = []
    try:
        port = int(await asyncio.wait_for(stdout.readline(), TIMEOUT))
        started = time.monotonic()
        clients = [await asyncio.to_thread(connect_from, port) for _ in range(10)]
        deadline = time.monotonic() + TIMEOUT
        while int(await ask("count")) < 4:
            assert time.monotonic() < deadline, "the first four were never admitted"
            await asyncio.sleep(0.05)
        assert int(await ask("count")) == 4  # the rest wait in the kernel's queue
        assert await ask("release") == "released"
        deadline = time.monotonic() + TIMEOUT + PAUSE_S
        while int(await ask("count")) < 10:
            assert time.monotonic() < deadline, "the queued connections were never taken"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        admitted, pauses = map(int, (await ask("stop")).split())
        assert admitted == 10
        assert 1 <= pauses <= elapsed / PAUSE_S + 2, (pauses, elapsed)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        for sock in clients:
            sock.close()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_loop_that_falls_behind_is_handed_at_most_in_transit_sockets() -> None:
    """The door accepts on its own thread: without a bound, a loop too busy to take admitted
    sockets would have them pile up in its callbacks. Past the bound the door waits and the
    connections wait in the kernel's queue."""
    async with door(AddressGate(0, 1, 10), in_transit=3) as (front, admitted, port):
        clients: list[socket.socket] = []
        connecting = threading.Thread(
            target=lambda: clients.extend(connect_from(port) for _ in range(10))
        )
        connecting.start()
        # This test's event loop is the door's: while it is blocked here, nothing is taken.
        deadline = time.monotonic() + TIMEOUT
        while front.in_transit < 3:
            assert time.monotonic() < deadline, "nothing was accepted"
            time.sleep(0.01)
        connecting.join(TIMEOUT)
        assert len(clients) == 10  # connected: the kernel queues them
        time.sleep(0.2)  # time for the door to accept more, were it unbounded
        assert front.in_transit == 3 and admitted == []
        await eventually(lambda: len(admitted) == 10, "the rest once the loop took the first")
        for sock in clients:
            sock.close()
