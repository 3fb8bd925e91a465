"""Reward eligibility and claims (RULES.md, "Rewards").

Keys: ``strike:<strike_id>`` (granted with each strike), ``damage:<threshold>``,
``analysis:<threshold>``, ``breakthrough:<k>`` and ``victory`` (claimable). A claim is decided
here (``decide_claim``, pure, may raise ``Rejection``) and committed by ``apply_claim``.
"""

from __future__ import annotations

from dataclasses import dataclass

from raid.config import Bundle, Rules
from raid.errors import ErrorCode, Rejection
from raid.lifecycle import status_at
from raid.models import PlayerRaidState, RaidState, RaidStatus
from raid.strike_ids import maybe_older_repeat

STRIKE_PREFIX = "strike:"


@dataclass(frozen=True, slots=True)
class Claim:
    raid_id: str
    user_id: str
    key: str
    bundle: Bundle
    at: float


def eligible_rewards(rules: Rules, state: RaidState, player: PlayerRaidState) -> dict[str, Bundle]:
    """Every claimable key the player qualifies for now (claimed or not)."""
    boss = state.boss
    out: dict[str, Bundle] = {}
    for milestone in rules.damage_milestones:
        if player.personal_damage >= milestone.threshold:
            out[f"damage:{milestone.threshold}"] = milestone.reward
    for milestone in rules.analysis_milestones:
        if player.personal_analysis >= milestone.threshold:
            out[f"analysis:{milestone.threshold}"] = milestone.reward
    if player.personal_analysis > 0:
        for k in range(1, boss.analysis_breakthroughs + 1):
            out[f"breakthrough:{k}"] = boss.analysis_reward_pool[k - 1]
    if boss.status is RaidStatus.DEFEATED and player.strikes > 0:
        out["victory"] = boss.victory_cache
    return out


def claims_open(state: RaidState, now: float) -> bool:
    """Claims are accepted while the raid is active and for claim_grace_s after it ends."""
    boss = state.boss
    status = status_at(boss, now)
    if status is RaidStatus.ACTIVE:
        return True
    if not status.is_final:
        return False
    ended_at = boss.ended_at if boss.ended_at is not None else boss.event_end
    return now <= ended_at + boss.settings.claim_grace_s


def claimable(rules: Rules, state: RaidState, user_id: str, now: float) -> dict[str, Bundle]:
    """Eligible, unclaimed keys the player may claim at ``now``."""
    player = state.players.get(user_id)
    if player is None or not claims_open(state, now):
        return {}
    return {
        key: bundle
        for key, bundle in eligible_rewards(rules, state, player).items()
        if key not in player.claimed
    }


def decide_claim(rules: Rules, state: RaidState, user_id: str, key: str, now: float) -> Claim:
    """Validate a claim of ``key``; raise ``Rejection`` (already_claimed, not_eligible)."""
    player = state.players.get(user_id)
    if player is not None and (
        key in player.claimed
        or (key.startswith(STRIKE_PREFIX) and _was_struck(player, key[len(STRIKE_PREFIX) :]))
    ):
        raise Rejection(ErrorCode.ALREADY_CLAIMED, f"{key} was already claimed")
    if not claims_open(state, now):
        raise Rejection(ErrorCode.NOT_ELIGIBLE, "claims for this raid are closed")
    bundle = None if player is None else eligible_rewards(rules, state, player).get(key)
    if bundle is None:
        raise Rejection(ErrorCode.NOT_ELIGIBLE, f"you are not eligible for {key}")
    return Claim(state.boss.raid_id, user_id, key, bundle, now)


def _was_struck(player: PlayerRaidState, strike_id: str) -> bool:
    """A strike_id of the player's (its reward was granted with the strike): in the window of
    latest ids, or (almost surely) among the older ones of raid.strike_ids' filter."""
    return strike_id in player.strike_ids or maybe_older_repeat(player, strike_id)


def apply_claim(state: RaidState, claim: Claim) -> None:
    state.player(claim.user_id).claimed[claim.key] = claim.at
