"""raid/views.py: the reply fields and events built from state and results."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raid.config import Action, Rules
from raid.leaderboard import Leaderboards
from raid.limits import MAX_STAT
from raid.models import RaidState
from raid.scoring import ScoringContext
from raid.strike import Breakthrough, Retaliation, StrikeResult, apply_strike, decide_strike
from raid.views import (
    curse_view,
    hub_view,
    raid_view,
    strike_events,
    strike_report,
    team_options_view,
)
from tests.rules.conftest import START, char, command, roster

ROSTER = roster(
    char("a", {"fire", "striker"}, power=10, endurance=20),
    char("b", {"water", "vanguard"}, power=30),
    char("c", {"earth", "mystic"}, power=5, endurance=5),
)


def first_strike(rules: Rules, state: RaidState, boards: Leaderboards) -> StrikeResult:
    ctx = ScoringContext.build(rules, state.boss)
    cmd = command("u1", ["a", "b"], ROSTER, strike_id="s1")
    result = decide_strike(rules, state, ctx, cmd, START, random.Random(0))
    apply_strike(state, result, boards)
    return result


def test_strike_report(rules: Rules, state: RaidState) -> None:
    result = first_strike(rules, state, Leaderboards())
    report = strike_report(result)
    # base 60, W=1, R=1 -> 1, score 60, damage 6
    assert report == {
        "strike_id": "s1",
        "action": "fight",
        "team": ["a", "b"],
        "base": 60.0,
        "multiplier": 1.0,
        "score": 60,
        "damage": 6,
        "analysis_points": 0,
        "boss_hp": 994,
        "analysis_total": 0,
        "strike_count": 1,
        "breakthroughs": [],
        "retaliations": [],
        "victory": False,
        "rewards": [{"key": "strike:s1", "bundle": {"raid_tokens": 10}}],
        "cooldown_until": START + 60,
        "exhausted": ["a", "b"],
        "exhausted_until": None,
    }


def test_strike_events(rules: Rules, state: RaidState) -> None:
    result = replace(
        first_strike(rules, state, Leaderboards()),
        breakthroughs=(Breakthrough(1, "wind"), Breakthrough(2, None)),
        retaliations=(Retaliation("suppress_fire", None), Retaliation("gone", "drain_power")),
        hp_milestones=(75, 50),
        victory=True,
    )
    events = strike_events(rules, result)
    # (views.py is still growing: later events, e.g. raid_ended, may follow the victory)
    assert events[:14] == [
        {"type": "breakthrough", "index": 1, "weakness": "wind"},
        {"type": "announcement", "text": "Breakthrough 1! The boss is now weak to wind."},
        {"type": "breakthrough", "index": 2, "weakness": None},
        {"type": "announcement", "text": "Breakthrough 2! No new weakness was found."},
        {"type": "retaliation", "curse": "suppress_fire", "replaced": None},
        {"type": "announcement", "text": "The boss retaliates: Sup F!"},
        {"type": "retaliation", "curse": "gone", "replaced": "drain_power"},
        {"type": "announcement", "text": "The boss retaliates: gone!"},
        {"type": "milestone", "hp_pct": 75},
        {"type": "announcement", "text": "The boss is down to 75% hp."},
        {"type": "milestone", "hp_pct": 50},
        {"type": "announcement", "text": "The boss is down to 50% hp."},
        {"type": "victory", "final_blow_user": "u1"},
        {"type": "announcement", "text": "Victory! u1 dealt the final blow."},
    ]
    assert (
        strike_events(
            rules,
            replace(result, breakthroughs=(), retaliations=(), hp_milestones=(), victory=False),
        )
        == []
    )


def test_curse_view(rules: Rules) -> None:
    assert curse_view(rules, "fortify_fight") == {
        "id": "fortify_fight",
        "name": "Fort F",
        "kind": "fortify",
        "params": {"action": "fight", "factor": 0.5},
    }
    assert curse_view(rules, "gone") == {"id": "gone", "name": "gone", "kind": None, "params": {}}


def test_raid_view(rules: Rules, state: RaidState) -> None:
    state.boss.active_curses = ("cap2",)
    view = raid_view(rules, state, START - 1)
    assert view["status"] == "scheduled"
    assert view["next_analysis_threshold"] == 10
    assert view["active_curses"] == [
        {"id": "cap2", "name": "Cap 2", "kind": "team_cap", "params": {"max": 2}}
    ]
    assert "weakness_pool" not in view and "curse_pool" not in view
    state.boss.analysis_breakthroughs = 3
    view = raid_view(rules, state, START)
    assert (view["status"], view["next_analysis_threshold"]) == ("active", None)
    assert view["analysis_reward_pool"] == [{"gems": 1}, {"gems": 2}, {"gems": 3}]


def test_hub_view(rules: Rules, state: RaidState) -> None:
    boards = Leaderboards()
    first_strike(rules, state, boards)
    state.players["u1"].claimed["damage:10"] = START
    hub = hub_view(rules, state, boards, "u1", START + 1)
    assert hub["raid"]["current_hp"] == 994
    me = hub["me"]
    assert me["rewards_claimed"] == ["damage:10", "strike:s1"]
    assert me["exhausted_characters"] == {"a": "event", "b": "event"}
    assert (me["rank_damage"], me["rank_analysis"]) == (1, None)
    assert hub["leaderboard"] == {"damage": [{"user_id": "u1", "value": 6}], "analysis": []}
    ghost = hub_view(rules, state, boards, "ghost", START + 1)["me"]
    assert (ghost["strikes"], ghost["rank_damage"], ghost["rewards_claimed"]) == (0, None, [])


def test_hub_view_timed_rest(rules: Rules, state: RaidState) -> None:
    state.player("u1").exhausted["a"] = START + 30
    me = hub_view(rules, state, Leaderboards(), "u1", START)["me"]
    assert me["exhausted_characters"] == {"a": START + 30}


def test_team_options_view(rules: Rules, state: RaidState) -> None:
    state.boss.active_curses = ("suppress_fire", "cap2")
    ctx = ScoringContext.build(rules, state.boss)
    before = team_options_view(state, ctx, ROSTER, "u1", START)
    assert before["max_team_size"] == 2
    assert [c["exhausted"] for c in before["characters"]] == [False, False, False]
    first_strike(rules, state, Leaderboards())
    view = team_options_view(state, ctx, ROSTER, "u1", START + 1)
    rows = {c["character_id"]: c for c in view["characters"]}
    assert list(rows) == ["a", "b", "c"]
    assert (rows["a"]["contribution"], rows["a"]["weak"], rows["a"]["resisted"]) == (
        15.0,
        True,
        False,
    )
    assert (rows["b"]["contribution"], rows["b"]["weak"], rows["b"]["resisted"]) == (
        30.0,
        False,
        True,
    )
    assert [rows[c]["exhausted"] for c in "abc"] == [True, True, False]


def preview(view: dict[str, Any], team: list[str], action: str) -> tuple[int, int]:
    """What the browser client computes from ``team.options`` (server/static/preview.js)."""
    terms = view["scoring"]
    rows = {c["character_id"]: c for c in view["characters"]}
    base_num = sum(int(rows[c]["contribution_num"]) for c in team)
    weak = sum(rows[c]["weak"] for c in team)
    resisted = sum(rows[c]["resisted"] for c in team)
    p, q = terms["multipliers"][weak][resisted]
    score = (base_num * p) // (int(terms["base_den"]) * q)
    f_num, f_den = terms["fortify"][action]
    return score, (score * f_num) // (f_den * terms["divisors"][action])


def test_team_options_scoring_terms_reproduce_the_servers_numbers(
    rules: Rules, state: RaidState
) -> None:
    state.boss.active_curses = ("drain_power", "suppress_fire", "dampen", "fortify_fight")
    state.boss.weaknesses = ("striker",)
    state.boss.resistances = ("water", "earth")
    ctx = ScoringContext.build(rules, state.boss)
    view = team_options_view(state, ctx, ROSTER, "u1", START)
    assert len(view["scoring"]["multipliers"]) == view["max_team_size"] + 1
    teams = [["a"], ["b"], ["c"], ["a", "b"], ["a", "c"], ["b", "c"], ["a", "b", "c"]]
    for team in teams:
        score = ctx.score(ROSTER[c] for c in team).score
        for action in Action:
            assert preview(view, team, action.value) == (score, ctx.outcome(action, score))
    assert preview(view, ["a", "b", "c"], "fight") != preview(view, ["a", "b", "c"], "analyze")


def test_analyze_report_has_points(rules: Rules, state: RaidState) -> None:
    ctx = ScoringContext.build(rules, state.boss)
    cmd = command("u1", ["c"], ROSTER, action=Action.ANALYZE)
    report = strike_report(decide_strike(rules, state, ctx, cmd, START, random.Random(0)))
    assert (report["action"], report["damage"], report["analysis_points"]) == ("analyze", 0, 1)


@given(
    stats=st.lists(st.integers(0, MAX_STAT), min_size=3, max_size=3),
    curses=st.sets(st.sampled_from(["suppress_fire", "cap2", "drain_power"]), max_size=3),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_team_options_contributions_are_the_exact_ones_rounded(
    rules: Rules, state: RaidState, stats: list[int], curses: set[str]
) -> None:
    """The view's float and numerator are the scoring context's exact contribution (the
    state is only read, so sharing the fixture across examples is safe)."""
    state.boss.active_curses = tuple(c for c in sorted(curses) if c in rules.curses)
    ctx = ScoringContext.build(rules, state.boss)
    power, endurance, agility = stats
    member = char("x", {"fire"}, power=power, endurance=endurance, agility=agility)
    (row,) = team_options_view(state, ctx, roster(member), "u1", START)["characters"]
    assert row["contribution"] == float(ctx.contribution(member))
    assert row["contribution_num"] == str(ctx.contribution_num(member))
