"""A real server process on a free port, and real websocket clients speaking the protocol."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import ClientConnection

from server.tokens import issue_token
from tests.timeouts import TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-0123456789"

# Every test client comes from 127.0.0.1: the per-address connection limit is off here
# (tests/server_units/test_connection_limits.py and the abuse soak test it).
TEST_CONFIG = """
[server]
messages_per_s = 2000
message_burst = 2000
connections_per_address_per_s = 0
ping_interval_s = 5
ping_timeout_s = 5

[persistence]
snapshot_interval_s = 3600

[player]
strike_cooldown_s = 0
character_rest = "event"

[raid]
retaliation_every = 3
hp_events_per_s = 10

[bosses.dummy]
name = "Training Dummy"
total_hp = 1000
duration_s = 86400
dominant_stats = ["power"]
weaknesses = []
resistances = ["water"]
weakness_pool = ["fire", "wind"]
curse_pool = ["iron_hide", "dread_aura", "veil"]
analysis_thresholds = [10, 20]
analysis_reward_pool = [{ gems = 1 }, { gems = 2 }]
victory_cache = { gems = 100 }
"""


@dataclass
class ServerProcess:
    """A running ``run_server.py serve`` and how to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    db_path: Path
    config_path: Path
    log_path: Path
    out_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def http_get(self, path: str) -> tuple[int, str, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                body = response.read().decode()
                return response.status, response.headers.get("Content-Type", ""), body
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read().decode()

    def log_lines(self) -> list[dict[str, Any]]:
        return log_lines(self.log_path)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (SIGTERM: graceful) and return its exit code."""
        return stop_process(self.process, sig, TIMEOUT * 3)


def log_lines(path: Path) -> list[dict[str, Any]]:
    """A JSON-lines log, parsed; a line that is not JSON becomes ``{"msg": line}``."""
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            lines.append({"msg": raw})
    return lines


def stop_process(process: subprocess.Popen[bytes], sig: int, grace_s: float) -> int:
    """Send ``sig``, wait up to ``grace_s``, then kill; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=TIMEOUT)
    return process.returncode


def write_config(
    directory: Path,
    extra: str = "",
    cooldown_s: int = 0,
    snapshot_interval_s: float = 3600,
    messages_per_s: int = 2000,
) -> Path:
    path = directory / "config.toml"
    text = TEST_CONFIG.replace("strike_cooldown_s = 0", f"strike_cooldown_s = {cooldown_s}")
    text = text.replace("messages_per_s = 2000", f"messages_per_s = {messages_per_s}")
    text = text.replace("message_burst = 2000", f"message_burst = {messages_per_s}")
    text = text.replace(
        "snapshot_interval_s = 3600", f"snapshot_interval_s = {snapshot_interval_s}"
    )
    path.write_text(text + extra, encoding="utf-8")
    return path


def start_server(
    directory: Path,
    *,
    config_path: Path | None = None,
    db_path: Path | None = None,
    demo: bool = False,
    port: int = 0,
) -> ServerProcess:
    """Start a server (on a free port unless ``port``) and wait until /healthz answers 200."""
    config_path = config_path or write_config(directory)
    db_path = db_path or directory / "raid.db"
    stamp = time.monotonic_ns()
    log_path = directory / f"server-{stamp}.log"
    out_path = directory / f"server-{stamp}.out"
    env = {**os.environ, "RAID_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        str(ROOT / "run_server.py"),
        "serve",
        "--config",
        str(config_path),
        "--db",
        str(db_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if demo:
        command.append("--demo")
    with log_path.open("wb") as log_file, out_path.open("wb") as out_file:
        process = subprocess.Popen(
            command, stdout=out_file, stderr=log_file, cwd=directory, env=env
        )
    handle = ServerProcess(process, 0, db_path, config_path, log_path, out_path)
    deadline = time.monotonic() + TIMEOUT * 3
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        for line in handle.log_lines():
            if line.get("msg") == "listening":
                handle.port = int(line["port"])
                break
        if handle.port:
            status, _, _ = handle.http_get("/healthz")
            if status == 200:
                return handle
        time.sleep(0.02)
    handle.stop(signal.SIGKILL)
    raise RuntimeError(f"server did not become ready: {log_path.read_text()}")


def token(user_id: str, role: str = "player", ttl: float = 3600) -> str:
    return issue_token(SECRET, user_id, role, ttl, time.time())


@dataclass
class Client:
    """A protocol client over a real websocket: requests by rid, events in a queue."""

    connection: ClientConnection
    binary: bool = True
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _rids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _waiting: dict[Any, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None
    replies: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def connect(cls, server: ServerProcess, *, binary: bool = True) -> Client:
        connection = await websockets.connect(server.ws_url, max_size=None)
        client = cls(connection, binary)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            async for data in self.connection:
                msg = msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)
                if msg.get("op") == "event":
                    self.events.put_nowait(msg)
                    continue
                self.replies.append(msg)
                future = self._waiting.pop(msg.get("rid"), None)
                if future is not None and not future.done():
                    future.set_result(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    async def send_raw(self, data: bytes | str) -> None:
        await self.connection.send(data)

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        rid = next(self._rids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        message = {"op": op, "rid": rid, **fields}
        try:
            await self.connection.send(
                msgpack.packb(message) if self.binary else json.dumps(message)
            )
        except websockets.ConnectionClosed as closed:
            self._waiting.pop(rid, None)
            raise ConnectionError("connection closed") from closed
        return await asyncio.wait_for(future, TIMEOUT)

    async def ok(self, op: str, **fields: Any) -> dict[str, Any]:
        """A request that must succeed."""
        reply = await self.request(op, **fields)
        assert reply["op"] == f"{op}.ok", reply
        return reply

    async def hello(self, user_id: str, role: str = "player") -> dict[str, Any]:
        return await self.ok("hello", token=token(user_id, role))

    async def next_event(self, predicate: Mapping[str, Any] | None = None) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.events.get(), TIMEOUT)
            if predicate is None or all(event.get(k) == v for k, v in predicate.items()):
                return event

    async def close(self) -> None:
        await self.connection.close()
        if self._reader is not None:
            await self._reader


async def admin_and_player(
    server: ServerProcess, user_id: str, raid_id: str, characters: int = 6
) -> tuple[Client, Client]:
    """An operator and a player (``characters`` characters) logged in, and a new dummy raid."""
    admin = await Client.connect(server)
    await admin.hello("ops", "admin")
    await admin.ok(
        "admin.roster.grant",
        user_id=user_id,
        characters=[character(user_id, n) for n in range(characters)],
    )
    await admin.ok("admin.raid.create", boss="dummy", raid_id=raid_id)
    player = await Client.connect(server)
    await player.hello(user_id)
    return admin, player


def character(
    user_id: str, index: int, power: int = 100, tags: tuple[str, ...] = ("fire", "striker")
) -> dict[str, Any]:
    """A character for ``admin.roster.grant``; ids are unique across the server."""
    return {
        "character_id": f"{user_id}-c{index}",
        "name": f"Hero {index}",
        "rarity": 3,
        "stats": {"power": power},
        "tags": list(tags),
    }
