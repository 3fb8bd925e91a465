"""The strike journal as stored by Database (the JournalWriter has its own tests)."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from persistence import rows
from persistence.database import MAX_STRIKE_IDS_PER_READ, Database
from tests.persistence.helpers import grant, raid_row, strike


async def test_strikes_round_trip_with_their_grants(db: Database, raid_id: str) -> None:
    records = [strike(raid_id, 1), strike(raid_id, 2, with_grant=False, user_id="user-2")]
    await db.add_raid_strike_logs(records)
    assert await db.get_raid_strike_logs_by_raid(raid_id) == records
    assert await db.get_strike_log(raid_id, 1) == records[0]
    assert await db.get_strike_log(raid_id, 3) is None


async def test_every_field_survives_storage(db: Database, raid_id: str) -> None:
    record = dataclasses.replace(
        strike(raid_id, 1),
        action="analyze",
        team=("z", "a"),
        breakthrough=True,
        retaliation=True,
        victory=True,
        analysis_points=77,
        draws_json='{"curse":"stat_drain"}',
    )
    await db.add_raid_strike_logs([record])
    (loaded,) = await db.get_raid_strike_logs_by_raid(raid_id)
    assert loaded == record
    assert loaded.team == ("z", "a")
    assert loaded.breakthrough is True


async def test_logs_are_paged_by_seq(db: Database, raid_id: str) -> None:
    await db.create_boss_raid(raid_row("raid-2"))
    await db.add_raid_strike_logs(
        [strike(raid_id, seq) for seq in range(1, 11)] + [strike("raid-2", 1)]
    )
    first = await db.get_raid_strike_logs_by_raid(raid_id, limit=4)
    assert [r.seq for r in first] == [1, 2, 3, 4]
    rest = await db.get_raid_strike_logs_by_raid(raid_id, after_seq=first[-1].seq)
    assert [r.seq for r in rest] == [5, 6, 7, 8, 9, 10]
    assert await db.get_raid_strike_logs_by_raid(raid_id, after_seq=10) == []
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await db.get_raid_strike_logs_by_raid(raid_id, limit=0)


async def test_find_a_strike_by_its_strike_id(db: Database, raid_id: str) -> None:
    mine = strike(raid_id, 1, user_id="u1", strike_id="abc")
    theirs = strike(raid_id, 2, user_id="u2", strike_id="abc")
    await db.add_raid_strike_logs([mine, theirs])
    found = await db.find_strike_ids(raid_id, [("u1", "abc"), ("u2", "abc"), ("u1", "zzz")])
    assert found == {("u1", "abc"): 1, ("u2", "abc"): 2}  # per player: theirs is not mine
    assert await db.get_strike_log(raid_id, found["u1", "abc"]) == mine
    assert await db.get_strike_log(raid_id, found["u2", "abc"]) == theirs


async def test_strikes_and_claims_commit_together(db: Database, raid_id: str) -> None:
    claim = grant(raid_id, "user-1", "damage:1000")
    await db.add_raid_strike_logs([strike(raid_id, 1)], [claim])
    assert [g.key for g in await db.list_player_rewards(raid_id, "user-1")] == [
        "strike:s1",
        "damage:1000",
    ]


async def test_claims_alone_can_be_journaled(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([], [grant(raid_id, "user-1", "victory")])
    assert [g.key for g in await db.get_claims(raid_id)] == ["victory"]


async def test_a_duplicate_seq_writes_nothing(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, 1)])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await db.add_raid_strike_logs(
            [strike(raid_id, 2), strike(raid_id, 1, strike_id="again")],
            [grant(raid_id, "user-1", "victory")],
        )
    assert [r.seq for r in await db.get_raid_strike_logs_by_raid(raid_id)] == [1]
    assert [g.key for g in await db.get_claims(raid_id)] == ["strike:s1"]


async def test_a_duplicate_claim_in_the_journal_writes_nothing(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([], [grant(raid_id, "user-1", "victory")])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        await db.add_raid_strike_logs([strike(raid_id, 1)], [grant(raid_id, "user-1", "victory")])
    assert await db.get_raid_strike_logs_by_raid(raid_id) == []


async def test_strikes_of_an_unknown_raid_are_refused(db: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        await db.add_raid_strike_logs([strike("ghost", 1)])


async def test_a_grant_must_belong_to_its_strike(db: Database, raid_id: str) -> None:
    stray = dataclasses.replace(strike(raid_id, 1), grant=grant(raid_id, "someone-else", "k"))
    with pytest.raises(ValueError, match="not the strike's"):
        await db.add_raid_strike_logs([stray])


async def test_strike_rewards_cannot_be_journaled_as_claims(db: Database, raid_id: str) -> None:
    with pytest.raises(ValueError, match="granted with their strike"):
        await db.add_raid_strike_logs([], [grant(raid_id, "u1", "strike:s1")])


async def test_an_empty_append_does_nothing(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([])
    assert await db.get_raid_strike_logs_by_raid(raid_id) == []


async def test_strike_ids_are_found_many_at_once_through_the_index(
    db: Database, raid_id: str
) -> None:
    await db.create_boss_raid(raid_row("raid-2"))
    await db.add_raid_strike_logs(
        [
            strike(raid_id, 1, user_id="u1", strike_id="abc"),
            strike(raid_id, 2, user_id="u2", strike_id="abc"),
            strike("raid-2", 1, user_id="u1", strike_id="other-raid"),
        ]
    )
    wanted = [("u1", "abc"), ("u2", "abc"), ("u1", "zzz"), ("u1", "other-raid")]
    assert await db.find_strike_ids(raid_id, wanted) == {("u1", "abc"): 1, ("u2", "abc"): 2}
    assert await db.find_strike_ids(raid_id, []) == {}
    with pytest.raises(ValueError, match="at most"):
        await db.find_strike_ids(
            raid_id, [("u", str(n)) for n in range(MAX_STRIKE_IDS_PER_READ + 1)]
        )
    # Each pair is an index probe, whatever the size of the raid's journal.
    plan = db_plan(db.path, raid_id)
    assert "USING INDEX raid_strike_logs_strike_id" in plan, plan


def db_plan(path: str, raid_id: str) -> str:
    """The query plan of ``find_strike_ids`` for two pairs."""
    with sqlite3.connect(path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + rows.strike_ids_as_one_row(2), ("u", "a", "u", "b", raid_id)
        )
        return " | ".join(row[3] for row in plan)
