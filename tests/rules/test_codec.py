"""raid/codec.py: state and results survive dict (and JSON) round trips exactly."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from typing import Any

import pytest

from raid.codec import (
    boss_from_dict,
    boss_to_dict,
    character_to_dict,
    draws_to_dict,
    fraction_text,
    parse_fraction,
    player_from_dict,
    player_to_dict,
    result_from_dict,
    result_to_dict,
)
from raid.config import Action, Rules
from raid.models import RaidState, RaidStatus
from raid.strike import StrikeResult
from tests.rules.conftest import START, char, command, make_config, make_state, roster, strike

ROSTER = roster(
    char("a", {"fire", "striker"}, power=10, endurance=20),
    char("b", {"water"}, power=300),
    char("c", {"earth"}, power=3333, endurance=1),
    char("d", {"wind"}, power=7),
)


def json_round(value: dict[str, Any]) -> dict[str, Any]:
    """What a journal or snapshot row gives back."""
    loaded: dict[str, Any] = json.loads(json.dumps(value))
    return loaded


def eventful_raid(rules: Rules, state: RaidState) -> list[StrikeResult]:
    """Strikes with a drain curse, breakthroughs, a retaliation and the victory."""
    state.boss.active_curses = ("drain_power",)
    state.boss.strike_count = 1
    rng = random.Random(5)
    results = [
        # a: 5 + 20 = 25, weak: 31.25 -> 31 -> 3 points
        strike(rules, state, command("u1", ["a"], ROSTER, action=Action.ANALYZE), START, rng),
        # c: 1666.5 + 1 = 1667.5 -> 1667 -> 166 points: three breakthroughs; seq 3 retaliates
        strike(rules, state, command("u2", ["c"], ROSTER, action=Action.ANALYZE), START + 1, rng),
    ]
    state.boss.current_hp = 10
    results.append(strike(rules, state, command("u3", ["b", "d"], ROSTER), START + 2, rng))
    return results


def test_results_round_trip(rules: Rules, state: RaidState) -> None:
    results = eventful_raid(rules, state)
    assert results[1].breakthroughs and results[1].retaliations and results[2].victory
    assert results[0].multiplier == Fraction(5, 4)
    for result in results:
        raw = result_to_dict(result)
        assert result_from_dict(raw) == result
        assert result_from_dict(json_round(raw)) == result
        assert result_to_dict(result_from_dict(raw)) == raw


def test_result_dict_content(rules: Rules, state: RaidState) -> None:
    first = eventful_raid(rules, state)[0]
    raw = result_to_dict(first)
    assert raw["base"] == f"{first.base_num}/{first.base_den}"
    assert Fraction(first.base_num, first.base_den) == 25
    assert raw["multiplier"] == "5/4"
    assert (raw["score"], raw["analysis_points"], raw["action"]) == (31, 3, "analyze")
    assert raw["reward"] == {"raid_tokens": 10, "intel": 1}


def test_boss_round_trip(rules: Rules, state: RaidState) -> None:
    eventful_raid(rules, state)
    boss = state.boss
    assert boss.status is RaidStatus.DEFEATED and boss.final_blow_user == "u3"
    raw = boss_to_dict(boss)
    assert boss_from_dict(raw) == boss
    assert boss_from_dict(json_round(raw)) == boss
    assert boss_to_dict(boss_from_dict(json_round(raw))) == raw


def test_fresh_boss_round_trip(state: RaidState) -> None:
    assert boss_from_dict(json_round(boss_to_dict(state.boss))) == state.boss


@pytest.mark.parametrize("rest", ["event", 30])
def test_player_round_trip(rest: str | int) -> None:
    config = make_config({"player": {"character_rest": rest}})
    rules, state = config.rules, make_state(config.bosses["golem"])
    eventful_raid(rules, state)
    assert len(state.players) == 3
    for player in state.players.values():
        raw = player_to_dict(player)
        assert player_from_dict(raw) == player
        assert player_from_dict(json_round(raw)) == player
    expected: float | None = None if rest == "event" else START + 30
    assert state.players["u1"].exhausted == {"a": expected}


def test_player_dict_leaves_claims_out(state: RaidState) -> None:
    player = state.player("u1")
    player.claimed["victory"] = 5.0
    raw = player_to_dict(player)
    assert "claimed" not in raw
    assert player_from_dict(raw).claimed == {}


def test_draws_to_dict(rules: Rules, state: RaidState) -> None:
    results = eventful_raid(rules, state)
    draws = draws_to_dict(results[1])
    assert draws["weaknesses"] == [b.weakness for b in results[1].breakthroughs]
    assert draws["curses"] == [r.curse for r in results[1].retaliations]
    assert draws_to_dict(results[0]) == {"weaknesses": [], "curses": []}


@pytest.mark.parametrize(
    ("text", "value"),
    [("5/4", Fraction(5, 4)), ("3", Fraction(3)), ("-1/2", Fraction(-1, 2)), ("0/1", Fraction(0))],
)
def test_fractions(text: str, value: Fraction) -> None:
    assert parse_fraction(text) == value
    assert parse_fraction(fraction_text(value)) == value


def test_fraction_text() -> None:
    assert fraction_text(Fraction(6, 8)) == "3/4"
    assert fraction_text(Fraction(2)) == "2/1"


def test_character_to_dict() -> None:
    c = char("x", {"wind", "mystic"}, power=4, rarity=5)
    assert character_to_dict(c) == {
        "character_id": "x",
        "name": "X",
        "rarity": 5,
        "stats": {
            "power": 4,
            "agility": 0,
            "intellect": 0,
            "spirit": 0,
            "endurance": 0,
            "charm": 0,
        },
        "tags": ["mystic", "wind"],
    }
