"""Journal throughput: durable group commit against one commit per strike.

    python -m bench.journal_throughput [--strikes N] [--synchronous FULL|NORMAL]

Writes N realistic strikes (each with its ``strike:`` grant) through ``JournalWriter`` into a
fresh database file, from many concurrent submitters that each wait for their strike to be
durable before submitting the next one, as raid actors do. Then, in the same run, a baseline:
strikes committed one transaction each with ``synchronous=FULL``. Finally the file size per
million strikes, measured after a WAL checkpoint (no VACUUM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from persistence.database import Database
from persistence.journal import JournalEntry, JournalWriter
from persistence.records import RaidRow, RewardGrant, StrikeRecord

PLAYERS = 100_000
RESULT_EXTRA = {
    "announcements": [],
    "curses_active": ["stat_drain:atk", "fortify:fight"],
    "personal": {"analysis": 0, "strikes": 7},
    "weaknesses": ["fire", "shadow"],
}


@dataclass
class BatchStats:
    """The JournalObserver of the run: every committed batch's size and commit time."""

    sizes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failed: int = 0

    def batch_committed(self, size: int, seconds: float) -> None:
        self.sizes.append(size)
        self.seconds.append(seconds)

    def batch_failed(self, size: int) -> None:
        self.failed += size


def make_raid(raid_id: str) -> RaidRow:
    return RaidRow(
        raid_id=raid_id,
        boss_id="leviathan",
        name="The Leviathan",
        status="active",
        event_start=0.0,
        event_end=1e10,
        created_at=time.time(),
        ended_at=None,
        template_json=json.dumps({"total_hp": 10**12}),
        rng_seed=7,
    )


def make_strike(raid_id: str, seq: int, user_id: str) -> StrikeRecord:
    """A strike as a raid actor journals it: team, exact score parts, draws, full result."""
    strike_id = f"{user_id}-{seq:08d}"
    team = tuple(f"char-{(seq * 7 + k) % 100_000:06d}" for k in range(5))
    score, damage = 15_431 + seq % 997, 1_543 + seq % 97
    result = {
        "seq": seq,
        "action": "fight",
        "team": team,
        "score": score,
        "damage": damage,
        "hp_after": 10**12 - seq * 1_543,
        **RESULT_EXTRA,
    }
    now = time.time()
    return StrikeRecord(
        raid_id=raid_id,
        seq=seq,
        at=now,
        user_id=user_id,
        strike_id=strike_id,
        action="fight",
        team=team,
        base="49379/4",
        multiplier="5/4",
        score=score,
        damage=damage,
        analysis_points=0,
        breakthrough=False,
        retaliation=seq % 50 == 0,
        victory=False,
        draws_json='{"breakthroughs":[],"retaliation":null}',
        result_json=json.dumps(result, separators=(",", ":")),
        grant=RewardGrant(raid_id, user_id, f"strike:{strike_id}", {"gold": 120, "tokens": 3}, now),
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def group_commit_run(
    path: Path, strikes: int, submitters: int, raids: int, synchronous: str
) -> None:
    stats = BatchStats()
    db = await Database.open(path, synchronous=synchronous)
    try:
        raid_ids = [f"raid-{n}" for n in range(raids)]
        for raid_id in raid_ids:
            await db.create_boss_raid(make_raid(raid_id))
        writer = JournalWriter(
            db, on_committed=lambda batch: None, on_failed=lambda raids, exc: None, observer=stats
        )
        # Built before the clock starts: raid actors build records on their own threads.
        # Strikers are drawn from PLAYERS players: consecutive strikes come from players
        # scattered over the per-player indexes, as in a real raid.
        rng = random.Random(1)
        per_raid = {
            raid_id: deque(
                make_strike(raid_id, seq, f"user-{rng.randrange(PLAYERS):06d}")
                for seq in range(1, strikes // raids + (n < strikes % raids) + 1)
            )
            for n, raid_id in enumerate(raid_ids)
        }
        latencies: list[float] = []

        async def submitter(index: int) -> None:
            raid_id = raid_ids[index % raids]
            records = per_raid[raid_id]
            while records:
                entry = JournalEntry(raid_id, 1, records.popleft())
                started = time.perf_counter()
                writer.submit(entry)
                await writer.wait(entry)
                latencies.append(time.perf_counter() - started)

        writer.start()
        started = time.perf_counter()
        await asyncio.gather(*(submitter(n) for n in range(submitters)))
        elapsed = time.perf_counter() - started
        await writer.stop()
        if writer.committed_count != strikes or stats.failed:
            raise RuntimeError(f"committed {writer.committed_count} of {strikes} strikes")
        await db.checkpoint()
    finally:
        await db.close()
    size = path.stat().st_size
    print(f"group commit, synchronous={synchronous}, {submitters} submitters, {raids} raids")
    print(f"  committed strikes/s     {strikes / elapsed:12,.0f}  ({strikes:,} in {elapsed:.2f} s)")
    print(
        f"  batch commit latency    median {statistics.median(stats.seconds) * 1e3:.2f} ms, "
        f"p99 {percentile(stats.seconds, 0.99) * 1e3:.2f} ms"
    )
    print(
        f"  batch size              median {statistics.median(stats.sizes):.0f}, "
        f"max {max(stats.sizes)}, {len(stats.sizes)} batches"
    )
    print(
        f"  submit->durable latency median {statistics.median(latencies) * 1e3:.2f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms"
    )
    print(
        f"  database size           {size / strikes:.0f} bytes/strike = "
        f"{size / strikes * 1e6 / 2**20:,.0f} MiB per million strikes (WAL checkpointed)"
    )


async def one_commit_per_strike_run(path: Path, strikes: int) -> None:
    db = await Database.open(path, synchronous="FULL")
    try:
        await db.create_boss_raid(make_raid("raid-0"))
        records = [make_strike("raid-0", seq, "user-000000") for seq in range(1, strikes + 1)]
        started = time.perf_counter()
        for record in records:
            await db.add_raid_strike_logs([record])
        elapsed = time.perf_counter() - started
    finally:
        await db.close()
    print("baseline: one transaction per strike, synchronous=FULL")
    print(f"  committed strikes/s     {strikes / elapsed:12,.0f}  ({strikes:,} in {elapsed:.2f} s)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strikes", type=int, default=100_000)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL")
    parser.add_argument("--submitters", type=int, default=1000)
    parser.add_argument("--raids", type=int, default=10)
    parser.add_argument("--baseline-strikes", type=int, default=2000)
    parser.add_argument("--dir", help="where to create the database files (default: temp dir)")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        print(f"database files in {directory} (cpus: {os.cpu_count()})")
        await group_commit_run(
            Path(directory) / "group.db",
            args.strikes,
            args.submitters,
            args.raids,
            args.synchronous,
        )
        await one_commit_per_strike_run(Path(directory) / "baseline.db", args.baseline_strikes)


if __name__ == "__main__":
    asyncio.run(main())
