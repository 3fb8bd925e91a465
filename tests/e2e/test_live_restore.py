"""Restores while the server runs (``admin.raid.restore`` and ``restore --url``), with undo."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.harness import Client, ServerProcess, admin_and_player, character, start_server
from tests.e2e.test_cli import cli


async def _strike(client: Client, raid_id: str, team: list[str], strike_id: str) -> dict[str, Any]:
    return await client.ok(
        "strike", raid_id=raid_id, action="fight", team=team, strike_id=strike_id
    )


def _hub_view(hub: dict[str, Any]) -> dict[str, Any]:
    """What a restore must bring back: the raid and the player, not the server's clock."""
    raid = {k: v for k, v in hub["raid"].items() if k not in ("server_time", "status_changes_at")}
    return {"raid": raid, "me": hub["me"], "leaderboard": hub["leaderboard"]}


async def test_live_restore_under_load_and_roll_forward(
    server: ServerProcess, admin: Client
) -> None:
    """Raid A is restored back and then forward while raid B is under load: every strike
    acknowledged on B is in its journal, A's subscriber gets resync, and rolling forward gives
    back exactly the state from before the restore."""
    loaders = [f"load{n}" for n in range(4)]
    for user in ["alice", *loaders]:
        await admin.ok(
            "admin.roster.grant",
            user_id=user,
            characters=[character(user, n, power=10) for n in range(40)],
        )
    await admin.ok("admin.raid.create", boss="dummy", raid_id="ra")
    await admin.ok("admin.raid.create", boss="dummy", raid_id="rb")

    alice = await Client.connect(server)
    await alice.hello("alice")
    for n in range(3):
        await _strike(alice, "ra", [f"alice-c{n}"], f"a{n}")
    early = await admin.ok("admin.snapshot", raid_id="ra")
    for n in range(3, 8):
        await _strike(alice, "ra", [f"alice-c{n}"], f"a{n}")
    late = await admin.ok("admin.snapshot", raid_id="ra")
    before = _hub_view(await alice.ok("raid.hub", raid_id="ra"))
    assert before["raid"]["strike_count"] == 8

    watcher = await Client.connect(server)
    await watcher.hello("watcher")
    await watcher.ok("raid.subscribe", raid_id="ra")

    acknowledged: list[str] = []
    stop = asyncio.Event()

    async def load(user: str) -> None:
        client = await Client.connect(server)
        await client.hello(user)
        try:
            for n in range(40):
                if stop.is_set():
                    return
                reply = await client.request(
                    "strike", raid_id="rb", action="fight", team=[f"{user}-c{n}"], strike_id=f"{n}"
                )
                assert reply["op"] == "strike.ok", reply  # raid B never notices raid A's restore
                acknowledged.append(f"{user}/{n}")
        finally:
            await client.close()

    loading = [asyncio.create_task(load(user)) for user in loaders]
    try:
        while len(acknowledged) < 10:
            await asyncio.sleep(0.01)
        back = await admin.ok("admin.raid.restore", raid_id="ra", snapshot_id=early["snapshot_id"])
        during = len(acknowledged)
    finally:
        stop.set()
        await asyncio.gather(*loading)
    assert back["rolled_back_strikes"] == 5 and back["seq"] == 3 and not back["rolled_forward"]
    assert during < len(acknowledged) or during == 4 * 40  # raid B kept serving meanwhile

    resync = await watcher.next_event({"type": "resync"})
    assert resync["raid_id"] == "ra" and resync["snapshot_id"] == early["snapshot_id"]
    hub = await alice.ok("raid.hub", raid_id="ra")
    assert hub["raid"]["strike_count"] == 3
    assert hub["raid"]["current_hp"] == 1000 - 3 * 1  # power 10 -> damage 1 each

    forward = await admin.ok("admin.raid.restore", raid_id="ra", snapshot_id=late["snapshot_id"])
    assert forward["rolled_forward"] and forward["restored_strikes"] == 5
    await watcher.next_event({"type": "resync", "snapshot_id": late["snapshot_id"]})
    assert _hub_view(await alice.ok("raid.hub", raid_id="ra")) == before
    # The raid serves on from there: seq 9 follows the rolled-forward journal.
    report = await _strike(alice, "ra", ["alice-c8"], "a8")
    assert report["strike_count"] == 9

    with contextlib.closing(sqlite3.connect(server.db_path)) as db:
        stored = {
            f"{user}/{strike_id}"
            for user, strike_id in db.execute(
                "SELECT user_id, strike_id FROM raid_strike_logs "
                "WHERE raid_id = 'rb' AND rolled_back = 0"
            )
        }
    assert set(acknowledged) <= stored
    for client in (alice, watcher):
        await client.close()


async def test_restore_with_url_goes_through_the_running_server(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        admin, player = await admin_and_player(server, "r", "rc")
        snapshot = await admin.ok("admin.snapshot", raid_id="rc")
        await _strike(player, "rc", ["r-c0"], "x")
        url = server.ws_url
        done = await asyncio.to_thread(
            cli, tmp_path, "restore", "rc", "--snapshot", str(snapshot["snapshot_id"]), "--url", url
        )
        assert done.returncode == 0, done.stderr
        assert "1 strikes and 0 snapshots rolled back" in done.stdout
        assert "serving again" in done.stdout
        assert (await player.ok("raid.hub", raid_id="rc"))["raid"]["strike_count"] == 0
        # r-c0 is rested again: its strike was rolled back
        assert (await _strike(player, "rc", ["r-c0"], "y"))["strike_count"] == 1

        unknown = await asyncio.to_thread(
            cli, tmp_path, "restore", "rc", "--snapshot", "999", "--url", url
        )
        assert unknown.returncode == 2, unknown.stderr
        assert "no snapshot 999" in unknown.stderr and unknown.stderr.count("\n") == 1
        ghost = await asyncio.to_thread(
            cli, tmp_path, "restore", "ghost", "--snapshot", "1", "--url", url
        )
        assert ghost.returncode == 2 and "no raid 'ghost'" in ghost.stderr
        for client in (player, admin):
            with contextlib.suppress(ConnectionError):
                await client.close()
    finally:
        assert server.stop() == 0
    down = cli(tmp_path, "restore", "rc", "--snapshot", "1", "--url", server.ws_url)
    assert down.returncode == 1 and "cannot reach the server" in down.stderr
