"""Turning rule results into journal records (the seam between raid/ and persistence/)."""

from __future__ import annotations

import orjson

from persistence.records import RewardGrant, StrikeRecord
from raid.codec import draws_to_dict, result_to_dict
from raid.rewards import Claim
from raid.strike import StrikeResult


def strike_record(result: StrikeResult) -> StrikeRecord:
    """The journal row of an accepted strike, with its auto-granted strike reward."""
    result_dict = result_to_dict(result)
    return StrikeRecord(
        raid_id=result.raid_id,
        seq=result.seq,
        at=result.at,
        user_id=result.user_id,
        strike_id=result.strike_id,
        action=result.action.value,
        team=result.team,
        base=result_dict["base"],
        multiplier=result_dict["multiplier"],
        score=result.score,
        damage=result.damage,
        analysis_points=result.analysis_points,
        breakthrough=bool(result.breakthroughs),
        retaliation=bool(result.retaliations),
        victory=result.victory,
        draws_json=orjson.dumps(draws_to_dict(result)).decode(),
        result_json=orjson.dumps(result_dict).decode(),
        grant=RewardGrant(
            raid_id=result.raid_id,
            user_id=result.user_id,
            key=result.reward_key,
            bundle=result.reward,
            at=result.at,
        ),
    )


def claim_record(claim: Claim) -> RewardGrant:
    return RewardGrant(
        raid_id=claim.raid_id,
        user_id=claim.user_id,
        key=claim.key,
        bundle=claim.bundle,
        at=claim.at,
    )
