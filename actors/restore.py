"""Rebuilding a raid from durable state: latest snapshot + replay of the journal after it.

The CPU part (decoding JSON, replaying results) runs in a worker thread so that restoring a
large raid at runtime never freezes the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from persistence.database import Database
from persistence.records import LoadedSnapshot, RaidRow, RewardGrant, SnapshotInfo
from raid.codec import boss_from_dict, player_from_dict, result_from_dict
from raid.config import Rules
from raid.lifecycle import advance_status
from raid.models import RaidState, RaidStatus
from raid.rewards import STRIKE_PREFIX
from raid.strike import StrikeResult, apply_strike


class RestoreError(Exception):
    """A raid's durable state is inconsistent, unreadable or no longer fits the config,
    so the raid cannot be restored. The server marks such a raid out of service and keeps
    serving the others; ``raid-server check`` shows why."""


@dataclass(frozen=True, slots=True)
class StateSource:
    """A restore's decoded inputs (read-only): enough to build the raid's state again.

    The Snapshotter builds its shadow copy from it on its own thread, after the raid is
    already serving, instead of start-up paying for a second copy.
    """

    row: RaidRow
    boss_raw: dict[str, Any]
    players_raw: list[dict[str, Any]]
    results: list[StrikeResult]
    now: float

    def build(self) -> RaidState:
        with gc_paused():
            return _build(self.row, self.boss_raw, self.players_raw, self.results, self.now)


@dataclass(frozen=True, slots=True)
class RestoredRaid:
    row: RaidRow
    state: RaidState
    """For the RaidActor."""
    source: StateSource
    """For the Snapshotter, which builds its own copy from it."""
    snapshot_seq: int
    replayed: int


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building a restored state: every object built is kept, and
    collecting while millions of them are built tripled the restore time."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


async def restore_raid(db: Database, raid_id: str, now: float) -> RestoredRaid | None:
    """Load ``raid_id`` as it was after its last committed journal entry (None if unknown)."""
    row = await db.get_boss_raid_by_id(raid_id)
    if row is None:
        return None
    snapshot = await db.load_snapshot(raid_id) or _template_snapshot(row)
    logs = await db.get_strike_results(raid_id, after_seq=snapshot.info.seq)
    claims = await db.get_claims(raid_id, exclude_prefix=STRIKE_PREFIX)
    return await asyncio.to_thread(build_restored, row, snapshot, logs, claims, now)


def _template_snapshot(row: RaidRow) -> LoadedSnapshot:
    """The seq-0 snapshot of a raid that has none: its template is its initial state.

    Raids are created with their first snapshot in one transaction; a raid row without one
    was left by an older version that wrote them in two (a crash between the two).
    """
    try:
        current_hp = int(orjson.loads(row.template_json)["current_hp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RestoreError(f"raid {row.raid_id}: no snapshot and an unreadable template") from exc
    info = SnapshotInfo(0, row.raid_id, 0, row.created_at, current_hp, 0)
    return LoadedSnapshot(info, row.template_json, [])


def unknown_curses(rules: Rules, state: RaidState) -> list[str]:
    """Curses the raid uses that the config no longer defines (the raid cannot run)."""
    boss = state.boss
    return sorted({*boss.active_curses, *boss.curse_pool} - set(rules.curses))


def build_restored(
    row: RaidRow,
    snapshot: LoadedSnapshot,
    logs: Sequence[tuple[int, str]],
    claims: Sequence[RewardGrant],
    now: float,
) -> RestoredRaid:
    """Decode and replay (with the cyclic GC paused); ``RestoreError`` if unreadable."""
    with gc_paused():
        try:
            return _decode_and_replay(row, snapshot, logs, claims, now)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Corrupt or foreign JSON in the snapshot or the journal (orjson's decode errors
            # are ValueErrors): this raid cannot be restored, the others can.
            raise RestoreError(
                f"raid {row.raid_id}: stored state cannot be read ({type(exc).__name__}: {exc})"
            ) from exc


def _decode_and_replay(
    row: RaidRow,
    snapshot: LoadedSnapshot,
    logs: Sequence[tuple[int, str]],
    claims: Sequence[RewardGrant],
    now: float,
) -> RestoredRaid:
    boss_raw = orjson.loads(snapshot.raid_state_json)
    players_raw = [orjson.loads(state) for _, state in snapshot.players]
    results = [result_from_dict(orjson.loads(result)) for _, result in logs]
    expected = snapshot.info.seq + 1
    for result in results:
        if result.seq != expected:
            raise RestoreError(
                f"raid {row.raid_id}: journal jumps from seq {expected - 1} to {result.seq}"
            )
        expected += 1
    state = _build(row, boss_raw, players_raw, results, now)
    for claim in claims:
        state.player(claim.user_id).claimed[claim.key] = claim.at
    source = StateSource(row, boss_raw, players_raw, results, now)
    return RestoredRaid(row, state, source, snapshot.info.seq, len(results))


def _build(
    row: RaidRow,
    boss_raw: dict[str, Any],
    players_raw: list[dict[str, Any]],
    results: list[StrikeResult],
    now: float,
) -> RaidState:
    state = RaidState(boss_from_dict(boss_raw))
    for raw in players_raw:
        player = player_from_dict(raw)
        state.players[player.user_id] = player
    for result in results:
        apply_strike(state, result)
    boss = state.boss
    if row.status == RaidStatus.ENDED.value and not boss.status.is_final:
        boss.status = RaidStatus.ENDED
        boss.ended_at = row.ended_at if row.ended_at is not None else now
    advance_status(boss, now)
    return state
