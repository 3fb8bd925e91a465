"""The compiled strike loop (``_strikeloop.c``) plays exactly as the Python lean path: the same
strikes in the same order, the same integers, the same report bytes, on random scenarios that
cover every rest mode, team policy, curse and breakthrough; numbers past 64 bits included."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raid.config import Config
from raid.errors import ConfigError
from raid.simulation import engine
from raid.simulation.engine import (
    MISSING_EXTENSION,
    Engine,
    RaidSimulation,
    SimulationInputError,
    SimulationResult,
    SimulationSettings,
    TracedStrike,
)
from raid.simulation.population import parse_population
from tests.rules.conftest import PROPERTY_SETTINGS
from tests.simulation.helpers import ALL_CURSES, QUICK_PLAY, report_bytes, run, scenario

POLICIES = st.sampled_from(
    [
        {"greedy": 1},
        {"random": 1},
        {"fixed": 1},
        {"greedy": 0.5, "random": 0.3, "fixed": 0.2},
    ]
)

CASES = st.builds(
    lambda rest, every, limit, pool, team, cooldown, hp, seed, players, policy, analysts: (
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
        {"play": {**QUICK_PLAY["play"], "team_choice": policy, "analyst_share": analysts}},
    ),
    rest=st.sampled_from(["event", 30, 300, 3600]),
    every=st.integers(1, 12),
    limit=st.integers(0, 4),
    pool=st.lists(st.sampled_from(ALL_CURSES), unique=True, max_size=len(ALL_CURSES)),
    team=st.integers(1, 6),
    cooldown=st.sampled_from([0, 7, 60, 90]),
    hp=st.sampled_from([500, 20_000, 10**9, 10**15]),
    seed=st.integers(0, 2**40),
    players=st.integers(1, 30),
    policy=POLICIES,
    analysts=st.sampled_from([0.0, 0.3, 1.0]),
)


def _both(
    config: Config, seed: int, players: int, play: dict[str, Any]
) -> tuple[tuple[SimulationResult, list[TracedStrike]], ...]:
    pop = parse_population(play, "test", config.rules)
    out = []
    for which in (Engine.COMPILED, Engine.PYTHON):
        trace: list[TracedStrike] = []
        out.append((run(config, players, 12, seed, pop=pop, trace=trace, engine=which), trace))
    return tuple(out)


def _fields(result: SimulationResult) -> dict[str, Any]:
    """Every figure of a result (the settings differ by the engine only)."""
    return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)} | {
        "settings": dataclasses.replace(result.settings, engine=Engine.PYTHON)
    }


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(CASES)
def test_compiled_loop_equals_the_python_loop(case: tuple[Config, int, int, Any]) -> None:
    config, seed, players, play = case
    (fast, fast_trace), (slow, slow_trace) = _both(config, seed, players, play)
    assert fast_trace == slow_trace
    assert _fields(fast) == _fields(slow)
    assert report_bytes(config, fast) == report_bytes(config, slow)


def test_the_largest_numbers_the_config_allows_stay_exact() -> None:
    """A boss of 2^53-1 hp (the config's bound) and a threshold at the bound: the two loops
    agree strike for strike (larger numbers are refused by the config validator)."""
    limit = 2**53 - 1
    config = scenario(total_hp=limit, thresholds=(limit,), rest=30)
    play = {"play": {**QUICK_PLAY["play"], "analyst_share": 0.5}}
    (fast, fast_trace), (slow, slow_trace) = _both(config, 5, 20, play)
    assert fast_trace == slow_trace and len(fast_trace) > 100
    assert _fields(fast) == _fields(slow)
    assert fast.boss.current_hp > 2**52


def test_scores_past_128_bits_are_computed_with_python_ints() -> None:
    """Sixteen drains on a stat that is not dominant scale every contribution by 100^16: a
    team's score needs more than 128 bits before its division, so the loop takes Python ints
    for that product (and must still agree with the Python loop)."""
    saps = {
        f"sap{i}": {
            "name": f"Sap {i}",
            "kind": "stat_drain",
            "params": {"stat": "charm", "factor": 0.5},
        }
        for i in range(16)
    }
    config = scenario(
        rest=30,
        retaliation_every=1,
        curse_limit=16,
        curse_pool=sorted(saps),
        total_hp=10**15,
        extra={"curses": saps},
    )
    play = {
        "roster": {"stat_ranges": [[10**8, 10**9]] * 5},  # base * 100^16 > 2^127
        "play": {**QUICK_PLAY["play"], "analyst_share": 0.3},
    }
    (fast, fast_trace), (slow, slow_trace) = _both(config, 9, 20, play)
    assert len(fast.boss.active_curses) == 16
    assert fast_trace == slow_trace and len(fast_trace) > 100
    assert _fields(fast) == _fields(slow)
    assert report_bytes(config, fast) == report_bytes(config, slow)


def test_a_missing_extension_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    config = scenario()
    pop = parse_population(QUICK_PLAY, "test", config.rules)
    monkeypatch.setattr(engine, "_strikeloop", None)
    with pytest.raises(SimulationInputError) as caught:
        RaidSimulation(config.rules, config.bosses, pop, SimulationSettings("sim", 5, 1))
    assert str(caught.value) == MISSING_EXTENSION and "\n" not in MISSING_EXTENSION
    python = SimulationSettings("sim", 5, 1, engine=Engine.PYTHON)
    assert RaidSimulation(config.rules, config.bosses, pop, python).result().user_ids


def test_hp_beyond_the_config_limit_never_reaches_the_loop() -> None:
    """The compiled loop holds hp in 128 bits; the config validator caps hp at 2^53-1 first."""
    with pytest.raises(ConfigError, match="above the maximum"):
        scenario(total_hp=2**119)
