"""Snapshots and restore of a big raid: 100,000 player states and 100,000 journal entries.

    python -m bench.snapshot_restore [--players 100000]

1. One raid, ``--players`` players, one strike each, through the RaidActor and the journal
   (FULL sync) as the server does.
2. A snapshot of the raid (every player changed: the worst case), taken while a probe asks
   the RaidActor for its summary every millisecond: the probe's round trips during the
   snapshot against those just before it (same run) are the actor's pause.
3. A second strike for every player (another ``--players`` journal entries after the snapshot).
4. Start-up restore of the raid: latest snapshot (every player) + replay of the journal after it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pykka

from actors.messages import StrikeRequest, SummaryRequest
from actors.restore import restore_raid
from actors.service import RaidService
from bench.titan import TITAN_BOSS
from persistence.database import Database
from raid.config import Action, load_config
from raid.models import Character
from raid.strike import StrikeCommand
from server.app import freeze_startup_state, tune_runtime
from server.metrics import Metrics

CONFIG = (
    """
[player]
strike_cooldown_s = 0

[persistence]
snapshot_interval_s = 3600
"""
    + TITAN_BOSS
)


def roster(user: str) -> Any:
    return MappingProxyType(
        {
            f"{user}-{n}": Character(
                f"{user}-{n}", "x", 3, {"power": 40 + n, "endurance": 30}, frozenset({"fire"})
            )
            for n in range(2)
        }
    )


async def strike_all(service: RaidService, raid_id: str, players: int, round_no: int) -> float:
    """Every player strikes once, 1,000 in flight at a time; returns strikes/s."""
    live = service.live[raid_id]
    assert service.bridge is not None
    began = time.perf_counter()
    window = 1000
    for start in range(0, players, window):
        futures = []
        for index in range(start, min(players, start + window)):
            user = f"u{index}"
            command = StrikeCommand(
                user, Action.ANALYZE, (f"{user}-{round_no}",), f"s{round_no}", roster(user)
            )
            reply, future = service.bridge.reply()
            live.ref.tell(StrikeRequest(command, time.time(), reply))
            futures.append(future)
        await asyncio.gather(*futures)
    return players / (time.perf_counter() - began)


async def probe(service: RaidService, raid_id: str, stop: asyncio.Event, out: list[float]) -> None:
    live = service.live[raid_id]
    while not stop.is_set():
        began = time.perf_counter()
        await service._call(live.ref.tell, lambda reply: SummaryRequest(time.time(), reply))
        out.append(time.perf_counter() - began)
        await asyncio.sleep(0.001)


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {ordered[-1] * 1000:.2f} ms ({len(ordered)} round trips)"
    )


async def main_async(players: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config_path = Path(directory) / "config.toml"
        config_path.write_text(CONFIG, encoding="utf-8")
        config = load_config(config_path)
        db_path = Path(directory) / "bench.db"
        db = await Database.open(db_path)
        service = RaidService(config, db, Metrics())
        await service.start()
        freeze_startup_state()  # as the server does once it has started
        try:
            raid_id = await service.create_raid("titan")
            rate = await strike_all(service, raid_id, players, 0)
            print(f"round 1: {players:,} strikes at {rate:,.0f}/s (RaidActor + journal, FULL)")
            await asyncio.sleep(0.5)  # let the snapshotter apply the last commits

            before: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(service, raid_id, stop, before))
            await asyncio.sleep(1.0)
            stop.set()
            await task
            during: list[float] = []
            stop = asyncio.Event()
            task = asyncio.create_task(probe(service, raid_id, stop, during))
            began = time.perf_counter()
            info = await service.snapshot(raid_id)
            snapshot_s = time.perf_counter() - began
            stop.set()
            await task
            print(
                f"snapshot of {players:,} player states (all dirty): {snapshot_s:.2f} s, "
                f"seq {info.seq}"
            )
            print(f"  RaidActor round trip before the snapshot: {describe(before)}")
            print(f"  RaidActor round trip during the snapshot: {describe(during)}")

            rate = await strike_all(service, raid_id, players, 1)
            print(
                f"round 2: {players:,} more strikes at {rate:,.0f}/s (journal after the snapshot)"
            )
            await asyncio.sleep(0.5)
            began = time.perf_counter()
            restored = await restore_raid(db, raid_id, time.time())
            restore_s = time.perf_counter() - began
            assert restored is not None
            print(
                f"restore: snapshot with {len(restored.state.players):,} players + "
                f"{restored.replayed:,} journal entries in {restore_s:.2f} s (target <= 3 s)"
            )
            assert restored.state.boss.strike_count == 2 * players
        finally:
            await service.stop()
            await db.close()
        size = os.path.getsize(db_path)
        print(
            f"database: {size / 2**20:.0f} MiB for {2 * players:,} strikes "
            f"= {size / (2 * players):.0f} bytes/strike (journal, grants and snapshots)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", type=int, default=100_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores")
    tune_runtime()  # as the server does (server.app)
    try:
        asyncio.run(main_async(args.players))
    finally:
        pykka.ActorRegistry.stop_all()  # a leftover actor thread would keep the process alive


if __name__ == "__main__":
    main()
