"""The rules stay within raid/limits.py for every input the validators let through (issue 9).

Before: stats near 2**62 (or ordinary stats under a config at its own limits) made scores
past 2**64; ``apply_strike`` succeeded and the journal, a snapshot or the reply then failed,
crashing the raid on every attempt.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import msgpack
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.journaling import strike_record
from raid.codec import result_to_dict
from raid.config import Action, Config
from raid.limits import MAX_POINTS, MAX_STAT, saturating_add
from raid.models import Character
from raid.views import strike_report
from tests.rules.conftest import command, make_config, make_state, strike

STATS = ("power", "agility", "intellect", "spirit", "endurance", "charm")
DRAINS = 12


def _extreme() -> Config:
    """Every knob at the end of its range that makes scores grow."""
    curses: dict[str, Any] = {
        f"d{i}": {
            "name": f"Drain {i}",
            "kind": "stat_drain",
            "params": {"stat": STATS[i % len(STATS)], "factor": 10},
        }
        for i in range(DRAINS)
    }
    curses["fort_fight"] = {
        "name": "F",
        "kind": "fortify",
        "params": {"action": "fight", "factor": 10},
    }
    curses["fort_analyze"] = {
        "name": "A",
        "kind": "fortify",
        "params": {"action": "analyze", "factor": 10},
    }
    return make_config(
        {
            "player": {"max_team_size": 64, "strike_cooldown_s": 0},
            "scoring": {
                "weakness_bonus": 10,
                "multiplier_max": 100,
                "damage_divisor": 1,
                "analysis_divisor": 1,
            },
            "curses": curses,
            "bosses": {
                "golem": {
                    "total_hp": MAX_POINTS,
                    "dominant_stats": list(STATS),
                    "weaknesses": ["fire"],
                    "curse_pool": sorted(curses),
                    "curse_limit": 64,
                    "analysis_thresholds": [MAX_POINTS],
                    "analysis_reward_pool": [{"gems": MAX_POINTS}],
                }
            },
        }
    )


EXTREME = _extreme()


def _ints(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, list | tuple):
        return [i for v in value for i in _ints(v)]
    return []


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, MAX_STAT), min_size=len(STATS), max_size=len(STATS)),
    st.integers(1, 64),
    st.sampled_from(list(Action)),
    st.integers(0, MAX_POINTS),
)
def test_any_allowed_strike_can_be_stored_and_sent(
    stats: list[int], team_size: int, action: Action, analysis_before: int
) -> None:
    rules = EXTREME.rules
    state = make_state(EXTREME.bosses["golem"])
    state.boss.active_curses = state.boss.curse_pool  # every curse at once
    state.boss.analysis_points = analysis_before
    members = {
        f"c{i}": Character(
            f"c{i}", "C", 5, dict(zip(STATS, stats, strict=True)), frozenset({"fire"})
        )
        for i in range(team_size)
    }
    result = strike(rules, state, command("u", list(members), members, action=action), 1000.0)
    stored = result_to_dict(result)
    orjson.dumps(stored)  # the journal's result JSON
    record = strike_record(result)
    report = strike_report(result)
    msgpack.packb(report)
    json.dumps(report, allow_nan=False)
    for value in _ints(stored) + _ints(report) + [record.score, record.damage]:
        assert 0 <= value <= MAX_POINTS
    assert state.boss.analysis_points <= MAX_POINTS
    assert state.players["u"].personal_analysis <= MAX_POINTS


def test_totals_saturate_instead_of_overflowing() -> None:
    rules = EXTREME.rules
    state = make_state(EXTREME.bosses["golem"])
    state.boss.analysis_points = MAX_POINTS - 1
    hero = {"h": Character("h", "H", 5, dict.fromkeys(STATS, MAX_STAT), frozenset())}
    result = strike(rules, state, command("u", ["h"], hero, action=Action.ANALYZE), 1000.0)
    assert result.analysis_total == state.boss.analysis_points == MAX_POINTS
    assert saturating_add(MAX_POINTS, 1) == MAX_POINTS


def test_a_rest_of_zero_means_no_rest() -> None:
    """Item 12: character_rest = 0 was refused; RULES.md: 0 means no rest."""
    config = make_config({"player": {"character_rest": 0, "strike_cooldown_s": 0}})
    assert config.rules.player.character_rest_s == Fraction(0)
    state = make_state(config.bosses["golem"])
    hero = {"h": Character("h", "H", 3, {"power": 10}, frozenset())}
    strike(config.rules, state, command("u", ["h"], hero, strike_id="a"), 1000.0)
    again = strike(config.rules, state, command("u", ["h"], hero, strike_id="b"), 1000.0)
    assert again.seq == 2


def test_a_rest_of_five_milliseconds() -> None:
    config = make_config({"player": {"character_rest": 0.005, "strike_cooldown_s": 0}})
    state = make_state(config.bosses["golem"])
    hero = {"h": Character("h", "H", 3, {"power": 10}, frozenset())}
    first = strike(config.rules, state, command("u", ["h"], hero, strike_id="a"), 1000.0)
    assert first.rest_until == 1000.005
    assert state.players["u"].is_exhausted("h", 1000.004)
    assert not state.players["u"].is_exhausted("h", 1000.005)
