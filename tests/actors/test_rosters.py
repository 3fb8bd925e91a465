"""The roster cache over a real database: batched reads, grants racing reads, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from actors.rosters import RosterCache
from persistence.database import Database
from persistence.records import CharacterRow
from tests.persistence.helpers import ReadGate, character


class GatedReads(Database):
    """The real database, whose character reads wait at a gate once they have read."""

    gate: ReadGate | None = None

    async def get_users_characters(self, user_ids: Sequence[str]) -> dict[str, list[CharacterRow]]:
        found = await super().get_users_characters(user_ids)
        if self.gate is not None:
            await self.gate.hold()
        return found


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[GatedReads]:
    db = await GatedReads.open(tmp_path / "raid.db")
    assert isinstance(db, GatedReads)
    await db.upsert_characters([character(f"c{n}", f"u{n}") for n in range(40)])
    try:
        yield db
    finally:
        await db.close()


async def test_rosters_wanted_while_a_read_is_under_way_share_the_next_read(
    gated: GatedReads,
) -> None:
    cache = RosterCache(gated, size=100)
    gate = gated.gate = ReadGate()
    first = asyncio.create_task(cache.get("u0"))
    await gate.reached()
    rest = [asyncio.create_task(cache.get(f"u{n}")) for n in range(1, 40)]
    again = asyncio.create_task(cache.get("u5"))  # wanted twice: read once
    await asyncio.sleep(0)
    gate.open()
    rosters = await asyncio.wait_for(asyncio.gather(first, *rest, again), 10)
    assert [set(roster) for roster in rosters[:40]] == [{f"c{n}"} for n in range(40)]
    assert rosters[40] is rosters[5]
    assert cache.reads == 2  # u0 alone, then the 39 that queued behind it
    assert len(cache) == 40 and cache.cached("u7") is not None


async def test_a_roster_forgotten_during_its_read_is_not_kept_and_read_again(
    gated: GatedReads,
) -> None:
    cache = RosterCache(gated, size=100)
    gate = gated.gate = ReadGate()
    before = asyncio.create_task(cache.get("u1"))
    await gate.reached()
    await gated.upsert_characters([character("c1b", "u1")])  # a grant committed...
    cache.forget("u1")  # ...and cleared the cache while the old read was under way
    after = asyncio.create_task(cache.get("u1"))
    await asyncio.sleep(0)
    gate.open()
    assert set(await asyncio.wait_for(before, 10)) == {"c1"}  # answered, the old roster
    assert set(await asyncio.wait_for(after, 10)) == {"c1", "c1b"}  # a read of its own
    cached = cache.cached("u1")
    assert cached is not None and set(cached) == {"c1", "c1b"}


async def test_a_caller_that_gives_up_does_not_cancel_the_others(gated: GatedReads) -> None:
    cache = RosterCache(gated, size=100)
    gate = gated.gate = ReadGate()
    impatient = asyncio.create_task(cache.get("u3"))
    patient = asyncio.create_task(cache.get("u3"))
    await gate.reached()
    impatient.cancel()
    gate.open()
    assert set(await asyncio.wait_for(patient, 10)) == {"c3"}
    assert impatient.cancelled()


async def test_the_cache_keeps_at_most_its_size(gated: GatedReads) -> None:
    cache = RosterCache(gated, size=3)
    for n in range(6):
        await cache.get(f"u{n}")
    assert len(cache) == 3
    assert cache.cached("u0") is None and cache.cached("u5") is not None


async def test_a_failed_read_answers_every_waiter(
    gated: GatedReads,
) -> None:
    cache = RosterCache(gated, size=100)
    await gated.close()
    with pytest.raises(Exception) as failed:
        await asyncio.wait_for(asyncio.gather(cache.get("u1"), cache.get("u2")), 10)
    assert not isinstance(failed.value, asyncio.TimeoutError)


async def test_rosters_read_together_share_equal_names_stats_and_tags(gated: GatedReads) -> None:
    """Characters of a kind share one name, stat map and tag set: a cached roster of many
    characters then costs little more than its ids."""
    odd = CharacterRow("odd", "u1", "Bram", 2, {"atk": 99, "def": 80}, ("water",))
    await gated.upsert_characters([character("c1b", "u1"), odd])
    cache = RosterCache(gated, size=100)
    first, second = await asyncio.wait_for(asyncio.gather(cache.get("u1"), cache.get("u2")), 10)
    one, other, mine = first["c1"], second["c2"], first["c1b"]
    assert one.stats is other.stats is mine.stats and one.tags is other.tags is mine.tags
    assert one.name is other.name
    assert dict(one.stats) == {"atk": 120, "def": 80} and one.tags == {"fire", "striker"}
    assert dict(first["odd"].stats) == {"atk": 99, "def": 80} and first["odd"].tags == {"water"}
    assert first["odd"].name == "Bram" and first["odd"].rarity == 2
