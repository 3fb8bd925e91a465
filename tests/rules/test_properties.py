"""Hypothesis: random strike sequences keep every invariant of RULES.md, and replay exactly.

A scenario is a few players with random rosters and a list of random commands (random team,
some invalid on purpose: empty, too large, duplicates, characters not owned; random action;
``now`` increasing by random steps, sometimes past the event's end) and a random seed. The
runner keeps a cached ``ScoringContext`` and rebuilds it only when ``changes_scoring`` says so,
as the server does, and checks after every command that the cache is still exact.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raid.codec import boss_to_dict, player_to_dict, result_from_dict, result_to_dict
from raid.config import Action, BossTemplate, Config, Rules
from raid.errors import Rejection
from raid.leaderboard import Leaderboards
from raid.models import Character, RaidState, RaidStatus
from raid.scoring import ScoringContext
from raid.strike import HP_MILESTONES, StrikeCommand, StrikeResult, apply_strike, changes_scoring
from raid.strike import decide_strike as decide
from tests.rules.conftest import PROPERTY_SETTINGS, START, make_config, make_state, snapshot

ELEMENTS = ("fire", "water", "wind", "earth", "light", "shadow")
ROLES = ("vanguard", "striker", "mystic", "support", "ranger", "trickster")

PROPERTY_BOSS: dict[str, Any] = {
    "total_hp": 80,
    "curse_pool": ["drain_power", "suppress_fire", "fortify_fight", "cap2", "surge", "dampen"],
    "retaliation_every": 2,
    "curse_limit": 2,
}


def property_config(rest: str | int) -> Config:
    return make_config(
        {
            "player": {"character_rest": rest, "strike_cooldown_s": 10},
            "bosses": {"golem": PROPERTY_BOSS},
        }
    )


CONFIGS = {"event": property_config("event"), "timed": property_config(25)}


@dataclass(frozen=True)
class Command:
    player: int
    action: Action
    team: tuple[int, ...]
    """Roster indices; an index past the roster names a character the player does not own."""
    wellformed: bool
    """Ignore ``team``: pick ``size`` distinct characters with ``Random(pick)``, preferring
    those not resting, as a player choosing in the client would."""
    pick: int
    size: int
    dt: float


@dataclass(frozen=True)
class Scenario:
    seed: int
    rosters: tuple[dict[str, Character], ...]
    commands: tuple[Command, ...]


@st.composite
def characters(draw: st.DrawFn, character_id: str) -> Character:
    stats = {
        "power": draw(st.integers(0, 80)),
        "agility": draw(st.integers(0, 80)),
        "intellect": 0,
        "spirit": 0,
        "endurance": draw(st.integers(0, 80)),
        "charm": 0,
    }
    tags = frozenset({draw(st.sampled_from(ELEMENTS)), draw(st.sampled_from(ROLES))})
    return Character(character_id, character_id, draw(st.integers(1, 5)), stats, tags)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    players = draw(st.integers(1, 4))
    rosters = []
    for p in range(players):
        size = draw(st.integers(1, 12))
        rosters.append({f"p{p}c{i}": draw(characters(f"p{p}c{i}")) for i in range(size)})
    command = st.builds(
        Command,
        player=st.integers(0, players - 1),
        action=st.sampled_from(list(Action)),
        team=st.lists(st.integers(0, 11), min_size=0, max_size=5).map(tuple),
        wellformed=st.sampled_from([True, True, True, False]),
        pick=st.integers(0, 2**16),
        size=st.integers(1, 4),
        dt=st.sampled_from([0.0, 5.0, 10.0, 10.0, 25.0, 60.0, 120.0]),
    )
    return Scenario(
        seed=draw(st.integers(0, 2**32 - 1)),
        rosters=tuple(rosters),
        commands=tuple(draw(st.lists(command, min_size=20, max_size=60))),
    )


def team_of(cmd: Command, roster: dict[str, Character], resting: set[str]) -> tuple[str, ...]:
    user = next(iter(roster)).partition("c")[0]
    if not cmd.wellformed:
        return tuple(f"{user}c{i}" for i in cmd.team)
    free = [c for c in roster if c not in resting] or list(roster)
    return tuple(random.Random(cmd.pick).sample(free, min(cmd.size, len(free))))


@dataclass
class Run:
    state: RaidState
    boards: Leaderboards
    results: list[StrikeResult] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    """Per command: "ok" or the rejection code."""


def context_fields(ctx: ScoringContext) -> tuple[object, ...]:
    return (
        ctx.dominant_stats,
        ctx.weaknesses,
        ctx.resistances,
        ctx.stat_nums,
        ctx.stat_den,
        ctx.suppressions,
        ctx.tag_den,
        ctx.bonus,
        ctx.penalty,
        dict(ctx.fortify),
        ctx.max_team_size,
        ctx.cooldown_s,
    )


def run(rules: Rules, template: BossTemplate, scenario: Scenario) -> Run:
    """Play the scenario, checking the invariants after every command."""
    state = make_state(template)
    boards = Leaderboards()
    out = Run(state, boards)
    rng = random.Random(scenario.seed)
    ctx = ScoringContext.build(rules, state.boss)
    rest = rules.player.character_rest_s
    last_used: dict[tuple[str, str], float] = {}  # (user, character) -> when
    damage: dict[str, int] = {}
    analysis: dict[str, int] = {}
    now = START
    for n, cmd in enumerate(scenario.commands):
        now += cmd.dt
        user = f"p{cmd.player}"
        roster = scenario.rosters[cmd.player]
        player = state.players.get(user)
        resting = {c for c in roster if player is not None and player.is_exhausted(c, now)}
        team = team_of(cmd, roster, resting)
        command = StrikeCommand(user, cmd.action, team, f"s{n}", roster)
        before = snapshot(state)
        was_defeated = state.boss.status is RaidStatus.DEFEATED
        try:
            result = decide(rules, state, ctx, command, now, rng)
        except Rejection as rejection:
            out.outcomes.append(rejection.code.value)
            assert snapshot(state) == before  # a rejected strike changes nothing
            continue
        assert not was_defeated  # no strike is accepted after the victory
        out.outcomes.append("ok")
        out.results.append(result)
        apply_strike(state, result, boards)
        if changes_scoring(result):
            ctx = ScoringContext.build(rules, state.boss)
        assert context_fields(ctx) == context_fields(ScoringContext.build(rules, state.boss))
        for character_id in team:
            if rest is None:  # "event": never twice in this raid
                assert (user, character_id) not in last_used
            elif (user, character_id) in last_used:
                assert last_used[user, character_id] + float(rest) <= now
            last_used[user, character_id] = now
        damage[user] = damage.get(user, 0) + result.damage
        analysis[user] = analysis.get(user, 0) + result.analysis_points
        check_invariants(state, out.results, damage, analysis)
    return out


def check_invariants(
    state: RaidState,
    results: list[StrikeResult],
    damage: dict[str, int],
    analysis: dict[str, int],
) -> None:
    boss = state.boss
    assert 0 <= boss.current_hp <= boss.total_hp
    assert boss.total_hp - boss.current_hp == sum(r.damage for r in results)
    assert boss.analysis_points == sum(r.analysis_points for r in results)
    assert boss.analysis_breakthroughs == sum(
        1 for t in boss.analysis_thresholds if t <= boss.analysis_points
    )
    assert boss.strike_count == len(results) == results[-1].seq
    assert len(set(boss.active_curses)) == len(boss.active_curses) <= boss.curse_limit
    assert set(boss.active_curses) <= set(boss.curse_pool)
    assert len(set(boss.weaknesses)) == len(boss.weaknesses)
    assert not set(boss.weaknesses) & set(boss.resistances)
    assert (boss.status is RaidStatus.DEFEATED) == (boss.current_hp == 0)
    if boss.current_hp == 0:
        assert results[-1].victory and boss.final_blow_user == results[-1].user_id
    assert sum(r.victory for r in results) == (boss.current_hp == 0)
    announced = [pct for r in results for pct in r.hp_milestones]
    crossed = [p for p in HP_MILESTONES if boss.current_hp * 100 <= p * boss.total_hp]
    assert announced == crossed  # each milestone once, in order, exactly when crossed
    for user, player in state.players.items():
        assert player.personal_damage == damage[user]
        assert player.personal_analysis == analysis[user]
        assert player.strikes == sum(1 for r in results if r.user_id == user)


def replay(template: BossTemplate, results: list[StrikeResult]) -> tuple[RaidState, Leaderboards]:
    """Journal replay: results through JSON and back, applied to a fresh raid."""
    state = make_state(template)
    boards = Leaderboards()
    for result in results:
        raw = json.loads(json.dumps(result_to_dict(result)))
        apply_strike(state, result_from_dict(raw), boards)
    return state, boards


def board_view(boards: Leaderboards) -> tuple[object, ...]:
    return (boards.damage.top(1000), boards.analysis.top(1000))


@pytest.mark.parametrize("variant", sorted(CONFIGS))
@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_invariants_and_replay(variant: str, scenario: Scenario) -> None:
    config = CONFIGS[variant]
    template = config.bosses["golem"]
    played = run(config.rules, template, scenario)
    replayed, boards = replay(template, played.results)
    assert snapshot(replayed) == snapshot(played.state)
    assert boss_to_dict(replayed.boss) == boss_to_dict(played.state.boss)
    assert {u: player_to_dict(p) for u, p in replayed.players.items()} == {
        u: player_to_dict(p) for u, p in played.state.players.items()
    }
    assert board_view(boards) == board_view(played.boards)
    for player in played.state.players.values():
        assert boards.ranks(player) == played.boards.ranks(player)
    assert board_view(Leaderboards.of(played.state.players.values())) == board_view(boards)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_same_seed_same_commands_same_results(scenario: Scenario) -> None:
    config = CONFIGS["event"]
    first = run(config.rules, config.bosses["golem"], scenario)
    second = run(config.rules, config.bosses["golem"], scenario)
    assert first.outcomes == second.outcomes
    assert [result_to_dict(r) for r in first.results] == [result_to_dict(r) for r in second.results]
    assert snapshot(first.state) == snapshot(second.state)


def test_scenarios_reach_the_interesting_cases() -> None:
    """Guard against a strategy that never exercises draws, rejections or the victory."""
    config = CONFIGS["event"]
    seen: set[str] = set()

    @PROPERTY_SETTINGS
    @given(scenario=scenarios())
    def explore(scenario: Scenario) -> None:
        played = run(config.rules, config.bosses["golem"], scenario)
        seen.update(played.outcomes)
        for r in played.results:
            if r.breakthroughs:
                seen.add("breakthrough")
            if r.retaliations and r.retaliations[0].replaced:
                seen.add("replaced")
            if r.victory:
                seen.add("victory")

    explore()
    assert {
        "ok",
        "invalid_team",
        "on_cooldown",
        "character_not_owned",
        "character_exhausted",
        "raid_not_active",
        "breakthrough",
        "replaced",
        "victory",
    } <= seen
