"""Factories shared by the rules tests: a small config, boss states, characters, strikes.

The helpers are plain functions (importable as ``tests.rules.conftest``) plus a few fixtures.
The small config keeps the shipped defaults for scoring (bonus 0.25, penalty 0.25, clamp
[0.25, 3], divisors 10) and adds test curses and a tiny boss ``golem``:

* golem: 1000 hp, dominant stats power + endurance, weak to fire, resists water and wind,
  weakness pool [wind, earth], thresholds [10, 20, 40], retaliation every 3, curse limit 2.
* player: max team 4, cooldown 60 s, characters rest for the event.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from fractions import Fraction
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from raid.codec import boss_to_dict, new_boss_state, player_to_dict
from raid.config import Action, BossTemplate, Config, Rules, merge_documents, parse_config
from raid.models import Character, RaidState
from raid.scoring import ScoringContext
from raid.strike import StrikeCommand, StrikeResult, apply_strike, decide_strike

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""Hypothesis settings of the rules suite: modest, deterministic, no deadline."""

START = 1000.0
"""event_start of the test raids; event_end is START + 1000."""
END = 2000.0

TEST_OVERRIDES: dict[str, Any] = {
    "player": {"max_team_size": 4, "strike_cooldown_s": 60, "character_rest": "event"},
    "raid": {"retaliation_every": 3, "curse_limit": 2, "claim_grace_s": 100},
    "strike_rewards": {"fight": {"raid_tokens": 10}, "analyze": {"raid_tokens": 10, "intel": 1}},
    "milestones": {
        "damage": [
            {"threshold": 10, "reward": {"tokens": 50}},
            {"threshold": 100, "reward": {"tokens": 200, "gems": 20}},
        ],
        "analysis": [{"threshold": 5, "reward": {"intel": 10}}],
    },
    "curses": {
        "drain_power": {
            "name": "Drain P",
            "kind": "stat_drain",
            "params": {"stat": "power", "factor": 0.5},
        },
        "drain_power2": {
            "name": "Drain P2",
            "kind": "stat_drain",
            "params": {"stat": "power", "factor": 0.8},
        },
        "drain_end": {
            "name": "Drain E",
            "kind": "stat_drain",
            "params": {"stat": "endurance", "factor": 0.5},
        },
        "drain_charm": {
            "name": "Drain C",
            "kind": "stat_drain",
            "params": {"stat": "charm", "factor": 0.1},
        },
        "suppress_fire": {
            "name": "Sup F",
            "kind": "tag_suppression",
            "params": {"tag": "fire", "factor": 0.5},
        },
        "suppress_striker": {
            "name": "Sup S",
            "kind": "tag_suppression",
            "params": {"tag": "striker", "factor": 0.75},
        },
        "dampen": {"name": "Dampen", "kind": "dampen_weakness", "params": {"factor": 0.5}},
        "fortify_fight": {
            "name": "Fort F",
            "kind": "fortify",
            "params": {"action": "fight", "factor": 0.5},
        },
        "fortify_analyze": {
            "name": "Fort A",
            "kind": "fortify",
            "params": {"action": "analyze", "factor": 1.5},
        },
        "cap2": {"name": "Cap 2", "kind": "team_cap", "params": {"max": 2}},
        "surge": {"name": "Surge", "kind": "cooldown_surge", "params": {"factor": 1.5}},
        "surge2": {"name": "Surge 2", "kind": "cooldown_surge", "params": {"factor": 2}},
    },
    "bosses": {
        "golem": {
            "name": "Test Golem",
            "total_hp": 1000,
            "duration_s": 1000,
            "dominant_stats": ["power", "endurance"],
            "weaknesses": ["fire"],
            "resistances": ["water", "wind"],
            "weakness_pool": ["wind", "earth"],
            "curse_pool": ["drain_power", "suppress_fire", "fortify_fight"],
            "analysis_thresholds": [10, 20, 40],
            "analysis_reward_pool": [{"gems": 1}, {"gems": 2}, {"gems": 3}],
            "victory_cache": {"gems": 100},
        }
    },
}


def default_document() -> dict[str, Any]:
    """The shipped defaults as a TOML document."""
    text = resources.files("raid").joinpath("default_config.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


deep_merge = merge_documents
"""The config loader's own merge rule (raid/config.py): one definition."""


def make_config(*overrides: Mapping[str, Any]) -> Config:
    """The small test config, with further ``overrides`` merged over it."""
    doc = deep_merge(default_document(), TEST_OVERRIDES)
    for override in overrides:
        doc = deep_merge(doc, override)
    return parse_config(doc, "test.toml")


def with_scoring(rules: Rules, **changes: Fraction | int) -> Rules:
    """``rules`` with some [scoring] values replaced."""
    return replace(rules, scoring=replace(rules.scoring, **changes))  # type: ignore[arg-type]


def make_state(
    template: BossTemplate,
    *,
    now: float = START,
    start: float = START,
    end: float = END,
    raid_id: str = "r1",
) -> RaidState:
    return RaidState(new_boss_state(template, raid_id, start, end, now))


def char(
    character_id: str,
    tags: Iterable[str] = (),
    *,
    power: int = 0,
    endurance: int = 0,
    agility: int = 0,
    intellect: int = 0,
    spirit: int = 0,
    charm: int = 0,
    rarity: int = 3,
) -> Character:
    stats = {
        "power": power,
        "agility": agility,
        "intellect": intellect,
        "spirit": spirit,
        "endurance": endurance,
        "charm": charm,
    }
    return Character(character_id, character_id.upper(), rarity, stats, frozenset(tags))


def roster(*characters: Character) -> dict[str, Character]:
    return {c.character_id: c for c in characters}


def command(
    user_id: str,
    team: Iterable[str],
    characters: Mapping[str, Character],
    *,
    action: Action = Action.FIGHT,
    strike_id: str | None = None,
) -> StrikeCommand:
    team_t = tuple(team)
    sid = strike_id if strike_id is not None else f"{user_id}-{'-'.join(team_t)}"
    return StrikeCommand(user_id, action, team_t, sid, characters)


def strike(
    rules: Rules,
    state: RaidState,
    cmd: StrikeCommand,
    now: float,
    rng: random.Random | None = None,
) -> StrikeResult:
    """decide + apply a strike with a freshly built scoring context."""
    context = ScoringContext.build(rules, state.boss)
    result = decide_strike(rules, state, context, cmd, now, rng or random.Random(0))
    apply_strike(state, result)
    return result


def snapshot(state: RaidState) -> dict[str, Any]:
    """Everything of a raid's state, as plain data (for before/after comparisons)."""
    return {
        "boss": boss_to_dict(state.boss),
        "players": {u: player_to_dict(p) for u, p in sorted(state.players.items())},
        "claimed": {u: dict(p.claimed) for u, p in sorted(state.players.items())},
    }


@pytest.fixture(scope="session")
def config() -> Config:
    return make_config()


@pytest.fixture(scope="session")
def rules(config: Config) -> Rules:
    return config.rules


@pytest.fixture(scope="session")
def golem(config: Config) -> BossTemplate:
    return config.bosses["golem"]


@pytest.fixture
def state(golem: BossTemplate) -> RaidState:
    return make_state(golem)
