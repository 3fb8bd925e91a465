"""Conversions between records and SQL rows, with the column lists they rely on.

JSON columns are written compactly with sorted keys, so equal values give equal text.
Each ``*_COLUMNS`` string and its ``*_from_row`` function must list the same columns in the
same order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson

from persistence.records import (
    AuditedClaim,
    AuditedStrike,
    CharacterRow,
    PendingReward,
    RaidRow,
    RewardGrant,
    SnapshotInfo,
    StrikeRecord,
)

Row = Sequence[Any]


def dump_json(value: object) -> str:
    """Compact JSON with sorted keys (orjson: this runs several times per journaled strike)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def load_bundle(text: str) -> dict[str, int]:
    bundle: dict[str, int] = json.loads(text)
    return bundle


CHARACTER_COLUMNS = "character_id, user_id, name, rarity, stats, tags"


def character_params(row: CharacterRow) -> tuple[object, ...]:
    return (
        row.character_id,
        row.user_id,
        row.name,
        row.rarity,
        dump_json(dict(row.stats)),
        dump_json(list(row.tags)),
    )


T = TypeVar("T")


def padded(items: list[T]) -> list[T]:
    """``items`` repeated at the end up to the next power of two (at least one item).

    A batched read's SQL has one placeholder per item; padding its length to a power of two
    keeps the number of distinct statements small. Every connection caches the statements it
    prepared (128 each), and one per batch size (1 to 512) made the cache, and the server's
    memory, grow for hours as new sizes came up."""
    size = 1 << max(0, (len(items) - 1).bit_length())
    return items + [items[-1]] * (size - len(items)) if items else items


def characters_as_one_row(users: int) -> str:
    """The characters of ``users`` users as one JSON object of arrays, in one row
    (``database.ONE_STEP_READS``); ``characters_from_one_row`` reads it."""
    marks = ", ".join("?" * users)
    return (
        "SELECT json_group_object(user_id, json(characters)) FROM ("
        "SELECT user_id, json_group_array(json_array(character_id, name, rarity, json(stats), "
        f"json(tags))) AS characters FROM characters WHERE user_id IN ({marks}) "
        "GROUP BY user_id)"
    )


def characters_from_one_row(text: str, user_ids: Sequence[str]) -> dict[str, list[CharacterRow]]:
    """Each of ``user_ids``' characters, ordered by ``character_id`` (none: an empty list)."""
    found: dict[str, list[CharacterRow]] = {user_id: [] for user_id in user_ids}
    for user_id, items in orjson.loads(text).items():
        characters = found[user_id]
        for item in items:
            characters.append(
                CharacterRow(
                    character_id=item[0],
                    user_id=user_id,
                    name=item[1],
                    rarity=item[2],
                    stats=item[3],
                    tags=tuple(item[4]),
                )
            )
        characters.sort(key=lambda row: row.character_id)
    return found


def strike_ids_as_one_row(pairs: int) -> str:
    """The seq of each of ``pairs`` ``(user_id, strike_id)`` a raid's journal holds, as one
    JSON array in one row; parameters: the pairs, then the raid_id. The join probes the
    ``raid_strike_logs_strike_id`` index once per pair (a plain ``IN`` scans the raid)."""
    values = ", ".join(["(?, ?)"] * pairs)
    return (
        f"WITH wanted(user_id, strike_id) AS (VALUES {values}) "
        "SELECT json_group_array(json_array(l.user_id, l.strike_id, l.seq)) "
        "FROM wanted AS w CROSS JOIN raid_strike_logs AS l ON l.raid_id = ? "
        "AND l.user_id = w.user_id AND l.strike_id = w.strike_id AND l.rolled_back = 0"
    )


def character_from_row(row: Row) -> CharacterRow:
    return CharacterRow(
        character_id=row[0],
        user_id=row[1],
        name=row[2],
        rarity=row[3],
        stats=json.loads(row[4]),
        tags=tuple(json.loads(row[5])),
    )


RAID_COLUMNS = (
    "raid_id, boss_id, name, status, event_start, event_end, created_at, ended_at, template, "
    "rng_seed"
)


def raid_params(row: RaidRow) -> tuple[object, ...]:
    return (
        row.raid_id,
        row.boss_id,
        row.name,
        row.status,
        row.event_start,
        row.event_end,
        row.created_at,
        row.ended_at,
        row.template_json,
        row.rng_seed,
    )


def raid_from_row(row: Row) -> RaidRow:
    return RaidRow(
        raid_id=row[0],
        boss_id=row[1],
        name=row[2],
        status=row[3],
        event_start=row[4],
        event_end=row[5],
        created_at=row[6],
        ended_at=row[7],
        template_json=row[8],
        rng_seed=row[9],
    )


STRIKE_INSERT_COLUMNS = (
    "raid_id, seq, at, user_id, strike_id, action, team, base, multiplier, score, damage, "
    "analysis_points, breakthrough, retaliation, victory, draws, result"
)


def strike_params(record: StrikeRecord) -> tuple[object, ...]:
    return (
        record.raid_id,
        record.seq,
        record.at,
        record.user_id,
        record.strike_id,
        record.action,
        dump_json(list(record.team)),
        record.base,
        record.multiplier,
        record.score,
        record.damage,
        record.analysis_points,
        int(record.breakthrough),
        int(record.retaliation),
        int(record.victory),
        record.draws_json,
        record.result_json,
    )


# A strike with its grant: the grant row carries strike_seq = the strike's seq.
STRIKE_SELECT = (
    "SELECT l.raid_id, l.seq, l.at, l.user_id, l.strike_id, l.action, l.team, l.base, "
    "l.multiplier, l.score, l.damage, l.analysis_points, l.breakthrough, l.retaliation, "
    "l.victory, l.draws, l.result, g.user_id, g.key, g.bundle, g.at "
    "FROM raid_strike_logs AS l "
    "LEFT JOIN raid_reward_claims AS g "
    "ON g.raid_id = l.raid_id AND g.strike_seq = l.seq AND g.rolled_back = 0 "
)


def strike_from_row(row: Row) -> StrikeRecord:
    grant = None
    if row[18] is not None:
        grant = RewardGrant(
            raid_id=row[0], user_id=row[17], key=row[18], bundle=load_bundle(row[19]), at=row[20]
        )
    return StrikeRecord(
        raid_id=row[0],
        seq=row[1],
        at=row[2],
        user_id=row[3],
        strike_id=row[4],
        action=row[5],
        team=tuple(json.loads(row[6])),
        base=row[7],
        multiplier=row[8],
        score=row[9],
        damage=row[10],
        analysis_points=row[11],
        breakthrough=bool(row[12]),
        retaliation=bool(row[13]),
        victory=bool(row[14]),
        draws_json=row[15],
        result_json=row[16],
        grant=grant,
    )


# Support audits: rolled-back strikes too, each with the grant of its own timeline (the grant
# row inserted with it: same strike_seq, same rolled_back flag).
AUDIT_SELECT = STRIKE_SELECT.replace(
    "AND g.rolled_back = 0",
    "AND g.rolled_back = l.rolled_back AND g.user_id = l.user_id "
    "AND g.key = 'strike:' || l.strike_id",
).replace("g.at ", "g.at, l.rolled_back, g.acked_at ")


def audited_from_row(row: Row) -> AuditedStrike:
    return AuditedStrike(strike_from_row(row), bool(row[21]), row[22])


AUDIT_CLAIM_COLUMNS = "raid_id, user_id, key, bundle, at, strike_seq, acked_at, rolled_back"


def audited_claim_from_row(row: Row) -> AuditedClaim:
    return AuditedClaim(grant_from_row(row), row[5], row[6], bool(row[7]))


GRANT_INSERT_COLUMNS = "raid_id, user_id, key, bundle, at, strike_seq"


def grant_params(grant: RewardGrant, strike_seq: int | None) -> tuple[object, ...]:
    return (
        grant.raid_id,
        grant.user_id,
        grant.key,
        dump_json(dict(grant.bundle)),
        grant.at,
        strike_seq,
    )


GRANT_COLUMNS = "raid_id, user_id, key, bundle, at"


def grant_from_row(row: Row) -> RewardGrant:
    return RewardGrant(
        raid_id=row[0], user_id=row[1], key=row[2], bundle=load_bundle(row[3]), at=row[4]
    )


PENDING_COLUMNS = "id, raid_id, user_id, key, bundle, at"


def pending_from_row(row: Row) -> PendingReward:
    return PendingReward(
        id=row[0],
        raid_id=row[1],
        user_id=row[2],
        key=row[3],
        bundle=load_bundle(row[4]),
        at=row[5],
    )


SNAPSHOT_COLUMNS = "snapshot_id, raid_id, seq, taken_at, current_hp, strike_count"


def snapshot_from_row(row: Row) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=row[0],
        raid_id=row[1],
        seq=row[2],
        taken_at=row[3],
        current_hp=row[4],
        strike_count=row[5],
    )
