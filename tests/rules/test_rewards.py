"""RULES.md "Rewards" (raid/rewards.py).

Test config: strike rewards fight {raid_tokens 10}, analyze {raid_tokens 10, intel 1};
damage milestones 10 {tokens 50} and 100 {tokens 200, gems 20}; analysis milestone 5 {intel 10};
golem breakthrough rewards {gems 1}, {gems 2}, {gems 3}; victory {gems 100}; claim grace 100 s.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from raid.config import Action, Rules
from raid.errors import ErrorCode, Rejection
from raid.lifecycle import end_raid
from raid.models import RaidState, RaidStatus
from raid.rewards import Claim, apply_claim, claimable, claims_open, decide_claim, eligible_rewards
from tests.rules.conftest import END, START, char, command, roster, snapshot, strike

ROSTER = roster(char("a", {"light"}, power=100), char("b", {"light"}, power=10))


def player(
    state: RaidState, user: str = "u1", damage: int = 0, analysis: int = 0, strikes: int = 1
) -> None:
    p = state.player(user)
    p.personal_damage, p.personal_analysis, p.strikes = damage, analysis, strikes


def defeat(state: RaidState, at: float = START + 10) -> None:
    state.boss.current_hp = 0
    state.boss.status = RaidStatus.DEFEATED
    state.boss.ended_at = at


Setup = Callable[[RaidState], None]


def given_(
    *,
    damage: int = 0,
    analysis: int = 0,
    strikes: int = 1,
    breakthroughs: int = 0,
    status: RaidStatus = RaidStatus.ACTIVE,
    exists: bool = True,
) -> Setup:
    """A setup: player u1 with these totals (unless not ``exists``), the boss in ``status``."""

    def setup(state: RaidState) -> None:
        if exists:
            player(state, damage=damage, analysis=analysis, strikes=strikes)
        state.boss.analysis_breakthroughs = breakthroughs
        if status is RaidStatus.DEFEATED:
            defeat(state)
        else:
            state.boss.status = status

    return setup


# (id, setup, key, bundle granted)
ELIGIBLE: list[tuple[str, Setup, str, dict[str, int]]] = [
    ("damage_exact", given_(damage=10), "damage:10", {"tokens": 50}),
    ("damage_high", given_(damage=150), "damage:100", {"tokens": 200, "gems": 20}),
    ("damage_low_while_high", given_(damage=150), "damage:10", {"tokens": 50}),
    ("analysis", given_(analysis=5), "analysis:5", {"intel": 10}),
    ("breakthrough_1", given_(analysis=1, breakthroughs=1), "breakthrough:1", {"gems": 1}),
    ("breakthrough_3", given_(analysis=1, breakthroughs=3), "breakthrough:3", {"gems": 3}),
    ("victory", given_(strikes=1, status=RaidStatus.DEFEATED), "victory", {"gems": 100}),
]

# (id, setup, key); the message is "you are not eligible for <key>"
INELIGIBLE: list[tuple[str, Setup, str]] = [
    ("damage_below", given_(damage=9), "damage:10"),
    ("damage_unknown_threshold", given_(damage=50), "damage:50"),
    ("analysis_below", given_(analysis=4), "analysis:5"),
    ("breakthrough_not_happened", given_(analysis=30, breakthroughs=1), "breakthrough:2"),
    ("breakthrough_no_analysis", given_(damage=30, breakthroughs=3), "breakthrough:1"),
    ("breakthrough_zero", given_(analysis=30, breakthroughs=1), "breakthrough:0"),
    ("victory_active", given_(strikes=3), "victory"),
    ("victory_no_strike", given_(strikes=0, status=RaidStatus.DEFEATED), "victory"),
    ("victory_expired", given_(strikes=3, status=RaidStatus.EXPIRED), "victory"),
    ("unknown_key", given_(damage=1000, analysis=1000), "gold"),
    ("unknown_strike", given_(), "strike:nope"),
    ("unknown_player", given_(exists=False), "damage:10"),
    ("unknown_player_victory", given_(exists=False, status=RaidStatus.DEFEATED), "victory"),
]


@pytest.mark.parametrize(
    ("setup", "key", "bundle"), [e[1:] for e in ELIGIBLE], ids=[e[0] for e in ELIGIBLE]
)
def test_claim_then_already_claimed(
    rules: Rules, state: RaidState, setup: Setup, key: str, bundle: dict[str, int]
) -> None:
    setup(state)
    now = START + 50
    assert claimable(rules, state, "u1", now)[key] == bundle
    claim = decide_claim(rules, state, "u1", key, now)
    assert claim == Claim("r1", "u1", key, claim.bundle, now)
    assert dict(claim.bundle) == bundle
    apply_claim(state, claim)
    assert state.players["u1"].claimed == {key: now}
    assert key not in claimable(rules, state, "u1", now)
    before = snapshot(state)
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u1", key, now + 1)
    assert info.value.code is ErrorCode.ALREADY_CLAIMED
    assert info.value.message == f"{key} was already claimed"
    assert snapshot(state) == before


@pytest.mark.parametrize(
    ("setup", "key"), [e[1:] for e in INELIGIBLE], ids=[e[0] for e in INELIGIBLE]
)
def test_not_eligible(rules: Rules, state: RaidState, setup: Setup, key: str) -> None:
    setup(state)
    before = snapshot(state)
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u1", key, START + 20)
    assert info.value.code is ErrorCode.NOT_ELIGIBLE
    assert info.value.message == f"you are not eligible for {key}"
    assert key not in claimable(rules, state, "u1", START + 20)
    assert snapshot(state) == before


def test_strike_reward_is_granted_and_cannot_be_claimed(rules: Rules, state: RaidState) -> None:
    result = strike(rules, state, command("u1", ["a"], ROSTER, strike_id="s1"), START)
    assert result.reward_key == "strike:s1"
    assert dict(result.reward) == {"raid_tokens": 10}
    assert state.players["u1"].strike_ids == {"s1": 1}
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u1", "strike:s1", START + 1)
    assert info.value.code is ErrorCode.ALREADY_CLAIMED
    # other players cannot claim it
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u2", "strike:s1", START + 1)
    assert info.value.code is ErrorCode.NOT_ELIGIBLE
    result2 = strike(
        rules,
        state,
        command("u1", ["b"], ROSTER, action=Action.ANALYZE, strike_id="s2"),
        START + 60,
    )
    assert dict(result2.reward) == {"raid_tokens": 10, "intel": 1}
    assert not any(k.startswith("strike:") for k in claimable(rules, state, "u1", START + 60))


def test_eligible_rewards_lists_everything(rules: Rules, state: RaidState) -> None:
    player(state, damage=100, analysis=5, strikes=2)
    state.boss.analysis_breakthroughs = 2
    defeat(state)
    assert {k: dict(v) for k, v in eligible_rewards(rules, state, state.players["u1"]).items()} == {
        "damage:10": {"tokens": 50},
        "damage:100": {"tokens": 200, "gems": 20},
        "analysis:5": {"intel": 10},
        "breakthrough:1": {"gems": 1},
        "breakthrough:2": {"gems": 2},
        "victory": {"gems": 100},
    }


def end_by_victory(state: RaidState) -> float:
    defeat(state, START + 10)
    return START + 10


def end_by_operator(state: RaidState) -> float:
    end_raid(state.boss, START + 20)
    return START + 20


def end_by_clock(state: RaidState) -> float:
    return END  # status_at turns active into expired at END; ended_at stays None


@pytest.mark.parametrize("ending", [end_by_victory, end_by_operator, end_by_clock])
def test_claim_grace_after_end(
    rules: Rules, state: RaidState, ending: Callable[[RaidState], float]
) -> None:
    player(state, damage=10)
    ended = ending(state)
    grace = state.boss.settings.claim_grace_s
    assert grace == 100
    assert claims_open(state, ended + grace)
    claim = decide_claim(rules, state, "u1", "damage:10", ended + grace)  # last moment of grace
    assert dict(claim.bundle) == {"tokens": 50}
    assert claimable(rules, state, "u1", ended + 1)["damage:10"] == claim.bundle
    assert not claims_open(state, ended + grace + 0.001)
    assert claimable(rules, state, "u1", ended + grace + 1) == {}
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u1", "damage:10", ended + grace + 1)
    assert info.value.code is ErrorCode.NOT_ELIGIBLE
    assert info.value.message == "claims for this raid are closed"


def test_no_claims_before_the_raid_starts(rules: Rules, state: RaidState) -> None:
    player(state, damage=10)
    assert not claims_open(state, START - 1)
    assert claimable(rules, state, "u1", START - 1) == {}
    with pytest.raises(Rejection) as info:
        decide_claim(rules, state, "u1", "damage:10", START - 1)
    assert info.value.code is ErrorCode.NOT_ELIGIBLE
    assert info.value.message == "claims for this raid are closed"


def test_claims_open_while_active(state: RaidState) -> None:
    assert claims_open(state, START)
    assert claims_open(state, END - 0.001)


def test_claimable_for_unknown_player_is_empty(rules: Rules, state: RaidState) -> None:
    assert claimable(rules, state, "ghost", START) == {}
