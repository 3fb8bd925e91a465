"""Overload protection in a real RaidService (issue 9, defect 8): bounded inboxes, requests
whose caller is gone dropped where the raid picks them up, and the loop bridge's bound.

Ordering, not timing: asyncio runs ready callbacks first in, first out, so a task created in
one step and cancelled in the next is cancelled before the raid's batch leaves the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

import pytest

from actors.bridge import LoopBridge
from actors.deadlines import CURRENT_CALLER, Caller, caller_gone
from actors.messages import StrikeRequest
from actors.service import RaidService
from raid.config import Action
from raid.errors import Overloaded, RaidError, Unavailable
from raid.strike import StrikeCommand
from tests.actors.conftest import Harness, open_harness
from tests.timeouts import TIMEOUT

RAID = "r"


async def _strike_count(h: Harness) -> int:
    hub = await h.service.hub("viewer", RAID)
    return int(hub["raid"]["strike_count"])


async def _warm(h: Harness, user: str) -> None:
    """One strike, so the player's roster is cached and its PlayerActor runs."""
    await h.grant(user, 6)
    await h.strike(user, RAID, [f"{user}-c0"], f"{user}-warm")


async def _dropped(service: RaidService) -> int:
    actor = service.live[RAID].ref
    return int(await asyncio.to_thread(lambda: actor.proxy().dropped.get(timeout=TIMEOUT)))


async def test_a_cancelled_strike_is_not_decided_later(harness: Harness) -> None:
    h = harness
    await h.service.create_raid("dummy", raid_id=RAID)
    await _warm(h, "alice")
    before = await _strike_count(h)
    task = asyncio.create_task(h.strike("alice", RAID, ["alice-c1"], "gone"))
    await asyncio.sleep(0)  # the task sent the strike to alice's PlayerActor
    task.cancel()  # its caller leaves before the raid's batch is told
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _strike_count(h) == before
    assert await _dropped(h.service) == 1
    # Never decided, so the same strike_id is a new strike, and alice-c1 is still fresh.
    report = await h.strike("alice", RAID, ["alice-c1"], "gone")
    assert report["strike_count"] == before + 1


async def test_a_strike_whose_connection_closed_is_dropped(harness: Harness) -> None:
    h = harness
    await h.service.create_raid("dummy", raid_id=RAID)
    await _warm(h, "alice")
    before = await _strike_count(h)
    caller = Caller()

    async def from_connection() -> dict[str, Any]:
        CURRENT_CALLER.set(caller)  # what the gateway does once per connection
        return await h.strike("alice", RAID, ["alice-c1"], "closed")

    task = asyncio.create_task(from_connection())
    await asyncio.sleep(0)
    caller.gone = True  # the connection closed; the request task itself still runs
    with pytest.raises(Unavailable, match="dropped"):
        await asyncio.wait_for(task, TIMEOUT)
    assert await _strike_count(h) == before


async def test_a_callback_strike_whose_connection_closed_is_dropped(harness: Harness) -> None:
    """The gateway's hot path (strike_nowait, no task): the same drop as above."""
    h = harness
    await h.service.create_raid("dummy", raid_id=RAID)
    await _warm(h, "alice")
    before = await _strike_count(h)
    caller = Caller()
    answered: asyncio.Future[tuple[Any, BaseException | None]] = (
        asyncio.get_running_loop().create_future()
    )
    token = CURRENT_CALLER.set(caller)  # what the gateway does once per connection
    try:
        h.service.strike_nowait(
            "alice",
            RAID,
            Action.FIGHT,
            ["alice-c1"],
            "closed-cb",
            lambda report, error: answered.set_result((report, error)),
        )
    finally:
        CURRENT_CALLER.reset(token)
    caller.gone = True  # closed before the PlayerActor's turn on the loop
    report, error = await asyncio.wait_for(answered, TIMEOUT)
    assert report is None
    assert isinstance(error, Unavailable) and "dropped" in str(error)
    assert await _strike_count(h) == before


async def test_a_request_past_its_deadline_is_dropped_by_the_raid(harness: Harness) -> None:
    h = harness
    await h.service.create_raid("dummy", raid_id=RAID)
    await h.grant("alice", 6)
    roster = await h.service.rosters.get("alice")
    live = h.service.live[RAID]
    reply, future = h.service.bridge.reply()
    reply.deadline = 0.0  # long past: the caller stopped waiting
    assert caller_gone(reply)
    command = StrikeCommand("alice", Action.FIGHT, ("alice-c0",), "late", roster)
    live.inbox.send(StrikeRequest(command, h.service.clock(), reply))
    with pytest.raises(Unavailable):
        await asyncio.wait_for(future, TIMEOUT)
    assert await _strike_count(h) == 0


async def test_a_full_raid_inbox_sheds_with_retry_after_and_loses_nothing(tmp_path: Path) -> None:
    h, service, db = await open_harness(tmp_path, "\n[actors]\nraid_inbox = 5\n")
    try:
        await service.create_raid("dummy", raid_id=RAID)
        users = [f"p{i}" for i in range(30)]
        for user in users:
            await _warm(h, user)
        before = await _strike_count(h)
        outcomes = await asyncio.gather(
            *(h.strike(u, RAID, [f"{u}-c1"], f"{u}-1") for u in users), return_exceptions=True
        )
        shed = [o for o in outcomes if isinstance(o, Overloaded)]
        accepted = [o for o in outcomes if isinstance(o, dict)]
        assert shed, "30 strikes in one batch must not fit an inbox of 5"
        assert all(o.extra["retry_after"] > 0 for o in shed)
        assert len(shed) + len(accepted) == len(users), outcomes
        assert await _strike_count(h) == before + len(accepted)
        # The raid serves again once the burst is gone.
        again = await h.strike("p0", RAID, ["p0-c2"], "p0-2")
        assert again["strike_count"] == before + len(accepted) + 1
    finally:
        await service.stop()
        await db.close()


async def test_a_full_player_inbox_sheds_with_retry_after(tmp_path: Path) -> None:
    h, service, db = await open_harness(tmp_path, "\n[actors]\nplayer_inbox = 2\n")
    try:
        await service.create_raid("dummy", raid_id=RAID)
        await h.grant("alice", 30)
        await h.strike("alice", RAID, ["alice-c0"], "warm")
        outcomes = await asyncio.gather(
            *(h.strike("alice", RAID, [f"alice-c{n}"], f"s{n}") for n in range(1, 30)),
            return_exceptions=True,
        )
        shed = [o for o in outcomes if isinstance(o, Overloaded)]
        accepted = [o for o in outcomes if isinstance(o, dict)]
        assert shed and accepted
        assert all(not isinstance(o, Exception) or isinstance(o, RaidError) for o in outcomes)
        assert await _strike_count(h) == 1 + len(accepted)
    finally:
        await service.stop()
        await db.close()


async def test_the_bridge_makes_actor_threads_wait_and_keeps_order() -> None:
    loop = asyncio.get_running_loop()
    bridge = LoopBridge(loop, max_pending=2)
    seen: list[int] = []
    done = threading.Event()

    def post_all() -> None:
        for n in range(10):
            bridge.post(seen.append, n)
        done.set()

    poster = threading.Thread(target=post_all)
    poster.start()
    try:
        # The loop is blocked right here, so it cannot drain: the thread must be waiting.
        assert not done.wait(0.2)
        assert len(bridge._pending) == 2
        while not done.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert seen == list(range(10))
        assert bridge.waits > 0
        # The loop itself never waits: past the bound its posts are queued anyway.
        for n in range(10, 15):
            bridge.post(seen.append, n)
        assert len(bridge._pending) == 5
    finally:
        bridge.close()
        with contextlib.suppress(RuntimeError):
            poster.join(TIMEOUT)
