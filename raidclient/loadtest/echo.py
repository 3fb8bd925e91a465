"""A bare ``websockets`` + msgpack echo server: the ceiling a Python server can reach here.

It decodes each frame, answers ``<op>.ok`` with the same fields and the same ``rid``, and
does nothing else: no game, no durability. Run in its own process (one core share, like
the real server), driven by the same clients, it tells how much of the box the real
server's per-strike work costs (``ratio = server strikes/s / echo strikes/s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
from typing import Any

import msgpack
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

START_TIMEOUT_S = 30.0


async def _echo(connection: ServerConnection) -> None:
    try:
        async for data in connection:
            if isinstance(data, str):
                msg: dict[str, Any] = json.loads(data)
                msg["op"] = f"{msg.get('op')}.ok"
                await connection.send(json.dumps(msg, separators=(",", ":")))
            else:
                msg = msgpack.unpackb(data)
                msg["op"] = f"{msg.get('op')}.ok"
                await connection.send(msgpack.packb(msg))
    except ConnectionClosed:
        pass


async def _serve(report: multiprocessing.connection.Connection) -> None:
    async with websockets.serve(_echo, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        report.send(port)
        await asyncio.Future()  # until the process is terminated


def _main(report: multiprocessing.connection.Connection) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(report))


class EchoServer:
    """The echo server in a child process; ``url`` once started."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process: multiprocessing.process.BaseProcess = context.Process(
            target=_main, args=(send,), name="raid-loadtest-echo", daemon=True
        )
        self.url = ""

    def start(self) -> str:
        self._process.start()
        if not self._receive.poll(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("the echo server did not start")
        self.url = f"ws://127.0.0.1:{self._receive.recv()}/ws"
        return self.url

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
