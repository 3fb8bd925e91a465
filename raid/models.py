"""The raid's state: plain data, owned and mutated only by the rules (``raid.strike``).

``BossRaidState`` and ``PlayerRaidState`` follow RULES.md field by field, plus the few fields
the rules need to stay deterministic (``final_blow_user``, ``ended_at``, the strike sequence at
which a player's totals last rose, for leaderboard ties).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from raid.config import Bundle, RaidConfig


class RaidStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    DEFEATED = "defeated"
    EXPIRED = "expired"
    ENDED = "ended"

    @property
    def is_final(self) -> bool:
        return self in (RaidStatus.DEFEATED, RaidStatus.EXPIRED, RaidStatus.ENDED)


@dataclass(frozen=True, slots=True)
class Character:
    """A character of a player's roster (immutable; rosters change by replacement)."""

    character_id: str
    name: str
    rarity: int
    stats: Mapping[str, int]
    tags: frozenset[str]


Roster = Mapping[str, Character]
"""A player's roster: character_id -> Character."""


@dataclass(slots=True)
class BossRaidState:
    raid_id: str
    boss_id: str
    name: str
    total_hp: int
    current_hp: int
    dominant_stats: tuple[str, ...]
    weaknesses: tuple[str, ...]
    resistances: tuple[str, ...]
    weakness_pool: tuple[str, ...]
    curse_pool: tuple[str, ...]
    active_curses: tuple[str, ...]
    """Curse ids, oldest first (the oldest is replaced when the limit is reached)."""
    curse_limit: int
    analysis_thresholds: tuple[int, ...]
    analysis_points: int
    analysis_breakthroughs: int
    analysis_reward_pool: tuple[Bundle, ...]
    victory_cache: Bundle
    event_start: float
    event_end: float
    strike_count: int
    status: RaidStatus
    settings: RaidConfig
    """The boss template's [raid] keys, frozen into the raid when it was created."""
    final_blow_user: str | None = None
    ended_at: float | None = None
    """When the raid left ``active`` (victory, expiry or operator end): starts claim grace."""


EVICTED_FILTER_BYTES = 256
"""Size of a player's filter of evicted strike_ids (raid.strike_ids)."""


@dataclass(slots=True)
class PlayerRaidState:
    user_id: str
    raid_id: str
    last_strike_time: float | None = None
    cooldown_until: float = 0.0
    exhausted: dict[str, float | None] = field(default_factory=dict)
    """character_id -> exhausted until (unix seconds), or None for the rest of the raid."""
    personal_damage: int = 0
    personal_analysis: int = 0
    strikes: int = 0
    damage_seq: int = 0
    """Strike sequence number at which personal_damage last rose (leaderboard tie-break)."""
    analysis_seq: int = 0
    strike_ids: dict[str, int] = field(default_factory=dict)
    """strike_id -> seq of the player's latest accepted strikes (idempotency; see
    raid.strike_ids: older ones are in ``evicted_ids`` and the journal)."""
    evicted_ids: bytearray = field(default_factory=lambda: bytearray(EVICTED_FILTER_BYTES))
    """A Bloom filter of the strike_ids pushed out of ``strike_ids`` (raid.strike_ids)."""
    claimed: dict[str, float] = field(default_factory=dict)
    """Claimed reward key -> when (claimable keys only; strike rewards live in strike_ids)."""

    def copy(self) -> PlayerRaidState:
        """An independent copy (the dicts are copied; their keys and values are immutable)."""
        return PlayerRaidState(
            user_id=self.user_id,
            raid_id=self.raid_id,
            last_strike_time=self.last_strike_time,
            cooldown_until=self.cooldown_until,
            exhausted=dict(self.exhausted),
            personal_damage=self.personal_damage,
            personal_analysis=self.personal_analysis,
            strikes=self.strikes,
            damage_seq=self.damage_seq,
            analysis_seq=self.analysis_seq,
            strike_ids=dict(self.strike_ids),
            evicted_ids=bytearray(self.evicted_ids),
            claimed=dict(self.claimed),
        )

    def is_exhausted(self, character_id: str, now: float) -> bool:
        if character_id not in self.exhausted:
            return False
        until = self.exhausted[character_id]
        return until is None or now < until


@dataclass(slots=True)
class RaidState:
    """One raid: the boss and every player who has taken part."""

    boss: BossRaidState
    players: dict[str, PlayerRaidState] = field(default_factory=dict)

    def player(self, user_id: str) -> PlayerRaidState:
        """The player's state, created empty on first use."""
        state = self.players.get(user_id)
        if state is None:
            state = self.players[user_id] = PlayerRaidState(user_id, self.boss.raid_id)
        return state
