"""Operator restore of a raid with a long journal: back to its first snapshot, then forward.

    python -m bench.restore_timeline [--strikes 100000] [--repeat 3]

One raid with ``--strikes`` journal entries (each with its ``strike:`` grant) and two
snapshots (seq 0 and the last seq). Measured, each ``--repeat`` times, medians printed:

- back: ``restore_to_snapshot`` to seq 0, marking every strike and grant rolled back;
- forward: ``restore_to_snapshot`` to the last snapshot, bringing them all back;
- baseline (same run, same rows): the two plain UPDATEs that version 2's rollback ran
  (``SET rolled_back = 1 WHERE raid_id = ? AND seq > 0`` on strikes and grants), undone after.

A restore holds the database writer for its whole transaction: journal commits of other raids
wait that long.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

from persistence.database import Database
from persistence.records import RaidRow, RewardGrant, StrikeRecord

BATCH = 2000


def _status(raid_state_json: str) -> tuple[str, float | None]:
    return "active", None


def _strike(seq: int) -> StrikeRecord:
    user = f"u{seq % 1000:04d}"
    return StrikeRecord(
        raid_id="r",
        seq=seq,
        at=float(seq),
        user_id=user,
        strike_id=f"s{seq}",
        action="fight",
        team=("c1", "c2"),
        base="200/1",
        multiplier="1/1",
        score=200,
        damage=20,
        analysis_points=0,
        breakthrough=False,
        retaliation=False,
        victory=False,
        draws_json='{"weaknesses":[],"curses":[]}',
        result_json='{"damage":20}',
        grant=RewardGrant("r", user, f"strike:s{seq}", {"raid_tokens": 10}, float(seq)),
    )


async def _baseline(db: Database) -> float:
    """Version 2's rollback (and its undo, not timed) on the same rows."""
    started = time.perf_counter()
    async with db._pool.transaction() as conn:
        await conn.execute(
            "UPDATE raid_strike_logs SET rolled_back = 1 WHERE raid_id = 'r' AND seq > 0"
        )
        await conn.execute(
            "UPDATE raid_reward_claims SET rolled_back = 1 WHERE raid_id = 'r' AND strike_seq > 0"
        )
    seconds = time.perf_counter() - started
    async with db._pool.transaction() as conn:
        await conn.execute("UPDATE raid_strike_logs SET rolled_back = 0 WHERE raid_id = 'r'")
        await conn.execute("UPDATE raid_reward_claims SET rolled_back = 0 WHERE raid_id = 'r'")
    return seconds


async def run(strikes: int, repeat: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="restore-bench-"))
    db = await Database.open(directory / "bench.db")
    try:
        await db.create_boss_raid(RaidRow("r", "b", "B", "active", 0.0, 1e9, 0.0, None, "{}", 0))

        async def snapshot(seq: int) -> int:
            info = await db.save_snapshot(
                "r", seq=seq, taken_at=0.0, current_hp=1, strike_count=seq,
                raid_state_json="{}", players=[],
            )  # fmt: skip
            return info.snapshot_id

        first = await snapshot(0)
        for start in range(1, strikes + 1, BATCH):
            await db.add_raid_strike_logs(
                [_strike(seq) for seq in range(start, min(start + BATCH, strikes + 1))]
            )
        last = await snapshot(strikes)
        backs, forwards, baselines = [], [], []
        for _ in range(repeat):
            baselines.append(await _baseline(db))
            started = time.perf_counter()
            back = await db.restore_to_snapshot("r", first, at=1.0, status_of=_status)
            backs.append(time.perf_counter() - started)
            started = time.perf_counter()
            forward = await db.restore_to_snapshot("r", last, at=2.0, status_of=_status)
            forwards.append(time.perf_counter() - started)
            assert back.rolled_back_strikes == forward.restored_strikes == strikes
        base = statistics.median(baselines)
        print(f"machine: {platform.machine()}, Python {platform.python_version()}")
        print(f"restore of a raid with {strikes:,} strikes (+ grants), medians of {repeat}:")
        for name, values in (("back", backs), ("forward", forwards)):
            median = statistics.median(values)
            print(
                f"  {name:<8} {median * 1000:8.0f} ms  ({median / strikes * 1e6:.1f} us per "
                f"strike; {median / base:.1f}x the baseline)"
            )
        print(f"  baseline {base * 1000:8.0f} ms  (version 2's two UPDATEs, same rows)")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strikes", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.strikes, args.repeat))


if __name__ == "__main__":
    main()
