"""Helpers for the gateway tests: a real server on a free port and real clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server

from actors.api import EventSink, StrikeDone, settle
from actors.raids import CharacterGrant
from raid.config import Action
from raid.errors import ErrorCode, Rejection, Unavailable
from server.gateway import Gateway, GatewayConfig, RaidServiceProtocol, serve
from server.http import make_http_handler
from server.metrics import Metrics
from server.requests import Rid
from server.session import Session
from server.tokens import issue_token

TIMEOUT = 5.0 * float(os.environ.get("RAID_TEST_TIMEOUT_SCALE", "1"))
"""The unit every wait in these tests is bounded by; scale it on slow machines."""

SECRET = "test-secret"
INDEX_HTML = b"<!doctype html><title>test client</title>"


def token(user_id: str = "alice", role: str = "player", ttl_s: float = 3600.0) -> str:
    return issue_token(SECRET, user_id, role, ttl_s, time.time())


class TinyService:
    """A minimal stand-in for the lead's RaidService, with a few scripted behaviours."""

    def __init__(self) -> None:
        self.release_slow_strike = asyncio.Event()  # a strike with strike_id "slow" waits on it
        self.release_slow_hub = asyncio.Event()  # raid.hub of raid "slow" waits on it
        self._tasks: set[asyncio.Task[None]] = set()  # strikes answered through callbacks
        self.subscribed: list[str] = []  # subscriber ids, in subscription order
        self.closed: list[str] = []  # subscribers reported gone, in order
        self.sink: EventSink | None = None  # the gateway's fan-out

    def attach(self, sink: EventSink) -> None:
        self.sink = sink

    async def hello(self, user_id: str, role: str) -> dict[str, Any]:
        if user_id == "down":
            raise Unavailable("the service is restarting")
        return {"raids": [{"raid_id": "r1", "name": "Leviathan", "status": "active"}]}

    async def hub(self, user_id: str, raid_id: str) -> dict[str, Any]:
        if raid_id == "slow":
            await self.release_slow_hub.wait()
            return {"raid": {"raid_id": raid_id}, "me": {"user_id": user_id}}
        if raid_id != "r1":
            raise Rejection(ErrorCode.UNKNOWN_RAID, f"no raid {raid_id}")
        return {"raid": {"raid_id": raid_id}, "me": {"user_id": user_id}}

    async def subscribe(
        self, subscriber_id: str, raid_id: str, since_seq: int | None, rid: Rid
    ) -> None:
        self.subscribed.append(subscriber_id)
        assert self.sink is not None
        self.sink.subscribed(subscriber_id, {"rid": rid, "seq": 0}, [])

    async def unsubscribe(self, subscriber_id: str, raid_id: str) -> None:
        return None

    def subscriber_gone(self, subscriber_id: str) -> None:
        self.closed.append(subscriber_id)

    async def team_options(self, user_id: str, raid_id: str) -> dict[str, Any]:
        if raid_id == "big":  # a reply of about BIG_REPLY_BYTES
            return {"max_team_size": 6, "characters": [{"name": "x" * 1000}] * 8}
        return {"max_team_size": 6, "characters": []}

    async def strike(
        self, user_id: str, raid_id: str, action: Action, team: Sequence[str], strike_id: str
    ) -> dict[str, Any]:
        if strike_id == "slow":
            await self.release_slow_strike.wait()
        if strike_id == "boom":
            raise RuntimeError("database password is hunter2")
        if strike_id == "cooldown":
            raise Rejection(ErrorCode.ON_COOLDOWN, "on cooldown", retry_after=12.5)
        return {"strike_id": strike_id, "action": action.value, "team": list(team)}

    def strike_nowait(
        self,
        user_id: str,
        raid_id: str,
        action: Action,
        team: Sequence[str],
        strike_id: str,
        done: StrikeDone,
    ) -> None:
        if strike_id == "sync-boom":  # a bug that raises before any callback
            raise RuntimeError("raised by strike_nowait itself")
        task = asyncio.ensure_future(
            settle(self.strike(user_id, raid_id, action, team, strike_id), done)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def rewards_list(self, user_id: str, raid_id: str) -> dict[str, Any]:
        return {"claimable": [], "claimed": []}

    async def rewards_claim(self, user_id: str, raid_id: str, key: str) -> dict[str, Any]:
        return {"key": key, "bundle": {"gems": 1}}

    async def create_raid(
        self,
        boss: str,
        start: float | None = None,
        end: float | None = None,
        raid_id: str | None = None,
    ) -> str:
        return raid_id or f"{boss}-1"

    async def end_raid_status(self, raid_id: str) -> str:
        return "ended"

    async def restore_to_snapshot(self, raid_id: str, snapshot_id: int) -> dict[str, Any]:
        return {"snapshot_id": snapshot_id, "seq": 0}

    async def grant_roster(self, user_id: str, grants: list[CharacterGrant]) -> list[str]:
        return [g.character_id or "new" for g in grants]

    async def take_snapshot(self, raid_id: str) -> dict[str, Any]:
        return {"snapshot_id": 1, "seq": 0}

    async def rewards_pending(self, limit: int) -> list[dict[str, Any]]:
        return []

    async def rewards_ack(self, ids: Sequence[int]) -> int:
        return len(ids)


@dataclass
class Running:
    server: Server
    gateway: Gateway
    service: TinyService
    metrics: Metrics
    port: int
    ready: list[bool] = field(default_factory=lambda: [True])  # flip ready[0] for /healthz

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def session_of(self, user_id: str) -> Session:
        """The open session of that user (the gateway's own object)."""
        return next(s for s in self.gateway.sessions if s.user_id == user_id)


@contextlib.asynccontextmanager
async def run_server(**overrides: Any) -> AsyncIterator[Running]:
    """A real gateway on 127.0.0.1 and a free port; ``overrides`` change GatewayConfig."""
    config = replace(GatewayConfig(secret=SECRET), **overrides)
    metrics = Metrics()
    service = TinyService()
    checked: RaidServiceProtocol = service  # mypy proves TinyService fits the protocol
    gateway = Gateway(checked, config, metrics)
    ready = [True]
    handler = make_http_handler(lambda: ready[0], INDEX_HTML, metrics.render)
    server = await serve(gateway, "127.0.0.1", 0, handler)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Running(server, gateway, service, metrics, port, ready)
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def client(running: Running, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    options: dict[str, Any] = {"proxy": None, "compression": None, "open_timeout": TIMEOUT}
    async with connect(running.url, **(options | kwargs)) as ws:
        yield ws


def encode(msg: dict[str, Any], binary: bool) -> bytes | str:
    packed: bytes | str = msgpack.packb(msg) if binary else json.dumps(msg)
    return packed


def decode(data: bytes | str) -> dict[str, Any]:
    value = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)
    assert isinstance(value, dict)
    return value


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        return decode(await ws.recv())


async def call(ws: ClientConnection, msg: dict[str, Any], binary: bool = False) -> dict[str, Any]:
    """Send one request and return the next message received."""
    await ws.send(encode(msg, binary))
    return await recv(ws)


async def hello(ws: ClientConnection, user_id: str = "alice", role: str = "player") -> None:
    reply = await call(ws, {"op": "hello", "rid": 0, "token": token(user_id, role)})
    assert reply["op"] == "hello.ok", reply


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` on every loop iteration until it holds, within TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)  # a yield to the loop, not a timed wait


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP/1.1 GET: (status, lower-cased headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            raw = await reader.read()  # the server closes the connection after its answer
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


async def until(awaitable: Awaitable[Any]) -> Any:
    async with asyncio.timeout(TIMEOUT):
        return await awaitable
