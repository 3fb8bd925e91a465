"""Operator requests: each parsed admin op mapped to its call on the raids' interface."""

from __future__ import annotations

import logging
from typing import Any

from actors.api import RaidApi
from actors.raids import CharacterGrant
from raid.errors import ErrorCode, ProtocolError
from server.requests import (
    AdminRaidCreate,
    AdminRaidEnd,
    AdminRaidRestore,
    AdminRequest,
    AdminRewardsAck,
    AdminRewardsPending,
    AdminRosterGrant,
    AdminSnapshot,
)

log = logging.getLogger("raid.admin")


async def run_admin(api: RaidApi, user_id: str, req: AdminRequest) -> dict[str, Any]:
    """The reply fields of an operator request (the gateway checked the admin role)."""
    log.info("admin %s by %s", req.op, user_id, extra={"user": user_id})
    match req:
        case AdminRaidCreate():
            return {"raid_id": await api.create_raid(req.boss, req.start, req.end, req.raid_id)}
        case AdminRaidEnd():
            return {"status": await api.end_raid_status(req.raid_id)}
        case AdminRosterGrant():
            grants = [
                CharacterGrant(c.character_id, c.name, c.rarity, c.stats, c.tags)
                for c in req.characters
            ]
            return {"character_ids": await api.grant_roster(req.user_id, grants)}
        case AdminSnapshot():
            return await api.take_snapshot(req.raid_id)
        case AdminRaidRestore():
            return await api.restore_to_snapshot(req.raid_id, req.snapshot_id)
        case AdminRewardsPending():
            return {"rewards": await api.rewards_pending(req.limit)}
        case AdminRewardsAck():
            return {"acked": await api.rewards_ack(req.ids)}
    raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown admin op {req.op}")
