"""Record factories and timing constants shared by the persistence tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

from persistence.records import CharacterRow, RaidRow, RewardGrant, StrikeRecord

# Every wait in these tests has a deadline; slow machines scale it with this variable.
TIMEOUT_SCALE = float(os.environ.get("RAID_TEST_TIMEOUT_SCALE", "1"))
TIMEOUT = 10.0 * TIMEOUT_SCALE


class ReadGate:
    """Holds a database read once it has read, until opened: a test can queue more work
    behind a read that is under way (the batched reads of actors/read_batches.py)."""

    def __init__(self) -> None:
        self._reached = asyncio.Event()
        self._open = asyncio.Event()

    async def hold(self) -> None:
        """Called by the gated read: wait here until ``open``."""
        self._reached.set()
        await self._open.wait()

    async def reached(self) -> None:
        """Until a read is held at the gate."""
        await asyncio.wait_for(self._reached.wait(), TIMEOUT)

    def open(self) -> None:
        self._open.set()


def ACTIVE(raid_state_json: str) -> tuple[str, float | None]:
    """``status_of`` for restores in tests whose raid state JSON is a placeholder."""
    return "active", None


def raid_row(
    raid_id: str = "raid-1", *, status: str = "active", created_at: float = 1.0
) -> RaidRow:
    return RaidRow(
        raid_id=raid_id,
        boss_id="leviathan",
        name="The Leviathan",
        status=status,
        event_start=0.0,
        event_end=86_400.0,
        created_at=created_at,
        ended_at=None,
        template_json='{"total_hp":1000000}',
        rng_seed=42,
    )


def character(
    character_id: str, user_id: str, *, name: str = "Ayla", rarity: int = 5
) -> CharacterRow:
    return CharacterRow(
        character_id=character_id,
        user_id=user_id,
        name=name,
        rarity=rarity,
        stats={"atk": 120, "def": 80},
        tags=("fire", "striker"),
    )


def grant(
    raid_id: str, user_id: str, key: str, bundle: Mapping[str, int] | None = None, at: float = 5.0
) -> RewardGrant:
    return RewardGrant(
        raid_id=raid_id, user_id=user_id, key=key, bundle=bundle or {"gold": 100}, at=at
    )


def strike(
    raid_id: str,
    seq: int,
    *,
    user_id: str = "user-1",
    strike_id: str | None = None,
    with_grant: bool = True,
    result_json: str = '{"damage":1234}',
) -> StrikeRecord:
    strike_id = strike_id if strike_id is not None else f"s{seq}"
    return StrikeRecord(
        raid_id=raid_id,
        seq=seq,
        at=100.0 + seq,
        user_id=user_id,
        strike_id=strike_id,
        action="fight",
        team=("c1", "c2", "c3"),
        base="2469/2",
        multiplier="5/4",
        score=1543,
        damage=154,
        analysis_points=0,
        breakthrough=False,
        retaliation=seq % 50 == 0,
        victory=False,
        draws_json='{"weakness":[]}',
        result_json=result_json,
        grant=grant(raid_id, user_id, f"strike:{strike_id}", {"gold": 10}, at=100.0 + seq)
        if with_grant
        else None,
    )
