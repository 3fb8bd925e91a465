"""Deciding and applying strikes: the heart of the rules (RULES.md).

``decide_strike(state, command, now, rng)`` validates the command in the order RULES.md gives,
computes the outcome and draws every random outcome, and returns a ``StrikeResult`` — or raises
``Rejection`` having changed nothing. ``apply_strike(state, result)`` then commits the result to
the state; it uses no randomness and cannot fail, so replaying journaled results over a snapshot
reproduces the state exactly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from fractions import Fraction

from raid.config import Action, Bundle, Rules
from raid.errors import ErrorCode, Rejection
from raid.leaderboard import Leaderboards
from raid.lifecycle import status_at
from raid.limits import saturating_add
from raid.models import Character, PlayerRaidState, RaidState, RaidStatus, Roster
from raid.scoring import ScoringContext
from raid.strike_ids import remember

HP_MILESTONES: tuple[int, ...] = (75, 50, 25, 10)
"""Boss hp percentages whose crossing is announced."""


@dataclass(frozen=True, slots=True)
class StrikeCommand:
    user_id: str
    action: Action
    team: tuple[str, ...]
    strike_id: str
    roster: Roster
    """The player's roster at the time of the strike (ownership and stats)."""


@dataclass(frozen=True, slots=True)
class Breakthrough:
    index: int
    """1-based, like the ``breakthrough:<k>`` reward keys."""
    weakness: str | None
    """The tag drawn from the weakness pool, or None when the pool was exhausted."""


@dataclass(frozen=True, slots=True)
class Retaliation:
    curse: str
    replaced: str | None


@dataclass(slots=True, eq=True)
class StrikeResult:
    """Everything a strike changed, every draw included: the journal entry's content.

    Treated as immutable once built (it is shared between threads); not frozen only because
    a frozen dataclass costs several microseconds more to build, on the hottest path.
    """

    raid_id: str
    seq: int
    """The raid's strike_count after this strike (1, 2, 3, …)."""
    at: float
    user_id: str
    strike_id: str
    action: Action
    team: tuple[str, ...]
    base_num: int
    base_den: int
    multiplier: Fraction
    score: int
    damage: int
    analysis_points: int
    boss_hp: int
    analysis_total: int
    breakthroughs: tuple[Breakthrough, ...]
    retaliations: tuple[Retaliation, ...]
    hp_milestones: tuple[int, ...]
    victory: bool
    cooldown_until: float
    rest_until: float | None
    """When the team's characters may strike again; None: not in this raid."""
    reward: Bundle

    @property
    def base(self) -> Fraction:
        return Fraction(self.base_num, self.base_den)

    @property
    def reward_key(self) -> str:
        return f"strike:{self.strike_id}"


def decide_strike(
    rules: Rules,
    state: RaidState,
    context: ScoringContext,
    command: StrikeCommand,
    now: float,
    rng: random.Random,
) -> StrikeResult:
    """Validate and resolve a strike without changing anything; raise ``Rejection`` if refused.

    ``context`` must be ``ScoringContext.build(rules, state.boss)`` for the current state.
    """
    boss = state.boss
    status = status_at(boss, now)
    if status is not RaidStatus.ACTIVE:
        raise Rejection(ErrorCode.RAID_NOT_ACTIVE, f"raid {boss.raid_id} is {status.value}")
    team = command.team
    if not 1 <= len(team) <= context.max_team_size:
        raise Rejection(
            ErrorCode.INVALID_TEAM,
            f"a team has 1 to {context.max_team_size} characters, not {len(team)}",
        )
    if len(set(team)) != len(team):
        raise Rejection(ErrorCode.INVALID_TEAM, "a character appears twice in the team")
    player = state.players.get(command.user_id)
    if player is not None and now < player.cooldown_until:
        raise cooldown_rejection(player.cooldown_until, now)
    roster = command.roster
    members: list[Character] = []
    missing: list[str] = []
    for character_id in team:
        member = roster.get(character_id)
        if member is None:
            missing.append(character_id)
        else:
            members.append(member)
    if missing:
        raise Rejection(
            ErrorCode.CHARACTER_NOT_OWNED,
            f"not in your roster: {', '.join(missing)}",
            character_ids=missing,
        )
    if player is not None:
        tired = [c for c in team if player.is_exhausted(c, now)]
        if tired:
            raise exhausted_rejection(tired)
    return _resolve(rules, state, context, command, members, now, rng)


def cooldown_rejection(cooldown_until: float, now: float) -> Rejection:
    """``on_cooldown``, with retry_after rounded up to the millisecond (never 0)."""
    retry_after = math.ceil((cooldown_until - now) * 1000) / 1000
    return Rejection(
        ErrorCode.ON_COOLDOWN, f"on cooldown for {retry_after:.3f} s", retry_after=retry_after
    )


def exhausted_rejection(tired: list[str]) -> Rejection:
    return Rejection(
        ErrorCode.CHARACTER_EXHAUSTED,
        f"already used in this raid: {', '.join(tired)}",
        character_ids=tired,
    )


def _resolve(
    rules: Rules,
    state: RaidState,
    context: ScoringContext,
    command: StrikeCommand,
    members: list[Character],
    now: float,
    rng: random.Random,
) -> StrikeResult:
    boss = state.boss
    scored = context.score(members)
    outcome = context.outcome(command.action, scored.score)
    damage = points = 0
    if command.action is Action.FIGHT:
        damage = min(outcome, boss.current_hp)
    else:
        points = outcome
    hp_after = boss.current_hp - damage
    analysis_after = saturating_add(boss.analysis_points, points)
    seq = boss.strike_count + 1
    rest = rules.player.character_rest_s
    return StrikeResult(
        raid_id=boss.raid_id,
        seq=seq,
        at=now,
        user_id=command.user_id,
        strike_id=command.strike_id,
        action=command.action,
        team=command.team,
        base_num=scored.base_num,
        base_den=scored.base_den,
        multiplier=scored.multiplier,
        score=scored.score,
        damage=damage,
        analysis_points=points,
        boss_hp=hp_after,
        analysis_total=analysis_after,
        breakthroughs=_draw_breakthroughs(state, analysis_after, rng),
        retaliations=_draw_retaliation(state, seq, rng),
        hp_milestones=_milestones_crossed(boss.current_hp, hp_after, boss.total_hp)
        if damage
        else (),
        victory=hp_after == 0,
        cooldown_until=now + context.cooldown_float,
        rest_until=None if rest is None else now + float(rest),
        reward=rules.strike_rewards[command.action],
    )


def _milestones_crossed(before: int, after: int, total: int) -> tuple[int, ...]:
    return tuple(pct for pct in HP_MILESTONES if before * 100 > pct * total >= after * 100)


def _draw_breakthroughs(
    state: RaidState, analysis_after: int, rng: random.Random
) -> tuple[Breakthrough, ...]:
    boss = state.boss
    thresholds = boss.analysis_thresholds
    index = boss.analysis_breakthroughs
    if index >= len(thresholds) or analysis_after < thresholds[index]:
        return ()
    weaknesses = list(boss.weaknesses)
    found: list[Breakthrough] = []
    while index < len(thresholds) and analysis_after >= thresholds[index]:
        index += 1
        candidates = [t for t in boss.weakness_pool if t not in weaknesses]
        drawn = rng.choice(candidates) if candidates else None
        if drawn is not None:
            weaknesses.append(drawn)
        found.append(Breakthrough(index, drawn))
    return tuple(found)


def _draw_retaliation(state: RaidState, seq: int, rng: random.Random) -> tuple[Retaliation, ...]:
    boss = state.boss
    if seq % boss.settings.retaliation_every != 0 or boss.curse_limit == 0:
        return ()
    candidates = [c for c in boss.curse_pool if c not in boss.active_curses]
    if not candidates:
        return ()
    curse = rng.choice(candidates)
    replaced = boss.active_curses[0] if len(boss.active_curses) >= boss.curse_limit else None
    return (Retaliation(curse, replaced),)


def apply_strike(
    state: RaidState,
    result: StrikeResult,
    boards: Leaderboards | None = None,
    strike_id_window: int | None = None,
) -> PlayerRaidState:
    """Commit ``result`` to ``state`` (and the leaderboards, if kept); deterministic.

    With ``strike_id_window``, the player keeps only that many latest strike_ids (memory stays
    bounded; the journal answers older repeats, see raid.strike_ids).
    """
    boss = state.boss
    boss.current_hp = result.boss_hp
    boss.analysis_points = result.analysis_total
    boss.strike_count = result.seq
    player = state.player(result.user_id)
    old_damage = (player.personal_damage, player.damage_seq)
    old_analysis = (player.personal_analysis, player.analysis_seq)
    if result.damage:
        player.personal_damage = saturating_add(player.personal_damage, result.damage)
        player.damage_seq = result.seq
    if result.analysis_points:
        player.personal_analysis = saturating_add(player.personal_analysis, result.analysis_points)
        player.analysis_seq = result.seq
    player.strikes += 1
    player.last_strike_time = result.at
    player.cooldown_until = result.cooldown_until
    for character_id in result.team:
        player.exhausted[character_id] = result.rest_until
    remember(player, result.strike_id, result.seq, strike_id_window)
    if result.breakthroughs:
        weaknesses = list(boss.weaknesses)
        resistances = list(boss.resistances)
        for found in result.breakthroughs:
            if found.weakness is not None:
                weaknesses.append(found.weakness)
                if found.weakness in resistances:
                    resistances.remove(found.weakness)
        boss.weaknesses = tuple(weaknesses)
        boss.resistances = tuple(resistances)
        boss.analysis_breakthroughs = result.breakthroughs[-1].index
    for retaliation in result.retaliations:
        active = [c for c in boss.active_curses if c != retaliation.replaced]
        active.append(retaliation.curse)
        boss.active_curses = tuple(active)
    if result.victory:
        boss.status = RaidStatus.DEFEATED
        boss.final_blow_user = result.user_id
        boss.ended_at = result.at
    if boards is not None:
        boards.update(player, old_damage, old_analysis)
    return player


def changes_scoring(result: StrikeResult) -> bool:
    """Whether the result changed what later strikes score (curses, weaknesses)."""
    return bool(result.retaliations) or any(b.weakness for b in result.breakthroughs)
