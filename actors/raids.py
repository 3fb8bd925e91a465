"""Creating raids and granting rosters: shared by the running server and the operator CLI."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from persistence.database import Database
from persistence.errors import DuplicateRaid
from persistence.records import CharacterRow, RaidRow
from raid.codec import boss_to_dict, new_boss_state
from raid.config import Config
from raid.errors import ErrorCode, FieldError, ProtocolError, Rejection
from raid.limits import MAX_ID_LEN, MAX_STAT
from raid.models import Character, RaidState, Roster

_COMPACT = (",", ":")
MAX_RARITY = 5


@dataclass(frozen=True, slots=True)
class CharacterGrant:
    """A character to add to a roster; the server picks an id when none is given."""

    character_id: str | None
    name: str
    rarity: int
    stats: Mapping[str, int]
    tags: tuple[str, ...]


async def create_raid(
    db: Database,
    config: Config,
    boss_id: str,
    *,
    now: float,
    start: float | None = None,
    end: float | None = None,
    raid_id: str | None = None,
) -> RaidState:
    """Create a raid from a boss template, with its initial snapshot (seq 0), in one
    transaction. Times must lie within raid.limits' range (the wire and the CLI parse them
    with ``raid.limits.parse_time``)."""
    template = config.bosses.get(boss_id)
    if template is None:
        known = ", ".join(sorted(config.bosses))
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"unknown boss template {boss_id!r} (known: {known})"
        )
    begin = now if start is None else start
    finish = begin + template.duration_s if end is None else end
    if finish <= begin:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "end must be after start")
    rid = raid_id or f"{boss_id}-{uuid.uuid4().hex[:8]}"
    boss = new_boss_state(template, rid, begin, finish, now)
    row = RaidRow(
        raid_id=rid,
        boss_id=boss_id,
        name=template.name,
        status=boss.status.value,
        event_start=begin,
        event_end=finish,
        created_at=now,
        ended_at=None,
        template_json=json.dumps(boss_to_dict(boss), separators=_COMPACT),
        rng_seed=0,
    )
    try:
        await db.create_boss_raid_with_snapshot(row, current_hp=boss.current_hp)
    except DuplicateRaid:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"raid {rid!r} already exists") from None
    return RaidState(boss)


def check_grant(config: Config, grant: CharacterGrant, path: str) -> None:
    """One character against the configured stats and tags: ``FieldError`` naming the field.

    ``path`` is where the character sits in its request (``characters[2]``), "" for none.
    """
    prefix = f"{path}." if path else ""
    if not 1 <= len(grant.name) <= MAX_ID_LEN:
        raise FieldError(f"{prefix}name", f"must be a string of 1-{MAX_ID_LEN} characters")
    if grant.character_id is not None and not 1 <= len(grant.character_id) <= MAX_ID_LEN:
        raise FieldError(f"{prefix}character_id", f"must be a string of 1-{MAX_ID_LEN} characters")
    stats_known = config.rules.stats
    unknown = sorted(set(grant.stats) - set(stats_known))
    if unknown:
        raise FieldError(
            f"{prefix}stats",
            f"unknown stat(s) {', '.join(unknown)} (known: {', '.join(stats_known)})",
        )
    negative = sorted(s for s, v in grant.stats.items() if v < 0)
    if negative:
        raise FieldError(f"{prefix}stats", f"negative value(s) for {', '.join(negative)}")
    too_big = sorted(s for s, v in grant.stats.items() if v > MAX_STAT)
    if too_big:
        raise FieldError(f"{prefix}stats", f"{', '.join(too_big)} above the maximum {MAX_STAT}")
    bad_tags = sorted(set(grant.tags) - config.rules.tags)
    if bad_tags:
        raise FieldError(
            f"{prefix}tags",
            f"unknown tag(s) {', '.join(bad_tags)} (known: {', '.join(sorted(config.rules.tags))})",
        )
    if not 1 <= grant.rarity <= MAX_RARITY:
        raise FieldError(f"{prefix}rarity", f"must be 1 to {MAX_RARITY}, not {grant.rarity}")


def validate_grants(
    config: Config, user_id: str, grants: Sequence[CharacterGrant]
) -> list[CharacterRow]:
    """Check characters (``check_grant``) and give ids to those without one (random).

    The one validator of characters: the wire (``admin.roster.grant``), ``import-roster`` and
    the demo world all pass through it, so a character one path accepts every path accepts.
    """
    rows: list[CharacterRow] = []
    seen: set[str] = set()
    for index, grant in enumerate(grants):
        where = f"characters[{index}]"
        check_grant(config, grant, where)
        character_id = grant.character_id or uuid.uuid4().hex[:16]
        if character_id in seen:
            raise FieldError(where, f"duplicate id {character_id}")
        seen.add(character_id)
        rows.append(character_row(config, user_id, character_id, grant))
    return rows


def character_row(
    config: Config, user_id: str, character_id: str, grant: CharacterGrant
) -> CharacterRow:
    """The stored row of a checked grant: every configured stat present (missing ones 0)."""
    stats = {name: int(grant.stats.get(name, 0)) for name in config.rules.stats}
    return CharacterRow(character_id, user_id, grant.name, grant.rarity, stats, grant.tags)


def stable_character_id(user_id: str, name: str, occurrence: int) -> str:
    """An id for an imported character without one, the same at every import of the file.

    From the owner, the name and which occurrence of that name it is for that owner (the
    second "Knight" of a player gets another id than the first), so importing a file twice
    updates the same characters instead of adding copies.
    """
    digest = hashlib.sha256(f"{user_id}\0{name}\0{occurrence}".encode()).hexdigest()
    return f"imp-{digest[:16]}"


class SharedParts:
    """One object for each distinct name, stat map and tag set of the characters built with
    it: characters of a kind share them, and a tag set alone is 216 bytes, a stat map about
    300, so a thousand cached rosters of 64 characters shrink by tens of MiB. Lives as long
    as one batch of rosters is built (nothing to bound or to expire)."""

    __slots__ = ("names", "stats", "tags")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.stats: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}
        self.tags: dict[frozenset[str], frozenset[str]] = {}

    def character(self, row: CharacterRow) -> Character:
        name = self.names.setdefault(row.name, row.name)
        key = tuple(row.stats.items())  # in order: equal maps iterate alike once shared
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = MappingProxyType(dict(key))
        tags = frozenset(row.tags)
        return Character(
            row.character_id, name, row.rarity, stats, self.tags.setdefault(tags, tags)
        )


def roster_of(rows: Sequence[CharacterRow], shared: SharedParts | None = None) -> Roster:
    """A player's roster as the rules see it; with ``shared``, equal parts are one object."""
    parts = SharedParts() if shared is None else shared
    return MappingProxyType({row.character_id: parts.character(row) for row in rows})


def not_found(raid_id: str) -> Rejection:
    return Rejection(ErrorCode.UNKNOWN_RAID, f"no raid {raid_id!r}")
