"""Durability under failure: a full disk, concurrent claims, victory and the raid clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from persistence.records import RaidRow
from raid.config import Action
from raid.errors import ErrorCode, RaidError
from raid.models import RaidStatus
from tests.actors.conftest import Harness
from tests.timeouts import TIMEOUT


async def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _row_status(harness: Harness, raid_id: str, status: str) -> RaidRow:
    deadline = time.monotonic() + TIMEOUT
    while True:
        row = await harness.db.get_boss_raid_by_id(raid_id)
        if row is not None and row.status == status:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"raid {raid_id} never became {status}: {row}")
        await asyncio.sleep(0.01)


async def test_full_disk_fails_strikes_with_unavailable_and_loses_nothing(
    harness: Harness,
) -> None:
    service = harness.service
    raid_id = await service.create_raid("dummy")
    await harness.grant("disk", count=40, power=1)
    accepted = [await harness.strike("disk", raid_id, ["disk-c0"], "ok0")]
    generation = service.live[raid_id].generation
    await harness.db.set_max_page_count(1)  # capped at the current size: the disk is "full"
    failed_id = None
    for n in range(1, 40):
        try:
            accepted.append(await harness.strike("disk", raid_id, [f"disk-c{n}"], f"s{n}"))
        except RaidError as error:
            assert error.code is ErrorCode.UNAVAILABLE
            failed_id = n
            break
    assert failed_id is not None, "the capped database never filled up"
    await _wait_for(
        lambda: raid_id in service.live and service.live[raid_id].generation > generation,
        "the raid to restart from durable state",
    )
    hub = await service.hub("disk", raid_id)
    logs = await harness.db.get_raid_strike_logs_by_raid(raid_id)
    assert hub["raid"]["strike_count"] == len(logs) == len(accepted)
    assert [log.strike_id for log in logs] == [r["strike_id"] for r in accepted]
    await harness.db.set_max_page_count(1_000_000)
    retried = await harness.strike("disk", raid_id, [f"disk-c{failed_id}"], f"s{failed_id}")
    assert retried["strike_count"] == len(accepted) + 1


async def test_two_simultaneous_claims_of_one_reward(harness: Harness) -> None:
    raid_id = await harness.service.create_raid("dummy")
    await harness.grant("twice")
    await harness.strike("twice", raid_id, ["twice-c0"], "a", Action.ANALYZE)
    outcomes = await asyncio.gather(
        harness.service.rewards_claim("twice", raid_id, "breakthrough:1"),
        harness.service.rewards_claim("twice", raid_id, "breakthrough:1"),
        return_exceptions=True,
    )
    assert sum(isinstance(o, dict) for o in outcomes) == 1
    refused = [o for o in outcomes if isinstance(o, RaidError)]
    assert [r.code for r in refused] == [ErrorCode.ALREADY_CLAIMED]
    claims = await harness.db.get_claims(raid_id, exclude_prefix="strike:")
    assert [(c.user_id, c.key) for c in claims] == [("twice", "breakthrough:1")]


async def test_victory_ends_the_raid_and_opens_the_victory_cache(harness: Harness) -> None:
    service = harness.service
    raid_id = await service.create_raid("dummy")
    await harness.grant("hero", count=6, power=2000)  # 6 x 2000 / 10 >= 1000 hp
    report = await harness.strike("hero", raid_id, [f"hero-c{n}" for n in range(6)], "end")
    assert report["victory"] is True and report["boss_hp"] == 0
    with pytest.raises(RaidError) as late:
        await harness.strike("hero", raid_id, ["hero-c0"], "after")
    assert late.value.code is ErrorCode.RAID_NOT_ACTIVE
    claim = await service.rewards_claim("hero", raid_id, "victory")
    assert claim["bundle"] == {"gems": 100}
    row = await _row_status(harness, raid_id, "defeated")
    assert row.ended_at is not None
    hub = await service.hub("hero", raid_id)
    assert hub["raid"]["final_blow_user"] == "hero"


async def test_a_raid_expires_on_time(harness: Harness) -> None:
    service = harness.service
    now = time.time()
    raid_id = await service.create_raid("dummy", start=now - 10, end=now + 0.3)
    row = await _row_status(harness, raid_id, "expired")
    assert row.ended_at == now + 0.3
    assert service.statuses[raid_id] is RaidStatus.EXPIRED
