"""Many clients at once, and stopping the server under load (through raidclient)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import raidclient
from tests.e2e.harness import Client, ServerProcess, character, start_server, token


async def _grant(admin: Client, users: list[str], per_user: int) -> None:
    for user in users:
        await admin.ok(
            "admin.roster.grant",
            user_id=user,
            characters=[character(user, n, power=10) for n in range(per_user)],
        )


async def _players(url: str, users: list[str], *, reconnect: bool) -> list[raidclient.RaidClient]:
    return list(
        await asyncio.gather(
            *(raidclient.connect(url, token(user), reconnect=reconnect) for user in users)
        )
    )


async def test_two_hundred_clients_striking(server: ServerProcess, admin: Client) -> None:
    users = [f"load{i:03d}" for i in range(200)]
    await _grant(admin, users, 2)
    raid = (await admin.ok("admin.raid.create", boss="dummy"))["raid_id"]
    clients = await _players(server.ws_url, users, reconnect=False)

    async def play(client: raidclient.RaidClient) -> list[int]:
        damage = []
        for n in range(2):
            report = await client.strike(raid, "fight", [f"{client.user_id}-c{n}"], f"{n}")
            damage.append(report.damage)
        return damage

    results = await asyncio.gather(*(play(c) for c in clients))
    acknowledged = [d for batch in results for d in batch]
    hub = await admin.ok("raid.hub", raid_id=raid)
    assert hub["raid"]["strike_count"] == len(acknowledged) == 400
    assert hub["raid"]["current_hp"] == hub["raid"]["total_hp"] - sum(acknowledged)
    await asyncio.gather(*(c.close() for c in clients))


async def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    admin = await Client.connect(server)
    await admin.hello("ops", "admin")
    users = [f"t{i:02d}" for i in range(20)]
    await _grant(admin, users, 30)
    raid = (await admin.ok("admin.raid.create", boss="dummy", raid_id="term"))["raid_id"]
    clients = await _players(server.ws_url, users, reconnect=False)
    acked: dict[str, int] = {}
    stopped = asyncio.Event()

    async def play(client: raidclient.RaidClient) -> None:
        user = client.user_id
        for n in range(30):
            try:
                report = await client.strike(raid, "analyze", [f"{user}-c{n}"], f"{n}")
            except (raidclient.ConnectionLost, raidclient.RequestTimeout):
                return
            except raidclient.ServerError:
                continue  # refused (the server is stopping): not acknowledged
            acked[f"{user}/{n}"] = report.analysis_points
            if n == 5 and user == "t00":
                stopped.set()

    async def stop_soon() -> None:
        await stopped.wait()
        server.process.send_signal(signal.SIGTERM)

    await asyncio.gather(stop_soon(), *(play(c) for c in clients))
    assert server.stop() == 0
    assert acked
    await asyncio.gather(*(c.close() for c in clients))
    restarted = start_server(tmp_path, config_path=server.config_path, db_path=server.db_path)
    try:
        async with await raidclient.connect(restarted.ws_url, token("ops", "admin")) as viewer:
            hub = await viewer.hub(raid)
            assert hub.raid.strike_count >= len(acked)
            assert hub.raid.analysis_points >= sum(acked.values())
            for user in users:
                mine = [n for n in range(30) if f"{user}/{n}" in acked]
                if not mine:
                    continue
                async with await raidclient.connect(restarted.ws_url, token(user)) as player:
                    for n in mine:
                        again = await player.strike(raid, "analyze", [f"{user}-c{n}"], f"{n}")
                        assert again.analysis_points == acked[f"{user}/{n}"]
                        assert again.strike_id == f"{n}"
            after = await viewer.hub(raid)
            assert after.raid.strike_count == hub.raid.strike_count
    finally:
        restarted.stop()
    await admin.close()
