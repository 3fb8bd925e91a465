"""Strikes per second through the whole actor path, in one process, no network.

    python -m bench.actor_throughput [--players 1000] [--strikes 30000] [--repeat 3]

Each simulated player is a coroutine that calls ``RaidService.strike`` in a loop, exactly as the
gateway does: PlayerActor -> RaidActor -> journal group commit (real SQLite file, FULL sync)
-> reply. Figures: strikes/s and the latency distribution (p50/p99) for ``--players``
concurrent players; memory and start cost per live PlayerActor. Same-run baselines: the pure
rules (decide + apply) on the same machine, and a bare pykka ask round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pykka

from actors.base import Actor as ActorBase
from actors.batch_sender import BatchSender
from actors.bridge import LoopBridge
from actors.loop_actor import LoopActor, LoopDispatcher
from actors.player_actor import PlayerActor
from actors.raids import CharacterGrant
from actors.service import RaidService
from bench.titan import TITAN_BOSS
from persistence.database import Database
from raid.config import Action, load_config
from server.app import freeze_startup_state, tune_runtime
from server.metrics import Metrics

CONFIG = (
    """
[player]
strike_cooldown_s = 0
character_rest = 0.01

[actors]
max_player_actors = 5000

[persistence]
snapshot_interval_s = 3600
"""
    + TITAN_BOSS
)

ROSTER = 12
TEAM = 3


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run_strikes(
    service: RaidService, raid_id: str, players: int, total: int, prefix: str = ""
) -> dict[str, Any]:
    per_player = total // players
    latencies: list[float] = []
    rng = random.Random(1)

    async def play(index: int) -> None:
        user = f"p{index}"
        for n in range(per_player):
            start = (n * TEAM) % ROSTER
            team = tuple(f"{user}-c{(start + k) % ROSTER}" for k in range(TEAM))
            action = Action.FIGHT if rng.random() < 0.5 else Action.ANALYZE
            began = time.perf_counter()
            while True:
                try:
                    await service.strike(user, raid_id, action, team, f"{prefix}{n}")
                    break
                except Exception as error:
                    if getattr(error, "code", None) is None:
                        raise
                    await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    cpu_began = time.process_time()  # every thread of the process: loop, actors, SQLite
    await asyncio.gather(*(play(i) for i in range(players)))
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    latencies.sort()
    return {
        "strikes": len(latencies),
        "seconds": elapsed,
        "rate": len(latencies) / elapsed,
        "cpu_us": cpu / max(len(latencies), 1) * 1e6,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def soak(service: RaidService, raid_id: str, players: int, total: int) -> None:
    """Serve ``total`` strikes in tenths; RSS after each (bounded memory, docs/benchmarks.md)."""
    step = max(total // 10, players)
    served = 0
    first: int | None = None
    while served < total:
        run = await run_strikes(service, raid_id, players, step, f"s{served}-")
        served += run["strikes"]
        rss = rss_bytes()
        first = rss if first is None else first
        print(
            f"  soak: {served:>9,} strikes served, RSS {rss / 2**20:6.1f} MiB "
            f"({(rss / first - 1) * 100:+.1f} % since the first tenth), {run['rate']:,.0f}/s",
            flush=True,
        )
    print(f"soak: {served:,} strikes, RSS growth {(rss_bytes() / (first or 1) - 1) * 100:+.1f} %")


def pure_rules_rate(seconds: float = 1.0) -> float:
    from raid.codec import new_boss_state
    from raid.leaderboard import Leaderboards
    from raid.models import Character, RaidState
    from raid.scoring import ScoringContext
    from raid.strike import StrikeCommand, apply_strike, decide_strike

    config = load_config(None)
    template = config.bosses["leviathan"]
    state = RaidState(new_boss_state(template, "b", 0, 10**9, 1))
    boards = Leaderboards()
    context = ScoringContext.build(config.rules, state.boss)
    roster = {
        f"c{i}": Character(f"c{i}", "x", 3, {"power": 50, "endurance": 40}, frozenset({"fire"}))
        for i in range(6)
    }
    rng = random.Random(2)
    count = 0
    now = 10.0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(1000):
            command = StrikeCommand(f"u{count}", Action.ANALYZE, ("c0", "c1", "c2"), "s", roster)
            result = decide_strike(config.rules, state, context, command, now, rng)
            apply_strike(state, result, boards)
            count += 1
    return count / (time.perf_counter() - began)


async def bare_hop_rate(actors: int, total: int = 30_000, threads: bool = True) -> float:
    """Round trips loop -> one of ``actors`` idle actors -> loop (through our bridge), with
    one in flight per actor: the floor cost of an actor hop, nothing else. ``threads``: each
    actor a thread (pykka's ThreadingActor, as PlayerActors were); otherwise LoopActors."""

    class Echo(ActorBase):
        def on_receive(self, message: Any) -> Any:
            message[1].set(message[0])

    class LoopEcho(LoopActor):
        def on_receive(self, message: Any) -> Any:
            message[1].set(message[0])

    bridge = LoopBridge(asyncio.get_running_loop())
    dispatcher = LoopDispatcher.for_running_loop()
    refs = [Echo.start() if threads else LoopEcho.start(dispatcher) for _ in range(actors)]
    per_actor = total // actors

    async def user(index: int) -> None:
        for number in range(per_actor):
            reply, future = bridge.reply()
            refs[index].tell((number, reply))
            await future

    began = time.perf_counter()
    await asyncio.gather(*(user(i) for i in range(actors)))
    rate = per_actor * actors / (time.perf_counter() - began)
    for ref in refs:
        ref.stop(block=threads)
    dispatcher.close()
    return rate


def bare_ask_rate(count: int = 20000) -> float:
    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message

    ref = Echo.start()
    began = time.perf_counter()
    futures = [ref.ask(i, block=False) for i in range(count)]
    for future in futures:
        future.get()
    rate = count / (time.perf_counter() - began)
    ref.stop()
    return rate


async def player_actor_cost(count: int) -> tuple[float, float]:
    """(bytes, seconds) per live PlayerActor."""

    class Dummy(pykka.ThreadingActor):
        pass

    target = Dummy.start()
    dispatcher = LoopDispatcher.for_running_loop()
    sender = BatchSender(target, asyncio.get_running_loop(), lambda _message: None)
    before = rss_bytes()
    began = time.perf_counter()
    refs = [PlayerActor.start(dispatcher, "r", f"u{i}", sender, 6) for i in range(count)]
    seconds = time.perf_counter() - began
    await asyncio.sleep(0.01)  # let them start (on_start runs on the loop)
    after = rss_bytes()
    for ref in refs:
        ref.stop(block=False)
    dispatcher.close()
    target.stop()
    return (after - before) / count, seconds / count


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        config_path = Path(directory) / "config.toml"
        config_path.write_text(CONFIG, encoding="utf-8")
        config = load_config(config_path)
        db = await Database.open(
            Path(directory) / "bench.db",
            synchronous=os.environ.get("SYNC", "FULL"),
            page_cache_mib=args.page_cache_mib or config.persistence.page_cache_mib,
        )
        metrics = Metrics()
        service = RaidService(config, db, metrics)
        await service.start()
        try:
            for index in range(args.players):
                user = f"p{index}"
                await service.grant_roster(
                    user,
                    [
                        CharacterGrant(
                            f"{user}-c{n}",
                            "x",
                            3,
                            {"power": 40 + n, "endurance": 30 + n},
                            (("fire", "water", "wind")[n % 3], "striker"),
                        )
                        for n in range(ROSTER)
                    ],
                )
            raid_id = await service.create_raid("titan")
            await run_strikes(service, raid_id, args.players, args.players, prefix="warm")
            freeze_startup_state()  # as the server does once it has started
            if args.soak:
                await soak(service, raid_id, args.players, args.soak)
                return
            runs = []
            for number in range(args.repeat):
                runs.append(
                    await run_strikes(service, raid_id, args.players, args.strikes, f"r{number}-")
                )
            for run in runs:
                print(
                    f"  run: {run['strikes']} strikes in {run['seconds']:.2f} s = "
                    f"{run['rate']:,.0f}/s  p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms"
                    f"  CPU {run['cpu_us']:.0f} us/strike"
                )
            rate = statistics.median(r["rate"] for r in runs)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            p99 = statistics.median(r["p99_ms"] for r in runs)
            registry = metrics.registry
            batches = registry.get_sample_value("journal_batch_size_count") or 0.0
            entries = registry.get_sample_value("journal_batch_size_sum") or 0.0
            commit_s = registry.get_sample_value("journal_commit_seconds_sum") or 0.0
            print(
                f"journal: {batches:.0f} group commits, {entries / max(batches, 1):.0f} strikes "
                f"per commit on average, {commit_s / max(batches, 1) * 1000:.1f} ms per commit"
            )
            print(
                f"actor path, {args.players} concurrent players: median {rate:,.0f} strikes/s, "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
        finally:
            await service.stop()
            await db.close()
    hops = min(30_000, max(args.strikes, 1000))  # the smoke run stays small
    hop_many = await bare_hop_rate(args.players, hops)
    hop_few = await bare_hop_rate(100, hops)
    loop_hop = await bare_hop_rate(args.players, hops, threads=False)
    pure = pure_rules_rate()
    ask = bare_ask_rate(min(20_000, max(args.strikes, 1000)))
    print(
        f"baseline pure rules (decide+apply, same run): {pure:,.0f}/s; ratio actor path / "
        f"rules = {rate / pure:.2f}"
    )
    print(
        f"baseline bare pykka ask, pipelined: {ask:,.0f}/s; ratio actor path / ask = "
        f"{rate / ask:.2f}"
    )
    print(
        f"baseline bare hop loop -> actor -> loop: {hop_many:,.0f}/s with {args.players} "
        f"actors ({1e6 / hop_many:.0f} us each), {hop_few:,.0f}/s with 100 actors; ratio actor "
        f"path / hop ({args.players} actors) = {rate / hop_many:.2f}"
    )
    print(
        f"baseline bare hop loop -> LoopActor -> loop: {loop_hop:,.0f}/s with {args.players} "
        f"actors ({1e6 / loop_hop:.1f} us each); ratio actor path / loop hop = "
        f"{rate / loop_hop:.2f}"
    )
    per_actor, per_start = await player_actor_cost(args.actors)
    print(
        f"PlayerActor: {per_actor / 1024:.1f} KiB RSS and {per_start * 1000:.2f} ms to start, "
        f"each ({args.actors} started)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--strikes", type=int, default=30000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--actors", type=int, default=2000)
    parser.add_argument(
        "--page-cache-mib",
        type=int,
        default=0,
        help="the journal writer's SQLite page cache (default: the config's, 64 MiB); the "
        "soak's RSS rises by up to this as the database grows",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        help="instead: serve this many strikes, printing RSS every 10 %% (memory must not grow)",
    )
    args = parser.parse_args()
    print(
        f"python {platform.python_version()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores"
    )
    tune_runtime()  # as the server does (server.app)
    try:
        asyncio.run(main_async(args))
    finally:
        pykka.ActorRegistry.stop_all()  # a leftover actor thread would keep the process alive


if __name__ == "__main__":
    main()
