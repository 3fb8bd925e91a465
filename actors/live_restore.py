"""``admin.raid.restore``: move a running raid to a snapshot without stopping the server.

The raid's actors stop (entries they already accepted are committed or refused), the restore
is written in one transaction (``Database.restore_to_snapshot``: back, or forward again to a
snapshot an earlier restore rolled back), the raid starts again from that snapshot, and its
subscribers get a ``resync`` event: their view is stale, they should call ``raid.hub``. Other
raids keep serving throughout; this raid's requests answer ``unavailable`` meanwhile.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from actors.raids import not_found
from persistence.errors import RestoreRefused, UnknownSnapshot
from persistence.records import RestoreResult
from raid.errors import ErrorCode, Rejection

if TYPE_CHECKING:
    from actors.service import RaidService

log = logging.getLogger(__name__)


def status_of_state(raid_state_json: str) -> tuple[str, float | None]:
    """The raid status and ``ended_at`` recorded in a snapshot's raid state."""
    boss = orjson.loads(raid_state_json)
    return str(boss["status"]), boss["ended_at"]


def restore_fields(result: RestoreResult) -> dict[str, Any]:
    """The reply fields of ``admin.raid.restore`` (and the CLI's summary)."""
    return {
        "snapshot_id": result.snapshot_id,
        "seq": result.seq,
        "status": result.status,
        "rolled_forward": result.rolled_forward,
        "rolled_back_strikes": result.rolled_back_strikes,
        "restored_strikes": result.restored_strikes,
        "rolled_back_snapshots": result.rolled_back_snapshots,
        "restored_snapshots": result.restored_snapshots,
        "rolled_back_delivered_grants": result.rolled_back_delivered_grants,
    }


async def restore_live(service: RaidService, raid_id: str, snapshot_id: int) -> dict[str, Any]:
    if await service.db.get_boss_raid_by_id(raid_id) is None:
        raise not_found(raid_id)

    async def change() -> RestoreResult:
        try:
            return await service.db.restore_to_snapshot(
                raid_id, snapshot_id, at=service.clock(), status_of=status_of_state
            )
        except (UnknownSnapshot, RestoreRefused) as exc:
            raise Rejection(ErrorCode.BAD_REQUEST, str(exc)) from None

    result = await service.rewrite(raid_id, change)
    assert result is not None
    fields = restore_fields(result)
    log.info(
        "raid %s %s to snapshot %d (seq %d): %d strikes rolled back, %d rolled forward",
        raid_id,
        "rolled forward" if result.rolled_forward else "restored",
        snapshot_id,
        result.seq,
        result.rolled_back_strikes,
        result.restored_strikes,
        extra={"raid": raid_id},
    )
    service.publish_events(
        raid_id,
        [
            {"type": "resync", "reason": "restore", "snapshot_id": snapshot_id, "seq": result.seq},
            {
                "type": "announcement",
                "text": "An operator restored the raid: refresh to see where it stands.",
            },
        ],
    )
    return fields
