"""RULES.md "Score", hand-computed (raid/scoring.py).

Boss golem: dominant stats power + endurance, weak to fire, resists water and wind.
Defaults: weakness_bonus 0.25, resistance_penalty 0.25, clamp [0.25, 3], divisors 10.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from raid.config import Action, Curse, CurseKind, Rules
from raid.models import Character, RaidState
from raid.scoring import ScoringContext
from tests.rules.conftest import char, with_scoring

# contrib = power + endurance (no curses)
A = char("a", {"fire", "striker"}, power=10, endurance=20)  # 30, weak (fire)
B = char("b", {"water", "vanguard"}, power=30)  # 30, resisted (water)
C = char("c", {"earth", "mystic"}, power=5, endurance=5)  # 10, neutral
E = char("e", {"water", "wind"}, power=40)  # 40, resisted by two tags
F = char("f", {"fire", "ranger"}, power=10)  # 10, weak
WR = char("wr", {"fire", "water"}, endurance=8)  # 8, weak and resisted
ODD = char("odd", {"light"}, power=3, agility=100, intellect=100, charm=7)  # 3: only dominant stats


def context(
    rules: Rules,
    state: RaidState,
    curses: tuple[str, ...] = (),
    weaknesses: tuple[str, ...] | None = None,
    resistances: tuple[str, ...] | None = None,
) -> ScoringContext:
    boss = state.boss
    boss.active_curses = curses
    if weaknesses is not None:
        boss.weaknesses = weaknesses
    if resistances is not None:
        boss.resistances = resistances
    return ScoringContext.build(rules, boss)


Fr = Fraction
Team = list[Character]
Tags = tuple[str, ...]

# (id, team, curses, weaknesses or None for the boss's, base, W, R, multiplier, score)
SCORES: list[tuple[str, Team, Tags, Tags | None, Fraction, int, int, Fraction, int]] = [
    # base 30+30+10 = 70; W=1 (a), R=1 (b); mult 1 + .25 - .25 = 1; score 70
    ("neutral", [A, B, C], (), None, Fr(70), 1, 1, Fr(1), 70),
    # base 30; W=1; 1.25 * 30 = 37.5 -> floor 37
    ("floor", [A], (), None, Fr(30), 1, 0, Fr(5, 4), 37),
    # a has two weak tags (fire, striker) but counts once: mult 1.25, 37
    ("weak_once", [A], (), ("fire", "striker"), Fr(30), 1, 0, Fr(5, 4), 37),
    # e has two resisted tags (water, wind) but counts once: mult .75 * 40 = 30
    ("resisted_once", [E], (), None, Fr(40), 0, 1, Fr(3, 4), 30),
    # wr is weak and resisted: 1 + .25 - .25 = 1; 8
    ("weak_and_resisted", [WR], (), None, Fr(8), 1, 1, Fr(1), 8),
    # only power/endurance count: 3 (agility/intellect/charm ignored)
    ("dominant_only", [ODD], (), None, Fr(3), 0, 0, Fr(1), 3),
    # two resisted: 1 - .5 = .5; base 30+40 = 70 -> 35
    ("two_resisted", [B, E], (), None, Fr(70), 0, 2, Fr(1, 2), 35),
    # stat_drain power .5: a 5+20=25, b 15, c 2.5+5=7.5; base 47.5 * 1 -> 47
    ("stat_drain", [A, B, C], ("drain_power",), None, Fr(95, 2), 1, 1, Fr(1), 47),
    # stat_drain on a non-dominant stat (charm) changes nothing: 70
    ("drain_other_stat", [A, B, C], ("drain_charm",), None, Fr(70), 1, 1, Fr(1), 70),
    # two stat_drains on power multiply: .5*.8 = .4: a 4+20, b 12, c 2+5: base 43
    ("two_drains", [A, B, C], ("drain_power", "drain_power2"), None, Fr(43), 1, 1, Fr(1), 43),
    # drains on both dominant stats: a 5+10, b 15, c 2.5+2.5: 35
    ("drains_two_stats", [A, B, C], ("drain_power", "drain_end"), None, Fr(35), 1, 1, Fr(1), 35),
    # tag_suppression fire .5: a 15, b 30, c 10: 55
    ("tag_suppression", [A, B, C], ("suppress_fire",), None, Fr(55), 1, 1, Fr(1), 55),
    # stat_drain power .5 + suppression fire .5: a (5+20)*.5 = 12.5, b 15, c 7.5: 35
    ("drain_suppress", [A, B, C], ("drain_power", "suppress_fire"), None, Fr(35), 1, 1, Fr(1), 35),
    # two suppressions on a (fire .5, striker .75): 30*.375 = 11.25; W=1: *1.25 = 14.06 -> 14
    (
        "two_suppress",
        [A],
        ("suppress_fire", "suppress_striker"),
        None,
        Fr(45, 4),
        1,
        0,
        Fr(5, 4),
        14,
    ),
    # dampen_weakness .5: bonus .125; [a, c] base 40, W=1: 1.125 * 40 = 45
    ("dampen_weakness", [A, C], ("dampen",), None, Fr(40), 1, 0, Fr(9, 8), 45),
    # curses that do not touch the score: fortify, team_cap, cooldown_surge: 70
    ("other_curses", [A, B, C], ("fortify_fight", "cap2", "surge"), None, Fr(70), 1, 1, Fr(1), 70),
]


@pytest.mark.parametrize(
    ("team", "curses", "weaknesses", "base", "weak", "resisted", "multiplier", "score"),
    [s[1:] for s in SCORES],
    ids=[s[0] for s in SCORES],
)
def test_score(
    rules: Rules,
    state: RaidState,
    team: list[Character],
    curses: tuple[str, ...],
    weaknesses: tuple[str, ...] | None,
    base: Fraction,
    weak: int,
    resisted: int,
    multiplier: Fraction,
    score: int,
) -> None:
    scored = context(rules, state, curses, weaknesses).score(team)
    assert scored.base == base
    assert (scored.weak_members, scored.resisted_members) == (weak, resisted)
    assert scored.multiplier == multiplier
    assert scored.score == score


def test_contribution_is_exact(rules: Rules, state: RaidState) -> None:
    ctx = context(rules, state, ("drain_power", "suppress_striker"))
    # a: (10*.5 + 20) * .75 = 18.75
    assert ctx.contribution(A) == Fraction(75, 4)
    # b: 30 * .5 = 15 (not a striker)
    assert ctx.contribution(B) == 15


# (id, scoring changes, team, multiplier, score)
CLAMPS: list[tuple[str, dict[str, Fraction], Team, Fraction, int]] = [
    # bonus 1.5, W=2: 1 + 3 = 4 -> clamped to max 3; base 30+10 = 40 -> 120
    ("max", {"weakness_bonus": Fr(3, 2)}, [A, F], Fr(3), 120),
    # bonus 1, W=2: 1 + 2 = 3 = max exactly; 120
    ("at_max", {"weakness_bonus": Fr(1)}, [A, F], Fr(3), 120),
    # penalty .5, R=2: 1 - 1 = 0 -> clamped to min .25; base 70 -> 17.5 -> 17
    ("min", {"resistance_penalty": Fr(1, 2)}, [B, E], Fr(1, 4), 17),
    # penalty 1, R=2: 1 - 2 = -1 -> .25 (never negative); 17
    ("below_zero", {"resistance_penalty": Fr(1)}, [B, E], Fr(1, 4), 17),
    # own clamp [.5, 1.1]: W=2 at .25: 1.5 -> 1.1; 40 * 1.1 = 44
    (
        "custom_max",
        {"multiplier_min": Fr(1, 2), "multiplier_max": Fr(11, 10)},
        [A, F],
        Fr(11, 10),
        44,
    ),
    # own clamp [.6, 3]: R=2 at .25: .5 -> .6; 70 * .6 = 42
    ("custom_min", {"multiplier_min": Fr(3, 5)}, [B, E], Fr(3, 5), 42),
]


@pytest.mark.parametrize(
    ("changes", "team", "multiplier", "score"), [c[1:] for c in CLAMPS], ids=[c[0] for c in CLAMPS]
)
def test_multiplier_clamp(
    rules: Rules,
    state: RaidState,
    changes: dict[str, Fraction],
    team: list[Character],
    multiplier: Fraction,
    score: int,
) -> None:
    ctx = context(with_scoring(rules, **changes), state)
    scored = ctx.score(team)
    assert scored.multiplier == multiplier
    assert scored.score == score
    assert ctx.multiplier(scored.weak_members, scored.resisted_members) == multiplier  # cached


# (id, curses, action, score, outcome)
OUTCOMES: list[tuple[str, tuple[str, ...], Action, int, int]] = [
    ("fight", (), Action.FIGHT, 75, 7),  # floor(75 / 10)
    ("analyze", (), Action.ANALYZE, 75, 7),
    ("fortify_fight", ("fortify_fight",), Action.FIGHT, 75, 3),  # floor(75 * .5 / 10) = 3
    ("fortify_fight_not_analyze", ("fortify_fight",), Action.ANALYZE, 75, 7),
    ("fortify_analyze", ("fortify_analyze",), Action.ANALYZE, 75, 11),  # floor(112.5/10)
    ("fortify_analyze_not_fight", ("fortify_analyze",), Action.FIGHT, 75, 7),
    ("both", ("fortify_fight", "fortify_analyze"), Action.FIGHT, 75, 3),
    ("zero", (), Action.FIGHT, 9, 0),  # floor(.9)
]


@pytest.mark.parametrize(
    ("curses", "action", "score", "outcome"),
    [o[1:] for o in OUTCOMES],
    ids=[o[0] for o in OUTCOMES],
)
def test_outcome(
    rules: Rules,
    state: RaidState,
    curses: tuple[str, ...],
    action: Action,
    score: int,
    outcome: int,
) -> None:
    assert context(rules, state, curses).outcome(action, score) == outcome


def test_divisors_come_from_config(rules: Rules, state: RaidState) -> None:
    ctx = context(with_scoring(rules, damage_divisor=3, analysis_divisor=7), state)
    assert ctx.outcome(Action.FIGHT, 100) == 33  # floor(100 / 3)
    assert ctx.outcome(Action.ANALYZE, 100) == 14  # floor(100 / 7)


# (id, curses, max team size, cooldown seconds)
LIMITS: list[tuple[str, tuple[str, ...], int, Fraction]] = [
    ("none", (), 4, Fraction(60)),
    ("team_cap", ("cap2",), 2, Fraction(60)),  # min(4, 2)
    ("surge", ("surge",), 4, Fraction(90)),  # 60 * 1.5
    ("two_surges", ("surge", "surge2"), 4, Fraction(180)),  # 60 * 1.5 * 2
]


@pytest.mark.parametrize(
    ("curses", "team_size", "cooldown"), [x[1:] for x in LIMITS], ids=[x[0] for x in LIMITS]
)
def test_team_size_and_cooldown(
    rules: Rules, state: RaidState, curses: tuple[str, ...], team_size: int, cooldown: Fraction
) -> None:
    ctx = context(rules, state, curses)
    assert ctx.max_team_size == team_size
    assert ctx.cooldown_s == cooldown


def test_team_cap_above_max_team_size_changes_nothing(rules: Rules, state: RaidState) -> None:
    cap = Curse("cap9", "Cap 9", CurseKind.TEAM_CAP, max=9)
    big = replace(rules, curses={**rules.curses, "cap9": cap})
    assert context(big, state, ("cap9",)).max_team_size == 4  # min(4, 9)


def test_factor_with_three_decimals_is_refused(rules: Rules, state: RaidState) -> None:
    odd = Curse("odd", "Odd", CurseKind.STAT_DRAIN, stat="power", factor=Fraction(1, 8))
    bad = replace(rules, curses={**rules.curses, "odd": odd})
    with pytest.raises(ValueError, match="more than two decimal places"):
        context(bad, state, ("odd",))


def test_empty_team_scores_zero(rules: Rules, state: RaidState) -> None:
    scored = context(rules, state).score([])
    assert (scored.score, scored.base, scored.multiplier) == (0, Fraction(0), Fraction(1))
