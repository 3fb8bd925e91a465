"""Crash safety: a server applying strikes is SIGKILLed at random moments, many times.

After each restart every acknowledged strike and claim is present exactly once, and the
restored state equals a replay of the whole journal from the raid's creation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import time
from pathlib import Path

from actors.restore import restore_raid
from persistence.database import Database
from raid.codec import boss_from_dict, boss_to_dict, player_to_dict, result_from_dict
from raid.lifecycle import advance_status
from raid.models import RaidState
from raid.strike import apply_strike
from raidclient import ConnectionLost, RaidClient, RequestTimeout, ServerError, connect
from tests.e2e.harness import ServerProcess, character, start_server, token, write_config

ROUNDS = 6
PLAYERS = 6
ROSTER = 60


async def _hammer(
    clients: list[tuple[str, RaidClient]],
    raid: str,
    round_no: int,
    acked: dict[tuple[str, str], int],
    claims: set[tuple[str, str]],
) -> None:
    async def play(user: str, client: RaidClient) -> None:
        for n in range(10):
            index = round_no * 10 + n
            strike_id = f"r{round_no}-{n}"
            try:
                with contextlib.suppress(ServerError):  # refused or unavailable: not acked
                    report = await client.strike(
                        raid, "analyze", [f"{user}-c{index}"], strike_id=strike_id
                    )
                    acked[(user, strike_id)] = report.analysis_points
                with contextlib.suppress(ServerError):  # already claimed, not eligible yet
                    await client.claim(raid, "breakthrough:1")
                    claims.add((user, "breakthrough:1"))
            except (ConnectionLost, RequestTimeout):
                return  # the server was killed: what it acknowledged is checked below

    await asyncio.gather(*(play(user, client) for user, client in clients))


async def _player(server: ServerProcess, user: str) -> RaidClient:
    """No reconnecting: the server is killed on purpose and not restarted under the client."""
    return await connect(server.ws_url, token(user), reconnect=False, reconnect_timeout=1.0)


async def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(7)
    config = write_config(tmp_path, snapshot_interval_s=0.05)
    acked: dict[tuple[str, str], int] = {}
    claims: set[tuple[str, str]] = set()
    users = [f"k{i}" for i in range(PLAYERS)]
    raid = "crash"
    for round_no in range(ROUNDS):
        server = start_server(tmp_path, config_path=config)
        clients: list[tuple[str, RaidClient]] = []
        try:
            if round_no == 0:
                admin = await connect(server.ws_url, token("ops", "admin"), reconnect=False)
                for user in users:
                    await admin.grant_roster(
                        user, [character(user, n, power=20) for n in range(ROSTER)]
                    )
                await admin.create_raid("dummy", raid_id=raid)
                await admin.close()
            clients = [(user, await _player(server, user)) for user in users]
            killer = asyncio.get_running_loop().call_later(
                rng.uniform(0.05, 0.4), server.process.send_signal, signal.SIGKILL
            )
            await _hammer(clients, raid, round_no, acked, claims)
            killer.cancel()
        finally:
            server.stop(signal.SIGKILL)
            for _, client in clients:
                await client.close()
        await _check_database(tmp_path / "raid.db", raid, acked, claims)
    assert len(acked) > 10


async def _check_database(
    db_path: Path, raid: str, acked: dict[tuple[str, str], int], claims: set[tuple[str, str]]
) -> None:
    with sqlite3.connect(db_path) as db:
        rows = db.execute(
            "SELECT seq, user_id, strike_id, analysis_points, result FROM raid_strike_logs "
            "WHERE raid_id = ? AND rolled_back = 0 ORDER BY seq",
            (raid,),
        ).fetchall()
        claimed = set(
            db.execute(
                "SELECT user_id, key FROM raid_reward_claims WHERE raid_id = ? AND rolled_back = 0",
                (raid,),
            ).fetchall()
        )
        template = db.execute(
            "SELECT template FROM boss_raids WHERE raid_id = ?", (raid,)
        ).fetchone()[0]
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    stored = {(r[1], r[2]): r[3] for r in rows}
    assert len(stored) == len(rows), "a strike_id was stored twice"
    for key, points in acked.items():
        assert stored.get(key) == points, f"acknowledged strike {key} lost"
    assert claims <= claimed
    scratch = RaidState(boss_from_dict(json.loads(template)))
    for row in rows:
        apply_strike(scratch, result_from_dict(json.loads(row[4])))
    now = time.time()
    advance_status(scratch.boss, now)
    database = await Database.open(db_path)
    try:
        restored = await restore_raid(database, raid, now)
    finally:
        await database.close()
    assert restored is not None
    assert boss_to_dict(restored.state.boss) == boss_to_dict(scratch.boss)
    assert {u: player_to_dict(p) for u, p in restored.state.players.items()} == {
        u: player_to_dict(p) for u, p in scratch.players.items()
    }
