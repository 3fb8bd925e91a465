"""Many clients at once, and stopping the server under load."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests.e2e.harness import Client, ServerProcess, character, start_server


async def _grant(admin: Client, users: list[str], per_user: int) -> None:
    for user in users:
        await admin.ok(
            "admin.roster.grant",
            user_id=user,
            characters=[character(user, n, power=10) for n in range(per_user)],
        )


async def test_two_hundred_clients_striking(server: ServerProcess, admin: Client) -> None:
    users = [f"load{i:03d}" for i in range(200)]
    await _grant(admin, users, 2)
    raid = (await admin.ok("admin.raid.create", boss="dummy"))["raid_id"]
    clients = await asyncio.gather(*(Client.connect(server) for _ in users))
    await asyncio.gather(*(c.hello(u) for c, u in zip(clients, users, strict=True)))

    async def play(client: Client, user: str) -> list[int]:
        damage = []
        for n in range(2):
            reply = await client.request(
                "strike", raid_id=raid, action="fight", team=[f"{user}-c{n}"], strike_id=f"{n}"
            )
            if reply["op"] == "strike.ok":
                damage.append(reply["damage"])
        return damage

    results = await asyncio.gather(*(play(c, u) for c, u in zip(clients, users, strict=True)))
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
    clients = await asyncio.gather(*(Client.connect(server) for _ in users))
    await asyncio.gather(*(c.hello(u) for c, u in zip(clients, users, strict=True)))
    acked: dict[str, int] = {}
    stopped = asyncio.Event()

    async def play(client: Client, user: str) -> None:
        for n in range(30):
            try:
                reply = await client.request(
                    "strike",
                    raid_id=raid,
                    action="analyze",
                    team=[f"{user}-c{n}"],
                    strike_id=f"{n}",
                )
            except (ConnectionError, TimeoutError):
                return
            if reply["op"] == "strike.ok":
                acked[f"{user}/{n}"] = reply["analysis_points"]
            if n == 5 and user == "t00":
                stopped.set()

    async def stop_soon() -> None:
        await stopped.wait()
        server.process.send_signal(signal.SIGTERM)

    await asyncio.gather(stop_soon(), *(play(c, u) for c, u in zip(clients, users, strict=True)))
    assert server.stop() == 0
    assert acked
    restarted = start_server(tmp_path, config_path=server.config_path, db_path=server.db_path)
    try:
        viewer = await Client.connect(restarted)
        await viewer.hello("ops", "admin")
        hub = await viewer.ok("raid.hub", raid_id=raid)
        assert hub["raid"]["strike_count"] >= len(acked)
        assert hub["raid"]["analysis_points"] >= sum(acked.values())
        for user in users:
            mine = [n for n in range(30) if f"{user}/{n}" in acked]
            if not mine:
                continue
            player = await Client.connect(restarted)
            await player.hello(user)
            for n in mine:
                again = await player.ok(
                    "strike",
                    raid_id=raid,
                    action="analyze",
                    team=[f"{user}-c{n}"],
                    strike_id=f"{n}",
                )
                assert again["analysis_points"] == acked[f"{user}/{n}"]
                assert again["strike_id"] == f"{n}"
            await player.close()
        after = await viewer.ok("raid.hub", raid_id=raid)
        assert after["raid"]["strike_count"] == hub["raid"]["strike_count"]
        await viewer.close()
    finally:
        restarted.stop()
