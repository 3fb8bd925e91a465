"""Overload protection against a real server process (issue 9, defect 8): one user's
connections are capped, and requests past the in-flight limits answer ``unavailable`` with
``retry_after`` at once, while what was admitted is served and nothing is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgpack
import websockets

from tests.e2e.harness import (
    Client,
    ServerProcess,
    admin_and_player,
    start_server,
    token,
    write_config,
)
from tests.timeouts import TIMEOUT


def _server_with(tmp_path: Path, **server_keys: object) -> ServerProcess:
    config = write_config(tmp_path)
    keys = "".join(f"{key} = {value}\n" for key, value in server_keys.items())
    config.write_text(config.read_text().replace("[server]\n", "[server]\n" + keys, 1))
    return start_server(tmp_path, config_path=config)


async def test_one_user_holds_at_most_the_cap_and_others_are_served(tmp_path: Path) -> None:
    server = _server_with(tmp_path, max_connections_per_user=3)
    clients: list[Client] = []
    try:
        for _ in range(3):
            client = await Client.connect(server)
            await client.hello("alice")
            clients.append(client)
        extra = await Client.connect(server)
        refused = await extra.request("hello", token=token("alice"))
        assert refused["code"] == "unavailable"
        assert "at most 3" in refused["message"]
        await asyncio.wait_for(extra.connection.wait_closed(), TIMEOUT)
        assert extra.connection.close_code == 1008
        _, _, metrics = server.http_get("/metrics")
        assert 'requests_shed_total{limit="max_connections_per_user"} 1.0' in metrics
        bob = await Client.connect(server)
        assert (await bob.hello("bob"))["user_id"] == "bob"  # other users are not affected
        await clients.pop().close()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:  # the server counts the close once it has seen it
            again = await Client.connect(server)
            reply = await again.request("hello", token=token("alice"))
            if reply["op"] == "hello.ok":
                break
            await again.close()
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("a closed connection did not give its place back")
        await again.close()
        await bob.close()
    finally:
        for client in clients:
            await client.close()
        server.stop()


async def test_requests_past_the_raid_limit_are_shed_and_the_rest_is_served(
    tmp_path: Path,
) -> None:
    server = _server_with(tmp_path, max_in_flight_per_raid=1, overload_retry_after_s=0.5)
    try:
        admin, player = await admin_and_player(server, "alice", "r1", characters=40)
        # 40 strikes sent back to back: the first is admitted, and the others arrive while
        # it waits for its journal commit.
        connection = await websockets.connect(server.ws_url, max_size=None)
        await connection.send(msgpack.packb({"op": "hello", "rid": 0, "token": token("alice")}))
        assert msgpack.unpackb(await connection.recv())["op"] == "hello.ok"
        for n in range(40):
            strike = {"op": "strike", "rid": n + 1, "raid_id": "r1", "action": "fight"}
            await connection.send(
                msgpack.packb({**strike, "team": [f"alice-c{n}"], "strike_id": f"s{n}"})
            )
        replies = [msgpack.unpackb(await connection.recv()) for _ in range(40)]
        await connection.close()
        shed = [r for r in replies if r["op"] == "error"]
        served = [r for r in replies if r["op"] == "strike.ok"]
        assert shed and served
        assert all(r["code"] == "unavailable" and r["retry_after"] == 0.5 for r in shed), shed
        _, _, metrics = server.http_get("/metrics")
        assert f'requests_shed_total{{limit="max_in_flight_per_raid"}} {len(shed)}.0' in metrics
        hub = await player.ok("raid.hub", raid_id="r1")
        assert hub["raid"]["strike_count"] == len(served)
        assert hub["raid"]["current_hp"] == 1000 - sum(r["damage"] for r in served)
        # Once the burst is answered, a strike is admitted again.
        shed_id = shed[0]["rid"] - 1
        again = await player.ok(
            "strike", raid_id="r1", action="fight", team=[f"alice-c{shed_id}"], strike_id="x"
        )
        assert again["strike_count"] == len(served) + 1
        await admin.close()
        await player.close()
    finally:
        server.stop()
