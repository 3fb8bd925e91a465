"""Raid host leases on a real SQLite file: generations, expiry, takeover, fencing."""

from __future__ import annotations

from pathlib import Path

import pytest

from persistence.database import Database
from persistence.leases import Fenced, LeaseHeld, acquire_lease, renew_lease


async def test_a_held_lease_is_refused_until_it_expires(tmp_path: Path) -> None:
    async with Database(tmp_path / "raid.db") as db:
        first = await acquire_lease(db, "host-a", ttl_s=10, now=100.0)
        assert first.fence.generation == 1
        with pytest.raises(LeaseHeld) as held:
            await acquire_lease(db, "host-b", ttl_s=10, now=105.0)
        assert held.value.holder == "host-a"
        second = await acquire_lease(db, "host-b", ttl_s=10, now=110.5)
        assert second.fence.generation == 2
        forced = await acquire_lease(db, "host-c", ttl_s=10, now=111.0, take_over=True)
        assert forced.fence.generation == 3


async def test_a_taken_over_lease_cannot_be_renewed(tmp_path: Path) -> None:
    async with Database(tmp_path / "raid.db") as db:
        stale = await acquire_lease(db, "host-a", ttl_s=10, now=0.0)
        renewed = await renew_lease(db, stale, ttl_s=10, now=5.0)
        assert renewed.expires_at == 15.0
        await acquire_lease(db, "host-b", ttl_s=10, now=20.0)
        with pytest.raises(Fenced) as fenced:
            await renew_lease(db, renewed, ttl_s=10, now=21.0)
        assert (fenced.value.generation, fenced.value.current) == (1, 2)
