"""Typed messages between the service, the actors and the loop. All immutable.

Every request carries ``now`` (the rules never read a clock) and, when it comes from the loop,
a ``Reply``; actors asking each other use pykka's ``ask`` and leave ``reply`` as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.bridge import Answer
from raid.models import PlayerRaidState, RaidStatus, Roster
from raid.rewards import Claim
from raid.strike import StrikeCommand, StrikeResult

# -- to a RaidActor -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrikeRequest:
    command: StrikeCommand
    now: float
    reply: Answer[Any] | None = None
    checked: bool = False
    """The journal was searched for this strike_id and does not have it."""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    user_id: str
    key: str
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class HubRequest:
    user_id: str
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class TeamOptionsRequest:
    user_id: str
    roster: Roster
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class ClaimableRequest:
    user_id: str
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class PlayerStateRequest:
    """A copy of one player's state (a PlayerActor rebuilding its cache)."""

    user_id: str
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class EndRaidRequest:
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class SummaryRequest:
    now: float
    reply: Answer[Any] | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """The clock: lets a raid become active or expire on time."""

    now: float


# -- replies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrikeOutcome:
    """An accepted strike (or the original of a repeated strike_id) and its journal entry."""

    result: StrikeResult
    entry: Any
    """The JournalEntry to await before replying (None once long committed)."""
    raid_active: bool
    event_end: float


@dataclass(frozen=True, slots=True)
class DuplicateStrike:
    """A repeated strike_id whose report is no longer in memory: read it from the journal."""

    seq: int


@dataclass(frozen=True, slots=True)
class CheckJournal:
    """A strike_id the RaidActor does not know, from a player whose older strike_ids are no
    longer in memory: search the journal, then send the strike again ``checked``."""


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    claim: Claim
    entry: Any


@dataclass(frozen=True, slots=True)
class PlayerView:
    """What a PlayerActor caches: the player's state and the raid's state of play."""

    player: PlayerRaidState | None
    raid_active: bool
    event_end: float
    """The cache never pre-refuses at or after the raid's end: raid_not_active comes first."""


@dataclass(frozen=True, slots=True)
class RaidSummary:
    raid_id: str
    name: str
    status: RaidStatus
    current_hp: int
    total_hp: int
    strike_count: int
