"""Fencing: a raid host whose lease was taken over cannot write a single journal entry.

Two hosts in one process, each with its own Database connection to the same file, as two
processes on a shared disk would be: host A serves, pauses (it simply stops being asked),
host B takes the lease over, then A is asked to strike and to snapshot again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from actors.service import RaidService
from persistence.database import Database
from persistence.leases import acquire_lease
from raid.config import Action
from raid.errors import ErrorCode, RaidError
from server.metrics import Metrics
from tests.actors.conftest import Harness, make_config


async def test_a_stale_host_cannot_write_after_a_takeover(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    db_a = await Database.open(tmp_path / "raid.db")
    db_a.fence = (await acquire_lease(db_a, "host-a", ttl_s=5, now=time.time())).fence
    host_a = RaidService(config, db_a, Metrics())
    await host_a.start()
    db_b = await Database.open(tmp_path / "raid.db")
    try:
        harness = Harness(host_a, db_a, tmp_path)
        raid_id = await host_a.create_raid("dummy")
        await harness.grant("alice")
        await harness.strike("alice", raid_id, ["alice-c0"], "s1")
        # A is paused past its lease; B takes the lease over (generation 2).
        lease_b = await acquire_lease(db_b, "host-b", ttl_s=5, now=time.time() + 60)
        db_b.fence = lease_b.fence
        assert lease_b.fence.generation == 2
        with pytest.raises(RaidError) as refused:
            await host_a.strike("alice", raid_id, Action.FIGHT, ["alice-c1"], "s2")
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert "taken over" in refused.value.message
        with pytest.raises(RaidError, match="taken over"):
            await host_a.snapshot(raid_id)
        logs = await db_b.get_raid_strike_logs_by_raid(raid_id)
        assert [log.strike_id for log in logs] == ["s1"]  # not one entry from the stale host
    finally:
        await host_a.stop()
        await db_a.close()
        await db_b.close()
