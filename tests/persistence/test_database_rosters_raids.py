"""Rosters and raids."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from persistence import rows
from persistence.database import MAX_USERS_PER_READ, Database
from persistence.errors import DuplicateRaid, RosterConflict
from tests.persistence.helpers import character, raid_row


async def test_upsert_characters_inserts_and_updates(db: Database) -> None:
    ids = await db.upsert_characters(
        [character("c2", "u1"), character("c1", "u1"), character("c9", "u2")]
    )
    assert ids == ["c2", "c1", "c9"]
    renamed = dataclasses.replace(character("c1", "u1"), name="Ayla II", rarity=4)
    assert await db.upsert_characters([renamed]) == ["c1"]

    assert await db.get_user_characters("u1") == [renamed, character("c2", "u1")]
    assert await db.get_user_characters("u2") == [character("c9", "u2")]
    assert await db.get_user_characters("nobody") == []


async def test_characters_round_trip_stats_and_tags(db: Database) -> None:
    row = dataclasses.replace(
        character("c1", "u1"), stats={"spd": 3, "atk": 7}, tags=("water", "mystic")
    )
    await db.upsert_characters([row])
    (loaded,) = await db.get_user_characters("u1")
    assert loaded.stats == {"atk": 7, "spd": 3}
    assert loaded.tags == ("water", "mystic")


async def test_a_character_owned_by_another_user_is_a_conflict(db: Database) -> None:
    await db.upsert_characters([character("c1", "u1"), character("c2", "u1")])
    with pytest.raises(RosterConflict, match="c1, c2") as caught:
        await db.upsert_characters(
            [character("c3", "u2"), character("c2", "u2"), character("c1", "u2")]
        )
    assert caught.value.character_ids == ("c1", "c2")
    assert await db.get_user_characters("u2") == []  # nothing written, not even c3


async def test_a_batch_giving_one_character_to_two_users_is_a_conflict(db: Database) -> None:
    with pytest.raises(RosterConflict, match="c1"):
        await db.upsert_characters([character("c1", "u1"), character("c1", "u2")])
    assert await db.get_user_characters("u1") == []


async def test_an_invalid_rarity_writes_nothing(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        await db.upsert_characters([character("c1", "u1"), character("c2", "u1", rarity=6)])
    assert await db.get_user_characters("u1") == []


async def test_create_and_get_a_raid(db: Database) -> None:
    row = raid_row("raid-1")
    assert await db.create_boss_raid(row) == row
    assert await db.get_boss_raid_by_id("raid-1") == row
    assert await db.get_boss_raid_by_id("raid-2") is None


async def test_creating_an_existing_raid_is_refused(db: Database) -> None:
    await db.create_boss_raid(raid_row("raid-1"))
    with pytest.raises(DuplicateRaid, match="raid-1 already exists"):
        await db.create_boss_raid(raid_row("raid-1", status="scheduled"))
    loaded = await db.get_boss_raid_by_id("raid-1")
    assert loaded is not None
    assert loaded.status == "active"


async def test_list_raids_by_status_oldest_first(db: Database) -> None:
    await db.create_boss_raid(raid_row("b", status="active", created_at=2.0))
    await db.create_boss_raid(raid_row("a", status="active", created_at=3.0))
    await db.create_boss_raid(raid_row("c", status="defeated", created_at=1.0))
    await db.create_boss_raid(raid_row("d", status="scheduled", created_at=4.0))

    assert [r.raid_id for r in await db.list_boss_raids()] == ["c", "b", "a", "d"]
    assert [r.raid_id for r in await db.list_boss_raids({"active", "scheduled"})] == [
        "b",
        "a",
        "d",
    ]
    assert await db.list_boss_raids([]) == []
    with pytest.raises(TypeError, match="not one string"):
        await db.list_boss_raids("active")


async def test_update_raid_state(db: Database) -> None:
    await db.create_boss_raid(raid_row("raid-1"))
    assert await db.update_boss_raid_state("raid-1", status="defeated", ended_at=99.5) == 1
    loaded = await db.get_boss_raid_by_id("raid-1")
    assert loaded == dataclasses.replace(raid_row("raid-1"), status="defeated", ended_at=99.5)

    assert await db.update_boss_raid_state("raid-1", status="active") == 1
    loaded = await db.get_boss_raid_by_id("raid-1")
    assert loaded is not None
    assert loaded.ended_at is None
    assert await db.update_boss_raid_state("nope", status="ended", ended_at=1.0) == 0


async def test_writes_are_visible_to_a_new_process_connection(db: Database, db_path: Path) -> None:
    await db.create_boss_raid(raid_row("raid-1"))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT raid_id, template FROM boss_raids").fetchall() == [
            ("raid-1", '{"total_hp":1000000}')
        ]
    conn.close()


async def test_several_users_characters_are_read_in_one_read(db: Database) -> None:
    await db.upsert_characters(
        [character("c2", "u1"), character("c1", "u1"), character("c9", "u2")]
    )
    found = await db.get_users_characters(["u2", "nobody", "u1"])
    assert found == {
        "u2": [character("c9", "u2")],
        "nobody": [],
        "u1": [character("c1", "u1"), character("c2", "u1")],
    }
    with pytest.raises(ValueError, match="at most"):
        await db.get_users_characters([f"u{n}" for n in range(MAX_USERS_PER_READ + 1)])


async def test_names_and_tags_with_json_characters_survive_the_one_row_read(
    db: Database,
) -> None:
    odd = dataclasses.replace(
        character("c1", "u1"), name='Ay"la \\ ☃', tags=('fi"re', "ü"), stats={"power": 10**9}
    )
    await db.upsert_characters([odd])
    assert await db.get_user_characters("u1") == [odd]


def test_batched_reads_pad_to_a_power_of_two() -> None:
    """Few distinct statement sizes: each connection caches the statements it prepared."""
    assert rows.padded([]) == []
    assert rows.padded(["a"]) == ["a"]
    assert rows.padded(["a", "b", "c"]) == ["a", "b", "c", "c"]
    assert len(rows.padded(list(range(300)))) == 512
    sizes = {len(rows.padded(list(range(n)))) for n in range(1, MAX_USERS_PER_READ + 1)}
    assert sizes == {2**k for k in range(10)}
