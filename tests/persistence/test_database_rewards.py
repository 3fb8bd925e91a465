"""Reward claims, the once-only guarantee and the backend's delivery feed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from persistence.database import Database
from persistence.errors import UnknownRaid
from persistence.records import ClaimStatus
from tests.persistence.helpers import grant, raid_row, strike


async def test_a_reward_is_claimed_once(db: Database, raid_id: str) -> None:
    reward = grant(raid_id, "u1", "damage:1000", {"gems": 5})
    assert await db.claim_reward(reward) is ClaimStatus.CLAIMED
    assert await db.claim_reward(reward) is ClaimStatus.ALREADY_CLAIMED
    assert await db.claim_reward(grant(raid_id, "u2", "damage:1000")) is ClaimStatus.CLAIMED
    assert await db.list_player_rewards(raid_id, "u1") == [reward]


async def test_concurrent_claims_of_one_key_grant_it_once(db: Database, raid_id: str) -> None:
    first, second = (
        grant(raid_id, "u1", "victory", {"gold": 1}),
        grant(raid_id, "u1", "victory", {"gold": 2}),
    )
    outcomes = await asyncio.gather(db.claim_reward(first), db.claim_reward(second))
    assert sorted(o.value for o in outcomes) == ["already_claimed", "claimed"]
    assert len(await db.list_player_rewards(raid_id, "u1")) == 1


async def test_claims_through_two_databases_on_one_file_grant_once(
    db: Database, raid_id: str, db_path: Path
) -> None:
    other = await Database.open(db_path)
    try:
        outcomes = await asyncio.gather(
            *(
                database.claim_reward(grant(raid_id, "u1", f"breakthrough:{k}"))
                for k in range(1, 21)
                for database in (db, other)
            )
        )
    finally:
        await other.close()
    assert outcomes.count(ClaimStatus.CLAIMED) == 20
    assert outcomes.count(ClaimStatus.ALREADY_CLAIMED) == 20
    assert len(await db.list_player_rewards(raid_id, "u1")) == 20


async def test_a_claim_in_an_unknown_raid_is_refused(db: Database) -> None:
    with pytest.raises(UnknownRaid, match="ghost"):
        await db.claim_reward(grant("ghost", "u1", "victory"))


async def test_strike_rewards_are_not_claimable(db: Database, raid_id: str) -> None:
    with pytest.raises(ValueError, match="granted with their strike"):
        await db.claim_reward(grant(raid_id, "u1", "strike:s1"))


async def test_player_rewards_list_grants_and_claims_in_order(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, 1, user_id="u1")])
    await db.claim_reward(grant(raid_id, "u1", "analysis:50"))
    await db.add_raid_strike_logs([strike(raid_id, 2, user_id="u1")])
    await db.claim_reward(grant(raid_id, "u2", "analysis:50"))
    assert [g.key for g in await db.list_player_rewards(raid_id, "u1")] == [
        "strike:s1",
        "analysis:50",
        "strike:s2",
    ]


async def test_get_claims_can_leave_out_strike_grants(db: Database, raid_id: str) -> None:
    await db.create_boss_raid(raid_row("raid-2"))
    await db.add_raid_strike_logs([strike(raid_id, 1, user_id="u1")])
    await db.claim_reward(grant(raid_id, "u1", "victory"))
    await db.claim_reward(grant(raid_id, "u2", "damage:10"))
    await db.claim_reward(grant("raid-2", "u2", "damage:10"))
    assert [(g.user_id, g.key) for g in await db.get_claims(raid_id)] == [
        ("u1", "strike:s1"),
        ("u1", "victory"),
        ("u2", "damage:10"),
    ]
    assert [g.key for g in await db.get_claims(raid_id, exclude_prefix="strike:")] == [
        "victory",
        "damage:10",
    ]
    # The prefix is compared literally: LIKE wildcards mean nothing here.
    assert len(await db.get_claims(raid_id, exclude_prefix="%")) == 3


async def test_pending_rewards_feed_and_acknowledgement(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, 1, user_id="u1")])
    await db.claim_reward(grant(raid_id, "u1", "victory", {"gold": 500}))
    await db.claim_reward(grant(raid_id, "u2", "damage:10"))

    pending = await db.pending_rewards()
    assert [(p.user_id, p.key) for p in pending] == [
        ("u1", "strike:s1"),
        ("u1", "victory"),
        ("u2", "damage:10"),
    ]
    assert pending[1].bundle == {"gold": 500}
    assert [p.key for p in await db.pending_rewards(limit=1)] == ["strike:s1"]

    assert await db.ack_rewards([pending[0].id, pending[1].id]) == 2
    assert await db.ack_rewards([pending[0].id, pending[2].id, 999_999]) == 1
    assert await db.ack_rewards([]) == 0
    assert await db.pending_rewards() == []


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_pending_rewards_limit_is_bounded(db: Database, limit: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 1000"):
        await db.pending_rewards(limit=limit)


async def test_pending_rewards_accepts_the_limit_bounds(db: Database) -> None:
    assert await db.pending_rewards(limit=1) == []
    assert await db.pending_rewards(limit=1000) == []
