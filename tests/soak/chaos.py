"""Chaos: a server under load killed with SIGKILL at chosen and random moments, restarted
each time; afterwards every acknowledged strike, claim, grant and raid is there exactly once
and every raid's state equals a replay of its journal (probes.audit, after every kill).

The kills cycle through four moments so that each is hit, not just hoped for:

- ``load``: a random moment while the players strike and claim;
- ``snapshot``: right after an ``admin.snapshot`` was sent (and periodic snapshots run every
  50 ms anyway), before its reply;
- ``create``: right after an ``admin.raid.create`` was sent, before its reply;
- ``restore``: right after an ``admin.raid.restore`` was sent, before its reply.

A "during" kill lands a random 0-20 ms after the request left: the request is unanswered at
the kill, so the server was somewhere between reading it and committing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from pathlib import Path
from typing import Any

from raidclient import ConnectionLost, RaidClient, RequestTimeout, ServerError, connect
from tests.e2e.harness import ServerProcess, character, start_server, token, write_config
from tests.soak.probes import Acknowledged, ScenarioResult, audit, rss_kib

BOSS = """
[bosses.chaos]
name = "Chaos Colossus"
total_hp = 1000000000
duration_s = 86400
dominant_stats = ["power"]
weaknesses = []
resistances = []
weakness_pool = ["fire", "wind", "water"]
curse_pool = ["iron_hide", "dread_aura", "veil"]
analysis_thresholds = [5, 50, 500]
analysis_reward_pool = [{ gems = 1 }, { gems = 2 }, { gems = 3 }]
victory_cache = { gems = 100 }
"""
MOMENTS = ("load", "snapshot", "create", "restore")
RAID = "chaos"
QUIET = "quiet"  # a raid nobody strikes: restores of it roll nothing acknowledged back


async def _player(server: ServerProcess, user: str) -> RaidClient:
    return await connect(server.ws_url, token(user), reconnect=False, request_timeout=30)


async def _play(
    client: RaidClient, user: str, round_no: int, strikes: int, acked: Acknowledged
) -> int:
    """Strike (fight and analyze) and claim until done or the server is gone; returns how
    many requests were answered."""
    answered = 0
    for n in range(strikes):
        strike_id = f"r{round_no}-{n}"
        team = [f"{user}-c{round_no * strikes + n}"]
        action = "fight" if n % 2 else "analyze"
        try:
            with contextlib.suppress(ServerError):  # refused or unavailable: not acknowledged
                report = await client.strike(RAID, action, team, strike_id=strike_id)
                acked.strikes[(RAID, user, strike_id)] = (report.damage, report.analysis_points)
            answered += 1
            with contextlib.suppress(ServerError):  # already claimed, not eligible yet
                reward = await client.claim(RAID, "breakthrough:1")
                acked.claims.add((RAID, user, reward.key))
            answered += 1
        except (ConnectionLost, RequestTimeout):
            break  # killed: what it acknowledged is audited
    return answered


async def _operate(
    admin: RaidClient, moment: str, round_no: int, rng: random.Random, acked: Acknowledged
) -> tuple[str, Any]:
    """Send the operator request the kill should land in; returns (what, the request)."""
    if moment == "snapshot":
        return "admin.snapshot", asyncio.ensure_future(admin.snapshot(RAID))
    if moment == "create":
        raid_id = f"made-{round_no}"

        async def create() -> None:
            acked.raids.add(await admin.create_raid("chaos", raid_id=raid_id))

        return "admin.raid.create", asyncio.ensure_future(create())
    if moment == "restore":
        snapshot = await admin.snapshot(QUIET)
        return "admin.raid.restore", asyncio.ensure_future(
            admin.request("admin.raid.restore", raid_id=QUIET, snapshot_id=snapshot.snapshot_id)
        )
    user = f"g{round_no}"

    async def grant() -> None:
        cid = f"{user}-c{rng.randrange(10**9)}"
        await admin.grant_roster(user, [{**character(user, 0), "character_id": cid}])
        acked.grants[cid] = user

    return "admin.roster.grant", asyncio.ensure_future(grant())


async def chaos(
    directory: Path, *, kills: int, clients: int, strikes: int = 5, seed: int = 7
) -> ScenarioResult:
    """``kills`` SIGKILLs of a server driven by ``clients`` players; audited after each."""
    rng = random.Random(seed)
    started = time.monotonic()
    result = ScenarioResult("chaos: SIGKILL under load, restart")
    config = write_config(directory, extra=BOSS, snapshot_interval_s=0.05)
    acked = Acknowledged()
    users = [f"k{i:03d}" for i in range(clients)]
    during: dict[str, int] = {}
    for round_no in range(kills):
        moment = MOMENTS[round_no % len(MOMENTS)]
        server = start_server(directory, config_path=config)
        result.runs += 1
        players: list[RaidClient] = []
        try:
            admin = await connect(server.ws_url, token("ops", "admin"), reconnect=False)
            if round_no == 0:
                for user in users:
                    roster = [character(user, n, power=50) for n in range(kills * strikes)]
                    await admin.grant_roster(user, roster)
                    acked.grants.update({c["character_id"]: user for c in roster})
                for raid_id in (RAID, QUIET):
                    acked.raids.add(await admin.create_raid("chaos", raid_id=raid_id))
            players = list(await asyncio.gather(*(_player(server, u) for u in users)))
            play = asyncio.gather(
                *(
                    _play(c, u, round_no, strikes, acked)
                    for u, c in zip(users, players, strict=True)
                )
            )
            await asyncio.sleep(rng.uniform(0.05, 0.3))  # the players are under way
            if round_no == 0:
                result.rss_before_kib = rss_kib(server.process.pid)
            if round_no == kills - 1:
                result.rss_after_kib = rss_kib(server.process.pid)
            what, request = await _operate(admin, moment, round_no, rng, acked)
            await asyncio.sleep(rng.uniform(0, 0.02))
            if not request.done():
                during[what] = during.get(what, 0) + 1
            server.process.send_signal(signal.SIGKILL)
            result.faults += 1
            await play
            with contextlib.suppress(ConnectionLost, RequestTimeout, ServerError):
                await request
        finally:
            server.stop(signal.SIGKILL)
            for client in players:
                await client.close()
            with contextlib.suppress(UnboundLocalError):
                await admin.close()
        result.lost += await audit(server.db_path, acked)
    result.operations = len(acked)
    killed = ", ".join(f"{n} during {what}" for what, n in sorted(during.items()))
    result.notes.append(f"{clients} players; kills: {killed or 'none during an op'}")
    result.notes.append("audited after every kill: exactly once, hp, journal replay")
    result.seconds = time.monotonic() - started
    return result
