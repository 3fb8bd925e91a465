"""Who plays a simulated raid: rosters and play patterns, described by a small TOML file.

A population file may give any subset of the keys below; the rest take the defaults
(``DEFAULT_POPULATION``). Every value is checked, and a problem raises ``ConfigError``
(``file: key.path: problem``), the same one-line form as the server's config::

    [roster]
    size = [20, 40]                      # characters per player (inclusive)
    rarity_weights = [35, 30, 20, 10, 5] # rarity 1..5
    stat_ranges = [[10, 60], [20, 90], [40, 130], [60, 180], [90, 250]]  # per rarity
    elements = { fire = 1, water = 1 }   # tag weights (default: every configured tag, equal)
    roles = { striker = 2, mystic = 1 }

    [play]
    analyst_share = 0.25                 # players who analyze until every threshold is passed
    team_choice = { greedy = 0.5, random = 0.3, fixed = 0.2 }
    sessions_per_day = [1, 3]
    session_minutes = [5, 40]
    active_hours = [7, 24]               # local hours in which sessions start
    utc_offset_hours = [-8, 9]
    reaction_s = [2, 30]                 # delay between "allowed to strike" and striking

Rosters are drawn from ``random.Random`` seeded per player from the run's seed, so the same
seed gives the same players whatever the boss or config (``--compare`` relies on it).
"""

from __future__ import annotations

import bisect
import enum
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from raid.config import Rules
from raid.errors import ConfigError

MAX_RARITY = 5
MAX_ROSTER = 1000
"""Characters per synthetic player at most (the wire's list bound)."""


class TeamChoice(enum.StrEnum):
    GREEDY = "greedy"
    """The rested characters with the highest ``contribution`` under the current curses."""
    RANDOM = "random"
    """Rested characters drawn at random."""
    FIXED = "fixed"
    """The first rested characters in roster order (a player who never re-plans)."""


@dataclass(frozen=True, slots=True)
class RosterModel:
    size: tuple[int, int]
    rarity_weights: tuple[float, ...]
    """Weight of rarity 1..5."""
    stat_ranges: tuple[tuple[int, int], ...]
    """Inclusive range of every stat, per rarity 1..5."""
    elements: tuple[tuple[str, float], ...]
    roles: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class PlayModel:
    analyst_share: float
    team_choice: tuple[tuple[TeamChoice, float], ...]
    sessions_per_day: tuple[int, int]
    session_minutes: tuple[float, float]
    active_hours: tuple[float, float]
    utc_offset_hours: tuple[int, int]
    reaction_s: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Population:
    roster: RosterModel
    play: PlayModel

    def to_dict(self) -> dict[str, Any]:
        """The resolved population, in the file's own shape (for reports)."""
        roster, play = self.roster, self.play
        return {
            "roster": {
                "size": list(roster.size),
                "rarity_weights": list(roster.rarity_weights),
                "stat_ranges": [list(r) for r in roster.stat_ranges],
                "elements": dict(roster.elements),
                "roles": dict(roster.roles),
            },
            "play": {
                "analyst_share": play.analyst_share,
                "team_choice": {c.value: w for c, w in play.team_choice},
                "sessions_per_day": list(play.sessions_per_day),
                "session_minutes": list(play.session_minutes),
                "active_hours": list(play.active_hours),
                "utc_offset_hours": list(play.utc_offset_hours),
                "reaction_s": list(play.reaction_s),
            },
        }


DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "roster": {
        "size": [20, 40],
        "rarity_weights": [35, 30, 20, 10, 5],
        "stat_ranges": [[10, 60], [20, 90], [40, 130], [60, 180], [90, 250]],
    },
    "play": {
        "analyst_share": 0.25,
        "team_choice": {"greedy": 0.5, "random": 0.3, "fixed": 0.2},
        "sessions_per_day": [1, 3],
        "session_minutes": [5, 40],
        "active_hours": [7, 24],
        "utc_offset_hours": [-8, 9],
        "reaction_s": [2, 30],
    },
}
"""Defaults of every key but the tag weights (every configured tag, equal weights)."""

_ROSTER_KEYS = ("size", "rarity_weights", "stat_ranges", "elements", "roles")
_PLAY_KEYS = tuple(DEFAULTS["play"])


def default_population(rules: Rules) -> Population:
    return parse_population({}, "(default population)", rules)


def parse_population(data: Mapping[str, Any], source: str, rules: Rules) -> Population:
    """Validate a population document (already read from TOML) merged over the defaults."""
    _only(source, "", data, ("roster", "play"))
    roster_raw = _table(source, "roster", data.get("roster", {}))
    play_raw = _table(source, "play", data.get("play", {}))
    _only(source, "roster", roster_raw, _ROSTER_KEYS)
    _only(source, "play", play_raw, _PLAY_KEYS)
    roster = {**DEFAULTS["roster"], **roster_raw}
    play = {**DEFAULTS["play"], **play_raw}
    r = _Reader(source, "roster", roster)
    size = r.int_range("size", 1, MAX_ROSTER)
    weights = r.numbers("rarity_weights", MAX_RARITY)
    ranges = r.ranges("stat_ranges", MAX_RARITY)
    elements = (
        r.weights("elements", rules.elements) if "elements" in roster else _even(rules.elements)
    )
    roles = r.weights("roles", rules.roles) if "roles" in roster else _even(rules.roles)
    q = _Reader(source, "play", play)
    choice = q.weights("team_choice", tuple(c.value for c in TeamChoice))
    active = q.float_range("active_hours", 0, 24)
    return Population(
        roster=RosterModel(size, weights, ranges, elements, roles),
        play=PlayModel(
            analyst_share=q.share("analyst_share"),
            team_choice=tuple((TeamChoice(name), w) for name, w in choice),
            sessions_per_day=q.int_range("sessions_per_day", 1, 96),
            session_minutes=q.float_range("session_minutes", 0.1, 24 * 60),
            active_hours=active,
            utc_offset_hours=q.int_range("utc_offset_hours", -12, 14),
            reaction_s=q.float_range("reaction_s", 0, 86400),
        ),
    )


def _even(names: Sequence[str]) -> tuple[tuple[str, float], ...]:
    return tuple((name, 1.0) for name in names)


def _only(source: str, path: str, data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise ConfigError(source, where, f"unknown key (expected one of: {', '.join(allowed)})")


def _table(source: str, key: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(source, key, f"must be a table, not {type(value).__name__}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Reader:
    """Reads one table of the population file, naming the key in every error."""

    def __init__(self, source: str, path: str, data: Mapping[str, Any]) -> None:
        self.source = source  # the file, for errors
        self.path = path  # the table's key path
        self.data = data  # the table, defaults merged in

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, f"{self.path}.{key}", problem)

    def _pair(
        self, key: str, value: object, lo: float, hi: float, *, integers: bool
    ) -> tuple[Any, Any]:
        kind = "integers" if integers else "numbers"
        if not isinstance(value, list) or len(value) != 2:
            raise self.error(key, f"must be [min, max], two {kind}")
        first, second = value
        for v in (first, second):
            if not (isinstance(v, int) and not isinstance(v, bool) if integers else _is_number(v)):
                raise self.error(key, f"must be [min, max], two {kind}")
        if not lo <= first <= second <= hi:
            raise self.error(key, f"must have {lo} <= min <= max <= {hi}, not {value}")
        return (first, second) if integers else (float(first), float(second))

    def int_range(self, key: str, lo: int, hi: int) -> tuple[int, int]:
        return self._pair(key, self.data[key], lo, hi, integers=True)

    def float_range(self, key: str, lo: float, hi: float) -> tuple[float, float]:
        return self._pair(key, self.data[key], lo, hi, integers=False)

    def ranges(self, key: str, count: int) -> tuple[tuple[int, int], ...]:
        value = self.data[key]
        if not isinstance(value, list) or len(value) != count:
            raise self.error(key, f"must be a list of {count} [min, max] pairs (rarity 1..{count})")
        return tuple(
            self._pair(f"{key}[{i}]", pair, 0, 10**9, integers=True) for i, pair in enumerate(value)
        )

    def numbers(self, key: str, count: int) -> tuple[float, ...]:
        value = self.data[key]
        if (
            not isinstance(value, list)
            or len(value) != count
            or not all(_is_number(v) and v >= 0 for v in value)
        ):
            raise self.error(key, f"must be a list of {count} weights >= 0 (rarity 1..{count})")
        if not any(value):
            raise self.error(key, "must not be all zero")
        return tuple(float(v) for v in value)

    def weights(self, key: str, names: Sequence[str]) -> tuple[tuple[str, float], ...]:
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.error(key, "must be a table of name = weight")
        for name, weight in value.items():
            if name not in names:
                raise self.error(
                    f"{key}.{name}", f"unknown name (expected one of: {', '.join(names)})"
                )
            if not _is_number(weight) or weight < 0:
                raise self.error(f"{key}.{name}", f"must be a weight >= 0, not {weight!r}")
        if not any(value.values()):
            raise self.error(key, "must give at least one positive weight")
        return tuple((name, float(value[name])) for name in names if value.get(name))

    def share(self, key: str) -> float:
        value = self.data[key]
        if not _is_number(value) or not 0 <= value <= 1:
            raise self.error(key, f"must be a number from 0 to 1, not {value!r}")
        return float(value)


class SyntheticCharacter(NamedTuple):
    """A drawn character (a tuple: a roster of 40 costs little to build)."""

    character_id: str
    rarity: int
    stats: tuple[int, ...]
    """One value per configured stat, in ``rules.stats`` order."""
    tags: tuple[str, str]
    """One element and one role."""


@dataclass(frozen=True, slots=True)
class SyntheticPlayer:
    user_id: str
    analyst: bool
    team_choice: TeamChoice
    utc_offset_h: int
    roster: tuple[SyntheticCharacter, ...]


def player_seed(seed: int, index: int) -> int:
    """Each player's own random stream: independent of every other player and of the config."""
    return (seed << 32) ^ index


class PlayerFactory:
    """Draws the players of one population for one set of rules (weights prepared once)."""

    def __init__(self, population: Population, rules: Rules, seed: int) -> None:
        roster, play = population.roster, population.play
        self.seed = seed  # the run's seed: player i draws from player_seed(seed, i)
        self.stat_count = len(rules.stats)  # values drawn per character
        self.size = roster.size  # roster size range
        self.rarity_cum = list(itertools.accumulate(roster.rarity_weights))  # for bisect
        self.stat_ranges = [(lo, hi - lo + 1) for lo, hi in roster.stat_ranges]  # (lo, span)
        self.elements = [name for name, _ in roster.elements]
        self.element_cum = list(itertools.accumulate(w for _, w in roster.elements))
        self.roles = [name for name, _ in roster.roles]
        self.role_cum = list(itertools.accumulate(w for _, w in roster.roles))
        self.analyst_share = play.analyst_share
        self.choices = [choice for choice, _ in play.team_choice]
        self.choice_cum = list(itertools.accumulate(w for _, w in play.team_choice))
        self.offsets = play.utc_offset_hours

    def player(self, index: int) -> SyntheticPlayer:
        """Player ``index`` (the same every time for the same seed and population)."""
        rng = random.Random(player_seed(self.seed, index))
        draw = rng.random
        user_id = f"sim{index:06d}"
        rarity_cum, element_cum, role_cum = self.rarity_cum, self.element_cum, self.role_cum
        rarity_total, element_total, role_total = rarity_cum[-1], element_cum[-1], role_cum[-1]
        elements, roles, ranges = self.elements, self.roles, self.stat_ranges
        stat_range = range(self.stat_count)
        roster = []
        for j in range(rng.randint(*self.size)):
            rarity = bisect.bisect(rarity_cum, draw() * rarity_total) + 1
            lo, span = ranges[rarity - 1]
            roster.append(
                SyntheticCharacter(
                    f"{user_id}-{j:03d}",
                    rarity,
                    tuple([lo + int(draw() * span) for _ in stat_range]),
                    (
                        elements[bisect.bisect(element_cum, draw() * element_total)],
                        roles[bisect.bisect(role_cum, draw() * role_total)],
                    ),
                )
            )
        analyst = draw() < self.analyst_share
        choice = self.choices[bisect.bisect(self.choice_cum, draw() * self.choice_cum[-1])]
        return SyntheticPlayer(user_id, analyst, choice, rng.randint(*self.offsets), tuple(roster))
