"""Typed replies and events of docs/protocol.md, as frozen dataclasses.

Each type has ``from_wire(map)``; every one keeps the map it came from in ``raw`` so a
field this version does not model is still reachable. A reply missing a field the
protocol promises raises ``ProtocolViolation``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from raidclient.errors import ProtocolViolation

Bundle = Mapping[str, int]
"""A reward bundle: item -> amount."""

T = TypeVar("T")


def parse(kind: str, build: Callable[[], T]) -> T:
    """Run ``build`` and turn a missing or ill-typed field into ``ProtocolViolation``."""
    try:
        return build()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolViolation(f"{kind}: malformed reply ({type(exc).__name__}: {exc})") from None


# --- session --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RaidSummary:
    raid_id: str
    name: str
    status: str  # scheduled, active, defeated, expired or ended


@dataclass(frozen=True, slots=True)
class Hello:
    user_id: str
    role: str  # "player" or "admin"
    server_time: float  # unix seconds
    raids: tuple[RaidSummary, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> Hello:
        return parse(
            "hello.ok",
            lambda: cls(
                user_id=str(msg["user_id"]),
                role=str(msg["role"]),
                server_time=float(msg["server_time"]),
                raids=tuple(
                    RaidSummary(str(r["raid_id"]), str(r["name"]), str(r["status"]))
                    for r in msg["raids"]
                ),
                raw=msg,
            ),
        )


# --- raid.hub -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Curse:
    id: str
    name: str
    kind: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RaidView:
    raid_id: str
    boss_id: str
    name: str
    total_hp: int
    current_hp: int
    dominant_stats: tuple[str, ...]
    weaknesses: tuple[str, ...]
    resistances: tuple[str, ...]
    active_curses: tuple[Curse, ...]
    curse_limit: int
    analysis_points: int
    next_analysis_threshold: int | None
    event_start: float
    event_end: float
    strike_count: int
    status: str
    final_blow_user: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> RaidView:
        return cls(
            raid_id=str(msg["raid_id"]),
            boss_id=str(msg["boss_id"]),
            name=str(msg["name"]),
            total_hp=int(msg["total_hp"]),
            current_hp=int(msg["current_hp"]),
            dominant_stats=tuple(msg["dominant_stats"]),
            weaknesses=tuple(msg["weaknesses"]),
            resistances=tuple(msg["resistances"]),
            active_curses=tuple(
                Curse(str(c["id"]), str(c["name"]), str(c["kind"]), dict(c["params"]))
                for c in msg["active_curses"]
            ),
            curse_limit=int(msg["curse_limit"]),
            analysis_points=int(msg["analysis_points"]),
            next_analysis_threshold=msg.get("next_analysis_threshold"),
            event_start=float(msg["event_start"]),
            event_end=float(msg["event_end"]),
            strike_count=int(msg["strike_count"]),
            status=str(msg["status"]),
            final_blow_user=msg.get("final_blow_user"),
            raw=msg,
        )


@dataclass(frozen=True, slots=True)
class PlayerView:
    user_id: str
    cooldown_until: float
    personal_damage: int
    personal_analysis: int
    strikes: int
    exhausted_characters: Mapping[str, float | str]  # id -> unix time or "event"
    rewards_claimed: tuple[str, ...]
    rank_damage: int | None
    rank_analysis: int | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> PlayerView:
        return cls(
            user_id=str(msg["user_id"]),
            cooldown_until=float(msg.get("cooldown_until") or 0.0),
            personal_damage=int(msg["personal_damage"]),
            personal_analysis=int(msg["personal_analysis"]),
            strikes=int(msg["strikes"]),
            exhausted_characters=dict(msg["exhausted_characters"]),
            rewards_claimed=tuple(msg["rewards_claimed"]),
            rank_damage=msg.get("rank_damage"),
            rank_analysis=msg.get("rank_analysis"),
            raw=msg,
        )


@dataclass(frozen=True, slots=True)
class Rank:
    user_id: str
    value: int


@dataclass(frozen=True, slots=True)
class Hub:
    raid: RaidView
    me: PlayerView
    damage_board: tuple[Rank, ...]
    analysis_board: tuple[Rank, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> Hub:
        def board(rows: list[Mapping[str, Any]]) -> tuple[Rank, ...]:
            return tuple(Rank(str(r["user_id"]), int(r["value"])) for r in rows)

        return parse(
            "raid.hub.ok",
            lambda: cls(
                raid=RaidView.from_wire(msg["raid"]),
                me=PlayerView.from_wire(msg["me"]),
                damage_board=board(msg["leaderboard"]["damage"]),
                analysis_board=board(msg["leaderboard"]["analysis"]),
                raw=msg,
            ),
        )


# --- team.options ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CharacterOption:
    character_id: str
    name: str
    rarity: int
    stats: Mapping[str, int]
    tags: tuple[str, ...]
    exhausted: bool
    contribution: float  # for display and ranking; the server scores exactly
    weak: bool  # one of its tags is a current weakness
    resisted: bool  # one of its tags is a current resistance


@dataclass(frozen=True, slots=True)
class TeamOptions:
    max_team_size: int
    characters: tuple[CharacterOption, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> TeamOptions:
        return parse(
            "team.options.ok",
            lambda: cls(
                max_team_size=int(msg["max_team_size"]),
                characters=tuple(
                    CharacterOption(
                        character_id=str(c["character_id"]),
                        name=str(c["name"]),
                        rarity=int(c["rarity"]),
                        stats=dict(c["stats"]),
                        tags=tuple(c["tags"]),
                        exhausted=bool(c["exhausted"]),
                        contribution=float(c["contribution"]),
                        weak=bool(c["weak"]),
                        resisted=bool(c["resisted"]),
                    )
                    for c in msg["characters"]
                ),
                raw=msg,
            ),
        )

    def best_team(self) -> list[str]:
        """The rested characters with the highest contribution, at most ``max_team_size``.

        Weak-tagged characters first among equals (they raise the multiplier), resisted
        ones last; ties broken by id so the choice is stable.
        """
        rested = [c for c in self.characters if not c.exhausted]
        rested.sort(key=lambda c: (-c.contribution, not c.weak, c.resisted, c.character_id))
        return [c.character_id for c in rested[: self.max_team_size]]


# --- strike ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breakthrough:
    index: int  # 1-based
    weakness: str | None  # None when the weakness pool was empty


@dataclass(frozen=True, slots=True)
class Retaliation:
    curse: str
    replaced: str | None


@dataclass(frozen=True, slots=True)
class Reward:
    key: str
    bundle: Bundle


@dataclass(frozen=True, slots=True)
class StrikeReport:
    """The after-action report (``strike.ok``)."""

    strike_id: str
    action: str
    team: tuple[str, ...]
    base: float
    multiplier: float
    score: int
    damage: int
    analysis_points: int
    boss_hp: int
    analysis_total: int
    strike_count: int  # this strike's number in the raid
    breakthroughs: tuple[Breakthrough, ...]
    retaliations: tuple[Retaliation, ...]
    victory: bool
    rewards: tuple[Reward, ...]
    cooldown_until: float  # unix seconds
    exhausted: tuple[str, ...]
    exhausted_until: float | None  # None: rest for the rest of the raid
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> StrikeReport:
        return parse(
            "strike.ok",
            lambda: cls(
                strike_id=str(msg["strike_id"]),
                action=str(msg["action"]),
                team=tuple(msg["team"]),
                base=float(msg["base"]),
                multiplier=float(msg["multiplier"]),
                score=int(msg["score"]),
                damage=int(msg["damage"]),
                analysis_points=int(msg["analysis_points"]),
                boss_hp=int(msg["boss_hp"]),
                analysis_total=int(msg["analysis_total"]),
                strike_count=int(msg["strike_count"]),
                breakthroughs=tuple(
                    Breakthrough(int(b["index"]), b["weakness"]) for b in msg["breakthroughs"]
                ),
                retaliations=tuple(
                    Retaliation(str(r["curse"]), r["replaced"]) for r in msg["retaliations"]
                ),
                victory=bool(msg["victory"]),
                rewards=tuple(Reward(str(r["key"]), dict(r["bundle"])) for r in msg["rewards"]),
                cooldown_until=float(msg["cooldown_until"]),
                exhausted=tuple(msg["exhausted"]),
                exhausted_until=(
                    None if msg["exhausted_until"] is None else float(msg["exhausted_until"])
                ),
                raw=msg,
            ),
        )


# --- rewards --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedReward:
    key: str
    bundle: Bundle
    at: float  # unix seconds


@dataclass(frozen=True, slots=True)
class Rewards:
    claimable: tuple[Reward, ...]
    claimed: tuple[ClaimedReward, ...]  # grant order, strike: rewards included
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_wire(cls, msg: Mapping[str, Any]) -> Rewards:
        return parse(
            "rewards.list.ok",
            lambda: cls(
                claimable=tuple(Reward(str(r["key"]), dict(r["bundle"])) for r in msg["claimable"]),
                claimed=tuple(
                    ClaimedReward(str(r["key"]), dict(r["bundle"]), float(r["at"]))
                    for r in msg["claimed"]
                ),
                raw=msg,
            ),
        )


@dataclass(frozen=True, slots=True)
class PendingReward:
    """A row of the operator's reward feed (``admin.rewards.pending``)."""

    id: int
    raid_id: str
    user_id: str
    key: str
    bundle: Bundle
    at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    snapshot_id: int
    seq: int  # the raid's strike count the snapshot reflects


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """A raid event (``{"op": "event"}``); subclasses per ``type``, this class for others."""

    type: str
    raid_id: str
    seq: int
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class HpEvent(Event):
    current_hp: int
    total_hp: int
    strike_count: int
    analysis_points: int


@dataclass(frozen=True, slots=True)
class BreakthroughEvent(Event):
    index: int
    weakness: str | None


@dataclass(frozen=True, slots=True)
class RetaliationEvent(Event):
    curse: str
    replaced: str | None


@dataclass(frozen=True, slots=True)
class MilestoneEvent(Event):
    hp_pct: int


@dataclass(frozen=True, slots=True)
class VictoryEvent(Event):
    final_blow_user: str


@dataclass(frozen=True, slots=True)
class RaidEndedEvent(Event):
    status: str  # defeated, expired or ended


@dataclass(frozen=True, slots=True)
class AnnouncementEvent(Event):
    text: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Yielded by ``subscribe()`` when events were missed: ``hub`` is the state now.

    After a resync the stream goes on with live events from ``seq`` + 1.
    """

    raid_id: str
    seq: int
    hub: Hub


_EVENT_FIELDS: Mapping[str, tuple[type[Event], tuple[str, ...]]] = {
    "hp": (HpEvent, ("current_hp", "total_hp", "strike_count", "analysis_points")),
    "breakthrough": (BreakthroughEvent, ("index", "weakness")),
    "retaliation": (RetaliationEvent, ("curse", "replaced")),
    "milestone": (MilestoneEvent, ("hp_pct",)),
    "victory": (VictoryEvent, ("final_blow_user",)),
    "raid_ended": (RaidEndedEvent, ("status",)),
    "announcement": (AnnouncementEvent, ("text",)),
}


def event_from_wire(msg: Mapping[str, Any]) -> Event:
    """The typed event for one ``{"op": "event"}`` map."""

    def build() -> Event:
        kind = str(msg["type"])
        common: dict[str, Any] = {
            "type": kind,
            "raid_id": str(msg["raid_id"]),
            "seq": int(msg["seq"]),
        }
        cls, names = _EVENT_FIELDS.get(kind, (Event, ()))
        return cls(**common, raw=msg, **{name: msg[name] for name in names})

    return parse("event", build)
