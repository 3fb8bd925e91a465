"""Creating raids and granting rosters: shared by the running server and the operator CLI."""

from __future__ import annotations

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
from raid.errors import ErrorCode, ProtocolError, Rejection
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


def validate_grants(
    config: Config, user_id: str, grants: Sequence[CharacterGrant]
) -> list[CharacterRow]:
    """Check characters against the configured stats and tags; give ids to new ones.

    The one validator of characters: the wire (``admin.roster.grant``), ``import-roster`` and
    the demo world all pass through it, so a character one path accepts every path accepts.
    """
    stats_known = frozenset(config.rules.stats)
    tags_known = config.rules.tags
    rows: list[CharacterRow] = []
    seen: set[str] = set()
    for index, grant in enumerate(grants):
        where = f"characters[{index}]"
        if not 1 <= len(grant.name) <= MAX_ID_LEN:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"{where}.name: must be a string of 1-{MAX_ID_LEN} characters",
            )
        if grant.character_id is not None and not 1 <= len(grant.character_id) <= MAX_ID_LEN:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"{where}.character_id: must be a string of 1-{MAX_ID_LEN} characters",
            )
        unknown = sorted(set(grant.stats) - stats_known)
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.stats: unknown stat(s) {unknown}")
        negative = sorted(s for s, v in grant.stats.items() if v < 0)
        if negative:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.stats: negative {negative}")
        too_big = sorted(s for s, v in grant.stats.items() if v > MAX_STAT)
        if too_big:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"{where}.stats: {too_big} above the maximum {MAX_STAT}"
            )
        bad_tags = sorted(set(grant.tags) - tags_known)
        if bad_tags:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.tags: unknown tag(s) {bad_tags}")
        if not 1 <= grant.rarity <= MAX_RARITY:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.rarity: must be 1 to 5")
        character_id = grant.character_id or uuid.uuid4().hex[:16]
        if character_id in seen:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: duplicate id {character_id}")
        seen.add(character_id)
        stats = {name: int(grant.stats.get(name, 0)) for name in config.rules.stats}
        rows.append(
            CharacterRow(character_id, user_id, grant.name, grant.rarity, stats, grant.tags)
        )
    return rows


def roster_of(rows: Sequence[CharacterRow]) -> Roster:
    """A player's roster as the rules see it."""
    return MappingProxyType(
        {
            row.character_id: Character(
                character_id=row.character_id,
                name=row.name,
                rarity=row.rarity,
                stats=MappingProxyType(dict(row.stats)),
                tags=frozenset(row.tags),
            )
            for row in rows
        }
    )


def not_found(raid_id: str) -> Rejection:
    return Rejection(ErrorCode.UNKNOWN_RAID, f"no raid {raid_id!r}")
