"""The simulator plays by the server's rules: the lean path equals decide_strike/apply_strike,
every strike it makes passes the server's own validation, runs are deterministic, hp is
conserved, and a tiny scenario gives the figures worked out by hand."""

from __future__ import annotations

import random
from dataclasses import replace
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.raids import CharacterGrant, roster_of, validate_grants
from raid.codec import new_boss_state
from raid.config import Config
from raid.errors import ConfigError
from raid.models import RaidState, RaidStatus, Roster
from raid.scoring import ScoringContext
from raid.simulation import engine
from raid.simulation.engine import (
    RAID_ID,
    RaidSimulation,
    SimulationInputError,
    SimulationSettings,
    TracedStrike,
)
from raid.simulation.population import SyntheticPlayer, parse_population
from raid.simulation.report import build_report
from raid.strike import StrikeCommand, apply_strike, changes_scoring, decide_strike
from server.requests import Strike, parse_request
from tests.rules.conftest import PROPERTY_SETTINGS
from tests.simulation.helpers import ALL_CURSES, population, report_bytes, run, scenario

SCENARIOS = st.builds(
    lambda rest, every, limit, pool, team, cooldown, hp, seed, players: (
        scenario(
            rest=rest,
            retaliation_every=every,
            curse_limit=limit,
            curse_pool=pool,
            max_team_size=team,
            cooldown_s=cooldown,
            total_hp=hp,
        ),
        seed,
        players,
    ),
    rest=st.sampled_from(["event", 30, 300, 3600]),
    every=st.integers(1, 12),
    limit=st.integers(0, 4),
    pool=st.lists(st.sampled_from(ALL_CURSES), unique=True, max_size=len(ALL_CURSES)),
    team=st.integers(1, 6),
    cooldown=st.sampled_from([0, 7, 60, 90]),
    hp=st.sampled_from([500, 20_000, 10**9]),
    seed=st.integers(0, 2**40),
    players=st.integers(1, 25),
)


@settings(PROPERTY_SETTINGS, max_examples=25)
@given(SCENARIOS)
def test_lean_path_equals_the_rules(case: tuple[Config, int, int]) -> None:
    """Same report, byte for byte, and the same final raid state as decide/apply."""
    config, seed, players = case
    lean = run(config, players, hours=12, seed=seed)
    exact = run(config, players, hours=12, seed=seed, exact=True)
    assert report_bytes(config, lean) == report_bytes(config, exact)
    assert lean.boss == exact.boss
    assert lean.damage == exact.damage and lean.analysis == exact.analysis


def _replay(config: Config, boss_id: str, trace: list[TracedStrike], seed: int) -> RaidState:
    """Every traced strike, as the server would take it: wire parsing, the roster import's
    validation, then decide_strike/apply_strike on a raid of the server's own making."""
    template = config.bosses[boss_id]
    state = RaidState(new_boss_state(template, RAID_ID, 0.0, template.duration_s, 0.0))
    rng = random.Random(seed)
    context = ScoringContext.build(config.rules, state.boss)
    rosters = {}
    for strike in trace:
        _, request = parse_request(
            {
                "op": "strike",
                "rid": 1,
                "raid_id": RAID_ID,
                "action": strike.action.value,
                "team": list(strike.team),
                "strike_id": strike.strike_id,
            }
        )
        assert isinstance(request, Strike)
        if strike.user_id not in rosters:
            rosters[strike.user_id] = _server_roster(config, strike.user_id, seed)
        command = StrikeCommand(
            strike.user_id, request.action, request.team, request.strike_id, rosters[strike.user_id]
        )
        result = decide_strike(config.rules, state, context, command, strike.at, rng)
        apply_strike(state, result)
        if changes_scoring(result):
            context = ScoringContext.build(config.rules, state.boss)
    return state


def _server_roster(config: Config, user_id: str, seed: int) -> Roster:
    index = int(user_id.removeprefix("sim"))
    sim_players = _PLAYERS[(id(config), seed)]
    player = sim_players[index]
    grants = [
        CharacterGrant(
            c.character_id,
            c.character_id,
            c.rarity,
            dict(zip(config.rules.stats, c.stats, strict=True)),
            c.tags,
        )
        for c in player.roster
    ]
    return roster_of(validate_grants(config, user_id, grants))


_PLAYERS: dict[tuple[int, int], list[SyntheticPlayer]] = {}
"""The players of the run being replayed (the test fills it before replaying)."""


@pytest.mark.parametrize(
    ("rest", "team", "every"), [("event", 4, 5), (300, 6, 1), (30, 1, 3), (3600, 2, 7)]
)
def test_every_strike_is_one_the_server_accepts(rest: str | int, team: int, every: int) -> None:
    config = scenario(rest=rest, max_team_size=team, retaliation_every=every)
    trace: list[TracedStrike] = []
    settings = SimulationSettings("sim", 30, 24, seed=7)
    sim = RaidSimulation(config.rules, config.bosses, population(config), settings, trace=trace)
    _PLAYERS[(id(config), 7)] = sim.players
    sim.run_until(24 * 3600)
    result = sim.result()
    assert len(trace) == result.boss.strike_count > 100
    replayed = _replay(config, "sim", trace, 7)  # raises Rejection if any strike is refused
    assert replayed.boss == result.boss
    assert [replayed.players[u].personal_damage for u in result.user_ids if u in replayed.players]
    for i, user in enumerate(result.user_ids):
        player = replayed.players.get(user)
        assert (player.personal_damage if player else 0) == result.damage[i]
        assert (player.strikes if player else 0) == result.strikes[i]


def test_same_seed_same_bytes_other_seed_other_draws() -> None:
    config = scenario()
    first = report_bytes(config, run(config, 40, seed=3))
    assert first == report_bytes(config, run(config, 40, seed=3))
    assert first != report_bytes(config, run(config, 40, seed=4))


@pytest.mark.parametrize("hp", [3_000, 10**9])
def test_hp_lost_equals_damage_dealt(hp: int) -> None:
    config = scenario(total_hp=hp, rest=600)
    result = run(config, 40, hours=24)
    report = build_report(config.rules, result)
    lost = result.boss.total_hp - result.boss.current_hp
    assert lost == sum(result.damage) == report["damage"]["total"] > 0
    assert report["strikes"]["total"] == sum(result.strikes) == result.fights + result.analyzes
    assert (result.killed_at is not None) == (hp == 3_000)


# The tiny scenario: every character has 100 in every stat and the tags fire + striker; the
# boss's only dominant stat is power, it is weak to fire (multiplier 1 + 0.25 = 5/4), teams
# are one character. A strike scores floor(100 * 5/4) = 125 and deals 125 // 10 = 12 damage.
# Three players with two characters each make 6 strikes (rest "event"): 72 damage.
TINY_POPULATION = {
    "roster": {
        "size": [2, 2],
        "stat_ranges": [[100, 100]] * 5,
        "elements": {"fire": 1},
        "roles": {"striker": 1},
    },
    "play": {
        "analyst_share": 0,
        "team_choice": {"greedy": 1},
        "sessions_per_day": [1, 1],
        "session_minutes": [30, 30],
        "active_hours": [0, 24],
        "utc_offset_hours": [0, 0],
        "reaction_s": [5, 5],
    },
}


def _tiny(hp: int) -> Config:
    config = scenario(
        total_hp=hp, max_team_size=1, curse_pool=[], curse_limit=0, thresholds=(), rest="event"
    )
    boss = config.bosses["sim"]
    tiny = replace(boss, dominant_stats=("power",), resistances=())
    return replace(config, bosses=MappingProxyType({"sim": tiny}))


def test_tiny_scenario_by_hand() -> None:
    config = _tiny(1000)
    pop = parse_population(TINY_POPULATION, "tiny", config.rules)
    result = run(config, 3, hours=24, pop=pop)
    report = build_report(config.rules, result)
    assert report["outcome"]["hp_left"] == 1000 - 6 * 12 == 928
    assert report["strikes"]["by_action"] == {"fight": 6, "analyze": 0}
    assert result.damage == [24, 24, 24]
    assert report["damage"]["gini"] == 0.0
    # 6 strikes x 10 raid_tokens; everyone passed the test config's damage:10 (50 tokens)
    assert report["rewards"]["by_kind"] == {
        "damage": {"tokens": 150},
        "strike": {"raid_tokens": 60},
    }
    assert report["milestone_shares"] == {"damage:10": 1.0, "damage:100": 0.0, "analysis:5": 0.0}
    # each player's two strikes are one cooldown (60 s) plus the reaction (5 s) apart
    assert report["curses"]["applied"] == 0 and report["breakthroughs"] == []


def test_tiny_scenario_kill() -> None:
    """50 hp: four strikes of 12, then the fifth deals the last 2 and wins."""
    config = _tiny(50)
    pop = parse_population(TINY_POPULATION, "tiny", config.rules)
    result = run(config, 3, hours=24, pop=pop)
    report = build_report(config.rules, result)
    assert report["outcome"]["defeated"] is True
    assert report["strikes"]["total"] == 5
    assert sum(result.damage) == 50
    assert sorted(d % 12 for d in result.damage) == [0, 0, 2]  # one player dealt the last 2
    assert result.boss.status is RaidStatus.DEFEATED
    assert report["milestone_shares"]["victory"] == 1.0


def test_bad_inputs_are_refused() -> None:
    config = scenario()
    pop = population(config)
    with pytest.raises(SimulationInputError, match="unknown boss 'nope'"):
        RaidSimulation(config.rules, config.bosses, pop, SimulationSettings("nope", 1, 1))
    with pytest.raises(SimulationInputError, match="--hours"):
        RaidSimulation(config.rules, config.bosses, pop, SimulationSettings("sim", 1, 0))
    with pytest.raises(SimulationInputError, match="--players"):
        RaidSimulation(config.rules, config.bosses, pop, SimulationSettings("sim", 0, 1))
    with pytest.raises(ConfigError, match=r"play\.bogus: unknown key"):
        parse_population({"play": {"bogus": 1}}, "p.toml", config.rules)


def test_curse_timeline_is_bounded_and_the_counts_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "TIMELINE", 5)
    config = scenario(retaliation_every=1, rest=600)
    report = build_report(config.rules, run(config, 20))
    curses = report["curses"]
    assert len(curses["timeline"]) == 5 and curses["timeline_truncated"] is True
    assert curses["applied"] == sum(curses["by_curse"].values()) == report["strikes"]["total"]
    assert report["series"]["curses_applied"][-1] == curses["applied"]
