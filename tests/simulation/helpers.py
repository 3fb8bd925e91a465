"""Scenarios for the simulator tests: small configs and populations, and one run helper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from raid.config import Config
from raid.simulation.engine import (
    RaidSimulation,
    SimulationResult,
    SimulationSettings,
    TracedStrike,
)
from raid.simulation.population import Population, parse_population
from raid.simulation.report import build_report
from tests.rules.conftest import TEST_OVERRIDES, make_config

ALL_CURSES = sorted(TEST_OVERRIDES["curses"])
"""Test curses of every kind (stat drains, suppressions, dampen, fortify, team cap, surges)."""

QUICK_PLAY: dict[str, Any] = {
    "play": {
        "sessions_per_day": [2, 4],
        "session_minutes": [20, 90],
        "active_hours": [0, 24],
        "utc_offset_hours": [0, 0],
        "reaction_s": [0, 20],
        "analyst_share": 0.3,
    }
}
"""Players who play often, so small runs make many strikes."""


def scenario(
    *,
    rest: str | int = "event",
    retaliation_every: int = 5,
    curse_limit: int = 3,
    curse_pool: list[str] | None = None,
    max_team_size: int = 4,
    cooldown_s: int = 60,
    total_hp: int = 200_000,
    thresholds: tuple[int, ...] = (50, 120, 121, 400),
) -> Config:
    """A config with the test curses and a boss ``sim`` whose knobs the tests turn."""
    return make_config(
        {
            "player": {
                "max_team_size": max_team_size,
                "strike_cooldown_s": cooldown_s,
                "character_rest": rest,
            },
            "bosses": {
                "sim": {
                    "name": "Sim Boss",
                    "total_hp": total_hp,
                    "duration_s": 7 * 86400,
                    "dominant_stats": ["power", "endurance"],
                    "weaknesses": ["fire"],
                    "resistances": ["water", "wind"],
                    "weakness_pool": ["wind", "earth", "striker"],
                    "curse_pool": ALL_CURSES if curse_pool is None else curse_pool,
                    "analysis_thresholds": list(thresholds),
                    "analysis_reward_pool": [{"gems": i + 1} for i in range(len(thresholds))],
                    "victory_cache": {"gems": 100},
                    "retaliation_every": retaliation_every,
                    "curse_limit": curse_limit,
                }
            },
        }
    )


def population(config: Config, data: Mapping[str, Any] | None = None) -> Population:
    return parse_population(QUICK_PLAY if data is None else data, "test", config.rules)


def run(
    config: Config,
    players: int = 20,
    hours: float = 24,
    seed: int = 1,
    *,
    exact: bool = False,
    pop: Population | None = None,
    boss: str = "sim",
    trace: list[TracedStrike] | None = None,
) -> SimulationResult:
    settings = SimulationSettings(boss, players, hours, seed, exact_rules=exact)
    sim = RaidSimulation(
        config.rules, config.bosses, pop or population(config), settings, trace=trace
    )
    sim.run_until(hours * 3600 / 3)  # in steps, as the CLI does
    sim.run_until(hours * 3600)
    return sim.result()


def report_bytes(config: Config, result: SimulationResult) -> bytes:
    return orjson.dumps(build_report(config.rules, result))
