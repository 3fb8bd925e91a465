"""The values that cross the persistence seam.

Raid and player state are opaque JSON text chosen by the callers; this layer never parses it.
Every record is a frozen, slotted dataclass: records travel between the event loop and the
actor threads without being copied, so they must not change after construction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CharacterRow:
    character_id: str  # unique across the server
    user_id: str  # the owner
    name: str
    rarity: int  # 1..5 stars
    stats: Mapping[str, int]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RaidRow:
    raid_id: str
    boss_id: str
    name: str
    status: str  # scheduled / active / defeated / expired / ended
    event_start: float
    event_end: float
    created_at: float
    ended_at: float | None
    template_json: str  # the boss template frozen at creation (opaque JSON text)
    rng_seed: int


@dataclass(frozen=True, slots=True)
class RewardGrant:
    """A reward recorded once under (raid_id, user_id, key): a strike grant or a claim."""

    raid_id: str
    user_id: str
    key: str  # strike:<strike_id>, damage:<threshold>, analysis:<t>, breakthrough:<k>, victory
    bundle: Mapping[str, int]  # currency -> amount
    at: float


@dataclass(frozen=True, slots=True)
class StrikeRecord:
    """One accepted strike, as journaled: enough to replay it without any randomness."""

    raid_id: str
    seq: int  # the raid's strike_count after this strike: 1, 2, 3... contiguous per raid
    at: float
    user_id: str
    strike_id: str  # the client's idempotency key
    action: str  # fight / analyze
    team: tuple[str, ...]
    base: str  # exact rational "num/den"
    multiplier: str  # exact rational "num/den"
    score: int
    damage: int
    analysis_points: int
    breakthrough: bool
    retaliation: bool
    victory: bool
    draws_json: str  # the outcome of every random draw (opaque JSON text)
    result_json: str  # the full result, used for replay (opaque JSON text)
    grant: RewardGrant | None  # the strike:<strike_id> reward granted with it


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    snapshot_id: int
    raid_id: str
    seq: int  # the journal seq the snapshot includes (strikes 1..seq)
    taken_at: float
    current_hp: int
    strike_count: int


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    info: SnapshotInfo
    raid_state_json: str
    players: list[tuple[str, str]]  # (user_id, player_state_json), ordered by user_id


@dataclass(frozen=True, slots=True)
class PendingReward:
    """A granted reward the game's backend has not acknowledged yet."""

    id: int  # pass to ack_rewards once delivered
    raid_id: str
    user_id: str
    key: str
    bundle: Mapping[str, int]
    at: float


class ClaimStatus(enum.Enum):
    CLAIMED = "claimed"
    ALREADY_CLAIMED = "already_claimed"


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What restore_to_snapshot changed (rows are kept, never deleted: only marked)."""

    restore_id: int | None  # None for a raid rolled back before restore history was kept
    snapshot_id: int
    seq: int  # the raid's strike count now
    status: str  # the raid status recorded in the snapshot, now the raid's
    rolled_forward: bool  # the snapshot had been rolled back by an earlier restore
    rolled_back_strikes: int
    restored_strikes: int  # rolled-back strikes live again (rolling forward)
    rolled_back_grants: int  # strike grants rolled back with their strikes
    restored_grants: int
    rolled_back_delivered_grants: int  # rolled back, though acknowledged by the backend
    rolled_back_snapshots: int
    restored_snapshots: int


@dataclass(frozen=True, slots=True)
class RestoreInfo:
    """One row of a raid's restore history."""

    restore_id: int
    at: float
    snapshot_id: int
    seq: int
    rolled_back_strikes: int
    restored_strikes: int


@dataclass(frozen=True, slots=True)
class SchemaUpgrade:
    """The migrations applied when a database was opened."""

    from_version: int
    to_version: int


@dataclass(frozen=True, slots=True)
class AuditedStrike:
    """A journaled strike as support sees it: rolled-back ones too, with its grant."""

    record: StrikeRecord
    rolled_back: bool
    grant_acked_at: float | None  # when the backend acknowledged the strike's reward


@dataclass(frozen=True, slots=True)
class AuditedClaim:
    """A reward row of a player: granted with a strike (strike_seq) or claimed."""

    grant: RewardGrant
    strike_seq: int | None
    acked_at: float | None
    rolled_back: bool
