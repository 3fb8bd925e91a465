"""RULES.md "Team validation" and "Resolution", hand-computed (raid/strike.py, lifecycle.py).

Boss golem: 1000 hp, power + endurance, weak to fire, resists water and wind, weakness pool
[wind, earth], thresholds [10, 20, 40], retaliation every 3, curse limit 2, curse pool
[drain_power, suppress_fire, fortify_fight]. Team max 4, cooldown 60 s, rest "event".
Raid runs from START = 1000 to END = 2000.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from raid.config import Action, Config, Rules
from raid.errors import ErrorCode, Rejection
from raid.leaderboard import Leaderboards
from raid.lifecycle import advance_status, end_raid, status_at
from raid.models import Character, RaidState, RaidStatus
from raid.scoring import ScoringContext
from raid.strike import (
    Breakthrough,
    Retaliation,
    StrikeResult,
    apply_strike,
    changes_scoring,
    decide_strike,
)
from tests.rules.conftest import (
    END,
    START,
    char,
    command,
    make_config,
    make_state,
    roster,
    snapshot,
    strike,
)

A = char("a", {"fire", "striker"}, power=10, endurance=20)  # 30, weak
B = char("b", {"water", "vanguard"}, power=30)  # 30, resisted
C = char("c", {"earth", "mystic"}, power=5, endurance=5)  # 10
D = char("d", {"light", "support"}, power=20)  # 20
E = char("e", {"shadow", "ranger"}, endurance=15)  # 15
ROSTER = roster(A, B, C, D, E)


def hitter(character_id: str, score: int, tags: set[str] | None = None) -> Character:
    """A tagless character whose score alone is ``score`` (multiplier 1)."""
    return char(character_id, tags or {"light"}, power=score)


def try_strike(
    rules: Rules,
    state: RaidState,
    team: list[str],
    now: float,
    *,
    user: str = "u1",
    characters: dict[str, Character] | None = None,
    action: Action = Action.FIGHT,
) -> StrikeResult:
    cmd = command(user, team, characters or ROSTER, action=action)
    return decide_strike(
        rules, state, ScoringContext.build(rules, state.boss), cmd, now, random.Random(1)
    )


# ---------------------------------------------------------------------------------------------
# Resolution


def test_fight_resolution(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    cmd = command("u1", ["a", "b", "c"], ROSTER, strike_id="s1")
    ctx = ScoringContext.build(rules, state.boss)
    result = decide_strike(rules, state, ctx, cmd, START + 5, random.Random(0))
    # base 30 + 30 + 10 = 70, W=1, R=1 -> multiplier 1, score 70, damage floor(70/10) = 7
    assert (result.base, result.multiplier, result.score) == (Fraction(70), Fraction(1), 70)
    assert (result.damage, result.analysis_points) == (7, 0)
    assert (result.boss_hp, result.analysis_total, result.seq) == (993, 0, 1)
    assert result.cooldown_until == START + 5 + 60
    assert result.rest_until is None
    assert dict(result.reward) == {"raid_tokens": 10}
    assert result.reward_key == "strike:s1"
    assert (result.breakthroughs, result.retaliations, result.hp_milestones) == ((), (), ())
    assert not result.victory
    assert not changes_scoring(result)
    assert state.boss.current_hp == 1000  # decide changed nothing
    player = apply_strike(state, result, boards)
    boss = state.boss
    assert (boss.current_hp, boss.strike_count, boss.analysis_points) == (993, 1, 0)
    assert (player.personal_damage, player.damage_seq) == (7, 1)
    assert (player.personal_analysis, player.analysis_seq) == (0, 0)
    assert player.strikes == 1
    assert player.last_strike_time == START + 5
    assert player.cooldown_until == START + 65
    assert player.exhausted == {"a": None, "b": None, "c": None}
    assert player.strike_ids == {"s1": 1}
    assert boards.ranks(player) == (1, None)


def test_analyze_resolution(rules: Rules, state: RaidState) -> None:
    result = strike(rules, state, command("u1", ["a", "d"], ROSTER, action=Action.ANALYZE), START)
    # base 30 + 20 = 50, W=1 -> 1.25, score 62 (62.5), points floor(62/10) = 6
    assert (result.score, result.damage, result.analysis_points) == (62, 0, 6)
    assert dict(result.reward) == {"raid_tokens": 10, "intel": 1}
    player = state.players["u1"]
    assert (state.boss.current_hp, state.boss.analysis_points) == (1000, 6)
    assert (player.personal_analysis, player.analysis_seq, player.personal_damage) == (6, 1, 0)


def test_damage_capped_at_current_hp(rules: Rules, state: RaidState) -> None:
    state.boss.current_hp = 5
    result = try_strike(rules, state, ["a", "b", "c"], START)
    assert result.score == 70  # floor(70/10) = 7, capped to 5
    assert (result.damage, result.boss_hp, result.victory) == (5, 0, True)


def test_zero_outcome_leaves_totals_and_seq(rules: Rules, state: RaidState) -> None:
    weak = roster(char("w", {"light"}, power=9))  # score 9 -> floor(0.9) = 0
    result = strike(rules, state, command("u1", ["w"], weak), START)
    player = state.players["u1"]
    assert result.damage == 0
    assert (player.personal_damage, player.damage_seq, player.strikes) == (0, 0, 1)
    assert state.boss.strike_count == 1


# (id, curses, action, team, expected outcome). Curses are applied through decide_strike.
CURSED: list[tuple[str, tuple[str, ...], Action, list[str], int]] = [
    # stat_drain power .5: a 25, b 15, c 7.5 = 47.5 -> 47 -> 4
    ("stat_drain", ("drain_power",), Action.FIGHT, ["a", "b", "c"], 4),
    # tag_suppression fire .5: a 15 + b 30 + c 10 = 55 -> 5
    ("tag_suppression", ("suppress_fire",), Action.FIGHT, ["a", "b", "c"], 5),
    # dampen .5: [a, d] 50 * 1.125 = 56.25 -> 56 -> 5 (without: 62 -> 6)
    ("dampen_weakness", ("dampen",), Action.FIGHT, ["a", "d"], 5),
    # fortify fight .5: 70 * .5 / 10 = 3.5 -> 3
    ("fortify_fight", ("fortify_fight",), Action.FIGHT, ["a", "b", "c"], 3),
    # fortify analyze 1.5: 70 * 1.5 / 10 = 10.5 -> 10
    ("fortify_analyze", ("fortify_analyze",), Action.ANALYZE, ["a", "b", "c"], 10),
    # dampen + fortify fight: [a, d] 56 * .5 / 10 = 2.8 -> 2
    ("dampen_and_fortify", ("dampen", "fortify_fight"), Action.FIGHT, ["a", "d"], 2),
    # two drains on power .5 * .8: a 24 + b 12 + c 7 = 43 -> 4
    ("two_drains", ("drain_power", "drain_power2"), Action.FIGHT, ["a", "b", "c"], 4),
    # drain power + suppress fire: a 12.5 + b 15 + c 7.5 = 35 -> 3
    ("drain_and_suppression", ("drain_power", "suppress_fire"), Action.FIGHT, ["a", "b", "c"], 3),
]


@pytest.mark.parametrize(
    ("curses", "action", "team", "outcome"), [c[1:] for c in CURSED], ids=[c[0] for c in CURSED]
)
def test_cursed_strike(
    rules: Rules,
    state: RaidState,
    curses: tuple[str, ...],
    action: Action,
    team: list[str],
    outcome: int,
) -> None:
    state.boss.active_curses = curses
    result = try_strike(rules, state, team, START, action=action)
    assert result.damage + result.analysis_points == outcome


@pytest.mark.parametrize(
    ("curses", "cooldown"),
    [((), 60), (("surge",), 90), (("surge", "surge2"), 180)],  # 60, 60*1.5, 60*1.5*2
)
def test_cooldown_surge(
    rules: Rules, state: RaidState, curses: tuple[str, ...], cooldown: float
) -> None:
    state.boss.active_curses = curses
    strike(rules, state, command("u1", ["a"], ROSTER), START + 1)
    assert state.players["u1"].cooldown_until == START + 1 + cooldown
    with pytest.raises(Rejection) as info:
        try_strike(rules, state, ["b"], START + cooldown)
    assert info.value.code is ErrorCode.ON_COOLDOWN
    assert info.value.extra["retry_after"] == 1.0
    assert try_strike(rules, state, ["b"], START + 1 + cooldown).seq == 2


def test_team_cap_makes_large_team_invalid(rules: Rules, state: RaidState) -> None:
    assert try_strike(rules, state, ["a", "b", "c"], START).seq == 1  # 3 <= 4
    state.boss.active_curses = ("cap2",)
    with pytest.raises(Rejection) as info:
        try_strike(rules, state, ["a", "b", "c"], START)
    assert info.value.code is ErrorCode.INVALID_TEAM
    assert info.value.message == "a team has 1 to 2 characters, not 3"
    assert try_strike(rules, state, ["a", "b"], START).seq == 1


# ---------------------------------------------------------------------------------------------
# Validation: codes, order, extra fields, and "a rejected strike changes nothing"


def used(rules: Rules, state: RaidState) -> None:
    """u1 struck with [a, b] at START: on cooldown until START + 60, a and b exhausted."""
    strike(rules, state, command("u1", ["a", "b"], ROSTER), START)


def expire(rules: Rules, state: RaidState) -> None:
    """No preparation; strikes are then sent at or after END."""


def defeat(rules: Rules, state: RaidState) -> None:
    state.boss.current_hp = 1
    strike(rules, state, command("killer", ["a"], ROSTER), START)


def operator_end(rules: Rules, state: RaidState) -> None:
    end_raid(state.boss, START + 1)


def nothing(rules: Rules, state: RaidState) -> None:
    """No preparation."""


Prepare = Callable[[Rules, RaidState], None]

# (id, prepare, team, now, user, code, extra fields expected)
REJECTIONS: list[tuple[str, Prepare, list[str], float, str, ErrorCode, dict[str, Any]]] = [
    ("scheduled", nothing, ["a"], START - 1, "u1", ErrorCode.RAID_NOT_ACTIVE, {}),
    ("expired", expire, ["a"], END, "u1", ErrorCode.RAID_NOT_ACTIVE, {}),
    ("defeated", defeat, ["c"], START + 100, "u2", ErrorCode.RAID_NOT_ACTIVE, {}),
    ("ended", operator_end, ["a"], START + 2, "u1", ErrorCode.RAID_NOT_ACTIVE, {}),
    ("not_active_before_invalid_team", nothing, [], START - 1, "u1", ErrorCode.RAID_NOT_ACTIVE, {}),
    ("empty_team", nothing, [], START, "u1", ErrorCode.INVALID_TEAM, {}),
    ("too_many", nothing, ["a", "b", "c", "d", "e"], START, "u1", ErrorCode.INVALID_TEAM, {}),
    ("duplicates", nothing, ["a", "c", "a"], START, "u1", ErrorCode.INVALID_TEAM, {}),
    ("invalid_team_before_cooldown", used, ["c", "c"], START + 1, "u1", ErrorCode.INVALID_TEAM, {}),
    ("on_cooldown", used, ["c"], START + 30, "u1", ErrorCode.ON_COOLDOWN, {"retry_after": 30.0}),
    # (START + 60) - (START + 59.9991) = 0.0009 s, rounded up to the millisecond
    (
        "on_cooldown_rounds_up",
        used,
        ["c"],
        START + 59.9991,
        "u1",
        ErrorCode.ON_COOLDOWN,
        {"retry_after": 0.001},
    ),
    (
        "cooldown_before_not_owned",
        used,
        ["zz"],
        START + 30,
        "u1",
        ErrorCode.ON_COOLDOWN,
        {"retry_after": 30.0},
    ),
    (
        "not_owned",
        nothing,
        ["a", "zz", "c", "yy"],
        START,
        "u1",
        ErrorCode.CHARACTER_NOT_OWNED,
        {"character_ids": ["zz", "yy"]},
    ),
    (
        "not_owned_before_exhausted",
        used,
        ["a", "zz"],
        START + 60,
        "u1",
        ErrorCode.CHARACTER_NOT_OWNED,
        {"character_ids": ["zz"]},
    ),
    (
        "exhausted",
        used,
        ["c", "b", "d", "a"],
        START + 60,
        "u1",
        ErrorCode.CHARACTER_EXHAUSTED,
        {"character_ids": ["b", "a"]},
    ),
    (
        "exhausted_much_later",
        used,
        ["a"],
        END - 1,
        "u1",
        ErrorCode.CHARACTER_EXHAUSTED,
        {"character_ids": ["a"]},
    ),
]


@pytest.mark.parametrize(
    ("prepare", "team", "now", "user", "code", "extra"),
    [r[1:] for r in REJECTIONS],
    ids=[r[0] for r in REJECTIONS],
)
def test_rejection(
    rules: Rules,
    state: RaidState,
    prepare: Prepare,
    team: list[str],
    now: float,
    user: str,
    code: ErrorCode,
    extra: dict[str, Any],
) -> None:
    prepare(rules, state)
    before = snapshot(state)
    rng = random.Random(7)
    rng_before = rng.getstate()
    ctx = ScoringContext.build(rules, state.boss)
    with pytest.raises(Rejection) as info:
        decide_strike(rules, state, ctx, command(user, team, ROSTER), now, rng)
    assert info.value.code is code
    assert dict(info.value.extra) == extra
    assert info.value.to_reply(9)["code"] == code.value
    assert snapshot(state) == before  # a rejected strike changes nothing
    assert rng.getstate() == rng_before  # and draws nothing


def test_not_active_message_names_status(rules: Rules, state: RaidState) -> None:
    with pytest.raises(Rejection) as info:
        try_strike(rules, state, ["a"], START - 1)
    assert info.value.message == "raid r1 is scheduled"


def test_other_players_are_not_affected_by_cooldown_or_exhaustion(
    rules: Rules, state: RaidState
) -> None:
    used(rules, state)
    # u2 owns characters with the same ids: u1's cooldown and exhaustion are u1's alone
    assert try_strike(rules, state, ["a", "b"], START + 1, user="u2").seq == 2


def test_timed_rest_expires() -> None:
    config = make_config({"player": {"character_rest": 30, "strike_cooldown_s": 0}})
    rules, state = config.rules, make_state(config.bosses["golem"])
    result = strike(rules, state, command("u1", ["a"], ROSTER), START)
    assert result.rest_until == START + 30
    assert result.cooldown_until == START  # cooldown 0
    assert state.players["u1"].exhausted == {"a": START + 30}
    with pytest.raises(Rejection) as info:
        try_strike(rules, state, ["a", "b"], START + 29.5)
    assert info.value.code is ErrorCode.CHARACTER_EXHAUSTED
    assert info.value.extra["character_ids"] == ["a"]
    assert try_strike(rules, state, ["b"], START + 29.5).seq == 2  # others are free
    assert try_strike(rules, state, ["a"], START + 30).seq == 2  # rest over exactly at 30 s


def test_status_follows_the_clock(config: Config) -> None:
    boss = make_state(config.bosses["golem"], now=START - 5).boss
    assert boss.status is RaidStatus.SCHEDULED
    assert status_at(boss, START - 0.5) is RaidStatus.SCHEDULED
    assert status_at(boss, START) is RaidStatus.ACTIVE
    assert advance_status(boss, START - 1) is None
    assert advance_status(boss, START) is RaidStatus.ACTIVE
    assert boss.ended_at is None
    assert advance_status(boss, END) is RaidStatus.EXPIRED
    assert boss.ended_at == END
    assert status_at(boss, START) is RaidStatus.EXPIRED  # final statuses stick
    assert end_raid(boss, END + 5) is RaidStatus.EXPIRED  # already over: unchanged
    assert boss.ended_at == END


def test_raid_created_after_its_end_is_expired(config: Config) -> None:
    boss = make_state(config.bosses["golem"], now=END + 1).boss
    assert (boss.status, boss.ended_at) == (RaidStatus.EXPIRED, END)


def test_end_raid(state: RaidState) -> None:
    assert end_raid(state.boss, START + 3) is RaidStatus.ENDED
    assert state.boss.ended_at == START + 3


# ---------------------------------------------------------------------------------------------
# Breakthroughs


def analyze(rules: Rules, state: RaidState, points: int, user: str, seed: int = 0) -> StrikeResult:
    """An analyze strike by ``user`` worth exactly ``points`` analysis points."""
    team = roster(hitter("h", points * 10))
    cmd = command(user, ["h"], team, action=Action.ANALYZE)
    return strike(rules, state, cmd, START, random.Random(seed))


def test_several_breakthroughs_in_one_strike(rules: Rules, state: RaidState) -> None:
    result = analyze(rules, state, 45, "u1")  # 45 >= 10, 20, 40: three at once
    assert [b.index for b in result.breakthroughs] == [1, 2, 3]
    drawn = [b.weakness for b in result.breakthroughs]
    # pool [wind, earth]: two draws, then the pool is exhausted and the third still counts
    assert sorted(d for d in drawn[:2] if d is not None) == ["earth", "wind"]
    assert drawn[2] is None
    assert changes_scoring(result)
    boss = state.boss
    assert boss.analysis_breakthroughs == 3
    assert boss.weaknesses == ("fire", *drawn[:2])
    assert boss.resistances == ("water",)  # wind was drawn: no longer a resistance


def test_breakthrough_at_exact_threshold_then_next(rules: Rules, state: RaidState) -> None:
    first = analyze(rules, state, 10, "u1")  # exactly 10
    assert [b.index for b in first.breakthroughs] == [1]
    second = analyze(rules, state, 9, "u2")  # 19 < 20
    assert second.breakthroughs == ()
    third = analyze(rules, state, 1, "u3")  # 20
    assert [b.index for b in third.breakthroughs] == [2]
    assert state.boss.analysis_breakthroughs == 2
    assert state.boss.analysis_points == 20


@pytest.mark.parametrize("seed", range(6))
def test_drawn_resistance_stops_being_a_resistance(
    rules: Rules, state: RaidState, seed: int
) -> None:
    state.boss.weakness_pool = ("wind",)  # a resistance of the boss
    result = analyze(rules, state, 10, "u1", seed)
    assert result.breakthroughs == (Breakthrough(1, "wind"),)
    assert state.boss.weaknesses == ("fire", "wind")
    assert state.boss.resistances == ("water",)


def test_breakthrough_with_empty_pool_still_counts(rules: Rules, state: RaidState) -> None:
    state.boss.weakness_pool = ()
    result = analyze(rules, state, 25, "u1")
    assert result.breakthroughs == (Breakthrough(1, None), Breakthrough(2, None))
    assert not changes_scoring(result)
    assert state.boss.analysis_breakthroughs == 2
    assert state.boss.weaknesses == ("fire",)


def test_pool_of_existing_weaknesses_draws_nothing(rules: Rules, state: RaidState) -> None:
    state.boss.weakness_pool = ("fire",)  # already a weakness
    result = analyze(rules, state, 10, "u1")
    assert result.breakthroughs == (Breakthrough(1, None),)


def test_no_breakthrough_after_the_last_threshold(rules: Rules, state: RaidState) -> None:
    analyze(rules, state, 40, "u1")
    assert analyze(rules, state, 1000, "u2").breakthroughs == ()
    assert state.boss.analysis_breakthroughs == 3


def test_breakthrough_weakness_scores_next_strike(rules: Rules, state: RaidState) -> None:
    state.boss.weakness_pool = ("earth",)
    analyze(rules, state, 10, "u1")
    # c (earth) is now weak: 10 * 1.25 = 12.5 -> 12
    assert try_strike(rules, state, ["c"], START, user="u2").score == 12


# ---------------------------------------------------------------------------------------------
# Retaliations (every 3 strikes, limit 2, pool [drain_power, suppress_fire, fortify_fight])


def fight_as(rules: Rules, state: RaidState, user: str, rng: random.Random) -> StrikeResult:
    return strike(rules, state, command(user, ["c"], ROSTER), START, rng)


def test_retaliation_every_n_replaces_oldest(rules: Rules, state: RaidState) -> None:
    rng = random.Random(3)
    pool = set(state.boss.curse_pool)
    results = [fight_as(rules, state, f"u{i}", rng) for i in range(1, 13)]
    for result in results:
        assert bool(result.retaliations) == (result.seq % 3 == 0)
        assert changes_scoring(result) == (result.seq % 3 == 0)
    first, second, third, fourth = (results[i].retaliations[0] for i in (2, 5, 8, 11))
    assert first.replaced is None and first.curse in pool
    assert second.replaced is None and second.curse in pool - {first.curse}
    # limit 2 reached: the only inactive curse is drawn and the oldest one is replaced
    assert third == Retaliation(next(iter(pool - {first.curse, second.curse})), first.curse)
    assert fourth == Retaliation(first.curse, second.curse)
    assert state.boss.active_curses == (third.curse, first.curse)


def test_retaliation_scores_from_the_next_strike(rules: Rules, state: RaidState) -> None:
    state.boss.curse_pool = ("fortify_fight",)
    state.boss.strike_count = 2
    result = try_strike(rules, state, ["a", "b", "c"], START)
    assert result.retaliations == (Retaliation("fortify_fight", None),)
    assert result.damage == 7  # not yet fortified
    apply_strike(state, result)
    assert try_strike(rules, state, ["a", "b", "c"], START, user="u2").damage == 3


def test_all_curses_active_means_no_retaliation(rules: Rules, state: RaidState) -> None:
    state.boss.curse_limit = 3
    state.boss.active_curses = ("drain_power", "suppress_fire", "fortify_fight")
    state.boss.strike_count = 2
    result = try_strike(rules, state, ["c"], START)
    assert result.seq == 3
    assert result.retaliations == ()


def test_curse_limit_zero_means_no_retaliation(rules: Rules, state: RaidState) -> None:
    state.boss.curse_limit = 0
    state.boss.strike_count = 2
    assert try_strike(rules, state, ["c"], START).retaliations == ()


def test_retaliation_every_from_boss_override() -> None:
    config = make_config({"bosses": {"golem": {"retaliation_every": 2, "curse_limit": 1}}})
    rules, state = config.rules, make_state(config.bosses["golem"])
    rng = random.Random(0)
    r1, r2, r3, r4 = (fight_as(rules, state, f"u{i}", rng) for i in range(4))
    assert (r1.retaliations, r3.retaliations) == ((), ())
    assert r2.retaliations[0].replaced is None
    assert r4.retaliations[0].replaced == r2.retaliations[0].curse  # limit 1
    assert state.boss.active_curses == (r4.retaliations[0].curse,)


# ---------------------------------------------------------------------------------------------
# Victory and hp milestones


def test_victory(rules: Rules, state: RaidState) -> None:
    state.boss.current_hp = 7
    result = strike(rules, state, command("u9", ["a", "b", "c"], ROSTER), START + 10)
    assert (result.damage, result.boss_hp, result.victory) == (7, 0, True)
    boss = state.boss
    assert boss.status is RaidStatus.DEFEATED
    assert boss.final_blow_user == "u9"
    assert boss.ended_at == START + 10
    for user, team in (("u9", ["d"]), ("u2", ["a"])):
        with pytest.raises(Rejection) as info:
            try_strike(rules, state, team, START + 500, user=user)
        assert info.value.code is ErrorCode.RAID_NOT_ACTIVE
        assert info.value.message == "raid r1 is defeated"


def test_victory_strike_still_retaliates(rules: Rules, state: RaidState) -> None:
    state.boss.current_hp = 1
    state.boss.strike_count = 2
    result = strike(rules, state, command("u1", ["c"], ROSTER), START)
    assert result.victory and len(result.retaliations) == 1


# (hp before, damage dealt, milestones announced) on a 1000 hp boss
MILESTONES: list[tuple[int, int, tuple[int, ...]]] = [
    (1000, 240, ()),  # 760 > 750
    (1000, 250, (75,)),  # 750 reaches 75 % exactly
    (760, 10, (75,)),
    (750, 1, ()),  # already at 75 %: not crossed again
    (750, 660, (50, 25, 10)),  # 90: three at once
    (1000, 1000, (75, 50, 25, 10)),  # all four on the killing blow
    (101, 1, (10,)),  # 100 = 10 %
    (90, 90, ()),  # below 10 % already
    (501, 1, (50,)),
    (260, 20, (25,)),
]


@pytest.mark.parametrize(("hp", "damage", "milestones"), MILESTONES)
def test_hp_milestones(
    rules: Rules, state: RaidState, hp: int, damage: int, milestones: tuple[int, ...]
) -> None:
    state.boss.current_hp = hp
    team = roster(hitter("h", damage * 10))
    result = try_strike(rules, state, ["h"], START, characters=team)
    assert result.damage == damage
    assert result.hp_milestones == milestones
