"""Journal lookups of possibly repeated strike_ids, batched, over a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from actors.strike_id_lookups import StrikeIdLookups
from persistence.database import Database
from tests.persistence.helpers import ReadGate, raid_row, strike


class GatedFinds(Database):
    """The real database, whose strike_id reads wait at a gate once they have read."""

    gate: ReadGate | None = None

    async def find_strike_ids(
        self, raid_id: str, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        found = await super().find_strike_ids(raid_id, wanted)
        if self.gate is not None:
            await self.gate.hold()
        return found


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[GatedFinds]:
    db = await GatedFinds.open(tmp_path / "raid.db")
    assert isinstance(db, GatedFinds)
    for raid_id in ("r1", "r2"):
        await db.create_boss_raid(raid_row(raid_id))
    await db.add_raid_strike_logs(
        [strike("r1", n + 1, user_id=f"u{n}", strike_id=f"s{n}") for n in range(0, 40, 2)]
    )
    try:
        yield db
    finally:
        await db.close()


async def test_lookups_wanted_during_a_read_share_the_next_read_of_their_raid(
    gated: GatedFinds,
) -> None:
    lookups = StrikeIdLookups(gated)
    gate = gated.gate = ReadGate()
    first = asyncio.create_task(lookups.seq_of("r1", "u0", "s0"))
    await gate.reached()
    rest = [asyncio.create_task(lookups.seq_of("r1", f"u{n}", f"s{n}")) for n in range(1, 40)]
    elsewhere = asyncio.create_task(lookups.seq_of("r2", "u2", "s2"))  # another raid
    await asyncio.sleep(0)
    gate.open()
    seqs = await asyncio.wait_for(asyncio.gather(first, *rest), 10)
    # Even users struck (seq n + 1); odd ones never did.
    assert seqs == [n + 1 if n % 2 == 0 else None for n in range(40)]
    assert await asyncio.wait_for(elsewhere, 10) is None  # r2's journal is empty
    assert lookups.reads == 3  # u0 alone, then the 39 of r1 together, then r2


async def test_a_caller_that_gives_up_does_not_cancel_the_others(gated: GatedFinds) -> None:
    lookups = StrikeIdLookups(gated)
    gate = gated.gate = ReadGate()
    impatient = asyncio.create_task(lookups.seq_of("r1", "u4", "s4"))
    patient = asyncio.create_task(lookups.seq_of("r1", "u4", "s4"))
    await gate.reached()
    impatient.cancel()
    gate.open()
    assert await asyncio.wait_for(patient, 10) == 5
    assert impatient.cancelled()


async def test_a_failed_read_answers_its_waiters(gated: GatedFinds) -> None:
    lookups = StrikeIdLookups(gated)
    await gated.close()
    with pytest.raises(Exception) as failed:
        await asyncio.wait_for(lookups.seq_of("r1", "u0", "s0"), 10)
    assert not isinstance(failed.value, asyncio.TimeoutError)
