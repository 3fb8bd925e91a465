"""Exact score arithmetic (RULES.md, "Score" and "Resolution").

Every factor has at most two decimal places, so ``factor * 100`` is an integer. A
``ScoringContext`` turns the active curses into integer numerators over powers of 100 once per
curse change; a strike then costs only integer multiplications and one floor division. No
floating point is involved anywhere; ``Fraction`` is used only to build the context.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from raid.config import Action, Curse, CurseKind, Rules
from raid.limits import MAX_POINTS
from raid.models import BossRaidState, Character

_HUNDRED = 100

MEMBER_CACHE = 500_000
"""Characters whose contribution a context remembers (it is rebuilt on every curse change)."""


def _per_cent(factor: Fraction) -> int:
    """factor * 100 as an exact integer (config guarantees at most two decimals)."""
    scaled = factor * _HUNDRED
    if scaled.denominator != 1:
        raise ValueError(f"factor {factor} has more than two decimal places")
    return scaled.numerator


@dataclass(frozen=True, slots=True)
class Score:
    """A team's score: ``base = base_num / base_den`` and ``multiplier`` exact."""

    base_num: int
    base_den: int
    multiplier: Fraction
    score: int
    weak_members: int
    resisted_members: int

    @property
    def base(self) -> Fraction:
        return Fraction(self.base_num, self.base_den)


@dataclass(slots=True)
class ScoringContext:
    """The scoring rules under one set of active curses and boss tags."""

    dominant_stats: tuple[str, ...]
    weaknesses: frozenset[str]
    resistances: frozenset[str]
    stat_nums: tuple[int, ...]
    """stat_f(s) * 100**len(stat drains), for each dominant stat in order."""
    stat_den: int
    suppressions: tuple[tuple[str, int], ...]
    """(tag, factor * 100) of each active tag_suppression curse."""
    tag_den: int
    bonus: Fraction
    penalty: Fraction
    multiplier_min: Fraction
    multiplier_max: Fraction
    fortify: Mapping[Action, Fraction]
    divisors: Mapping[Action, int]
    max_team_size: int
    cooldown_s: Fraction
    cooldown_float: float
    """cooldown_s as a float, for adding to ``now`` (times are floats; scores are not)."""
    _multipliers: dict[tuple[int, int], Fraction] = field(default_factory=dict)
    _members: dict[str, tuple[Character, int, bool, bool]] = field(default_factory=dict)
    """character_id -> (the Character scored, contribution_num, weak, resisted)."""

    @classmethod
    def build(cls, rules: Rules, boss: BossRaidState) -> ScoringContext:
        curses = [rules.curses[c] for c in boss.active_curses]
        drains = [c for c in curses if c.kind is CurseKind.STAT_DRAIN]
        stat_nums = tuple(
            _product(_per_cent(d.factor) if d.stat == s else _HUNDRED for d in drains)
            for s in boss.dominant_stats
        )
        suppressions = tuple(
            (str(c.tag), _per_cent(c.factor)) for c in curses if c.kind is CurseKind.TAG_SUPPRESSION
        )
        scoring = rules.scoring
        cooldown = rules.player.strike_cooldown_s * _factor(curses, CurseKind.COOLDOWN_SURGE)
        return cls(
            dominant_stats=boss.dominant_stats,
            weaknesses=frozenset(boss.weaknesses),
            resistances=frozenset(boss.resistances),
            stat_nums=stat_nums,
            stat_den=_HUNDRED ** len(drains),
            suppressions=suppressions,
            tag_den=_HUNDRED ** len(suppressions),
            bonus=scoring.weakness_bonus * _factor(curses, CurseKind.DAMPEN_WEAKNESS),
            penalty=scoring.resistance_penalty,
            multiplier_min=scoring.multiplier_min,
            multiplier_max=scoring.multiplier_max,
            fortify={
                action: _factor((c for c in curses if c.action is action), CurseKind.FORTIFY)
                for action in Action
            },
            divisors={
                Action.FIGHT: scoring.damage_divisor,
                Action.ANALYZE: scoring.analysis_divisor,
            },
            max_team_size=min(
                [rules.player.max_team_size]
                + [int(c.max or 0) for c in curses if c.kind is CurseKind.TEAM_CAP]
            ),
            cooldown_s=cooldown,
            cooldown_float=float(cooldown),
        )

    def contribution_num(self, member: Character) -> int:
        """contrib(m) * stat_den * tag_den, an exact integer."""
        stats = member.stats
        total = 0
        for stat, num in zip(self.dominant_stats, self.stat_nums, strict=True):
            total += stats.get(stat, 0) * num
        tags = member.tags
        for tag, num in self.suppressions:
            total *= num if tag in tags else _HUNDRED
        return total

    def contribution(self, member: Character) -> Fraction:
        return Fraction(self.contribution_num(member), self.stat_den * self.tag_den)

    def multiplier(self, weak: int, resisted: int) -> Fraction:
        key = (weak, resisted)
        cached = self._multipliers.get(key)
        if cached is None:
            raw = 1 + weak * self.bonus - resisted * self.penalty
            cached = max(self.multiplier_min, min(self.multiplier_max, raw))
            self._multipliers[key] = cached
        return cached

    def member_terms(self, member: Character) -> tuple[int, bool, bool]:
        """(contribution_num, weak, resisted) of a character, computed once per context."""
        _, contribution, weak, resisted = self._member(member)
        return contribution, weak, resisted

    def _member(self, member: Character) -> tuple[Character, int, bool, bool]:
        """A member's contribution and tags under this context, computed once per character."""
        cached = self._members.get(member.character_id)
        if cached is None or cached[0] is not member:
            if len(self._members) >= MEMBER_CACHE:
                self._members.clear()
            cached = (
                member,
                self.contribution_num(member),
                not self.weaknesses.isdisjoint(member.tags),
                not self.resistances.isdisjoint(member.tags),
            )
            self._members[member.character_id] = cached
        return cached

    def score(self, team: Iterable[Character]) -> Score:
        base_num = 0
        weak = resisted = 0
        for member in team:
            _, contribution, is_weak, is_resisted = self._member(member)
            base_num += contribution
            weak += is_weak
            resisted += is_resisted
        base_den = self.stat_den * self.tag_den
        multiplier = self.multiplier(weak, resisted)
        score = min(
            (base_num * multiplier.numerator) // (base_den * multiplier.denominator), MAX_POINTS
        )
        return Score(base_num, base_den, multiplier, score, weak, resisted)

    def outcome(self, action: Action, score: int) -> int:
        """floor(score * fortify_f(action) / divisor): damage or analysis points, before the hp
        cap, held at MAX_POINTS."""
        fortify = self.fortify[action]
        outcome = (score * fortify.numerator) // (fortify.denominator * self.divisors[action])
        return min(outcome, MAX_POINTS)


def _factor(curses: Iterable[Curse], kind: CurseKind) -> Fraction:
    result = Fraction(1)
    for curse in curses:
        if curse.kind is kind:
            result *= curse.factor
    return result


def _product(values: Iterable[int]) -> int:
    result = 1
    for value in values:
        result *= value
    return result
