"""Issue 9, defects 4-7 and 9: one actor per raid, PlayerActors after a raid restart, rosters
read while a grant commits, unloading finished raids, start-up work off the event loop.

Real actors and a real SQLite file; each test failed before its fix (see
docs/reliability.md)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pykka
import pytest

from actors.raid_actor import RaidActor
from actors.raids import CharacterGrant
from actors.service import RaidService
from persistence.database import Database
from persistence.records import CharacterRow
from raid.config import Action, load_config
from raid.errors import ErrorCode, RaidError
from raid.leaderboard import Leaderboards
from server.metrics import Metrics
from tests.actors.conftest import Harness, make_config, open_harness
from tests.e2e.harness import TEST_CONFIG
from tests.timeouts import TIMEOUT


def raid_actors() -> list[pykka.ActorRef[Any]]:
    return pykka.ActorRegistry.get_by_class(RaidActor)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"not done in time: {what}"
        await asyncio.sleep(0.01)


async def _hub_or_none(service: RaidService, user: str, raid_id: str) -> dict[str, Any] | None:
    try:
        return await service.hub(user, raid_id)
    except RaidError as error:
        assert error.code is ErrorCode.UNKNOWN_RAID, error  # not created yet
        return None


# -- defect 4: one raid, one actor ------------------------------------------------------------

RACING_HUBS = 200
"""Hub requests in flight at most while a raid is created: unbounded, a slow machine queued
more than a raid's inbox holds behind the creation (and the batch was shed, as it should be)."""


async def test_requests_racing_create_raid_share_its_one_actor(tmp_path: Path) -> None:
    """Defect 4: a raid.hub for a raid whose row was just committed started a second
    RaidActor while create_raid started the first; the orphan was never stopped."""
    h, service, db = await open_harness(tmp_path)
    try:
        creating = asyncio.ensure_future(service.create_raid("dummy", raid_id="racing"))
        hubs: list[asyncio.Future[dict[str, Any] | None]] = []
        while not creating.done():  # a hub request in every loop iteration of the creation,
            if sum(not hub.done() for hub in hubs[-RACING_HUBS:]) < RACING_HUBS:  # a bounded few
                hubs.append(asyncio.ensure_future(_hub_or_none(service, "p", "racing")))
            await asyncio.sleep(0)
        assert await creating == "racing"
        views = await asyncio.gather(*hubs)
        assert any(view is not None for view in views), "no request raced the creation"
        assert raid_actors() == [service.live["racing"].ref]
        await h.grant("p")
        report = await h.strike("p", "racing", ["p-c0"], "one")
        assert report["strike_count"] == 1
    finally:
        await service.stop()
        await db.close()
    assert raid_actors() == [], "an orphan RaidActor outlived the shutdown"


# -- defect 5: a player after a raid restart --------------------------------------------------


async def test_a_player_whose_request_raced_a_raid_restart_is_not_locked_out(
    harness: Harness,
) -> None:
    """Defect 5: a request that fetched the raid before a restart started the player's
    PlayerActor after it, bound to the stopped RaidActor; every later request reused that
    actor (and reset its idle timer), so the player got ``unavailable`` for good."""
    service = harness.service
    raid_id = await service.create_raid("dummy")
    await harness.grant("racer")  # its roster is not cached: the strike reads it first
    striking = asyncio.ensure_future(harness.strike("racer", raid_id, ["racer-c0"], "s0"))
    await asyncio.sleep(0)  # the strike holds the raid and waits for the roster read
    await service.restart(raid_id, "test: restart while a strike reads its roster")
    try:
        await striking
    except RaidError as error:
        assert error.code is ErrorCode.UNAVAILABLE, error
    deadline = time.monotonic() + TIMEOUT
    attempt = 0
    while True:
        attempt += 1
        try:
            report = await harness.strike("racer", raid_id, ["racer-c1"], f"s{attempt}")
            break
        except RaidError as error:
            assert error.code is ErrorCode.UNAVAILABLE, error
            assert time.monotonic() < deadline, f"still {error.message!r} after the restart"
            await asyncio.sleep(0.02)
    damage = report["damage"]
    assert isinstance(damage, int) and damage > 0
    assert attempt == 1, "the first request after the restart was refused"


# -- defect 6: rosters read while a grant commits ---------------------------------------------


class SlowRosterReads(Database):
    """The real database, whose roster reads can be held after reading (a slow reader)."""

    hold: asyncio.Event | None = None
    read: asyncio.Event | None = None

    async def get_users_characters(self, user_ids: Sequence[str]) -> dict[str, list[CharacterRow]]:
        rows = await super().get_users_characters(user_ids)
        if self.hold is not None and self.read is not None:
            self.read.set()
            await self.hold.wait()
        return rows


async def test_a_roster_read_under_way_during_a_grant_is_not_cached(tmp_path: Path) -> None:
    """Defect 6: a roster read begun before admin.roster.grant committed refilled the cache
    after the grant cleared it; the new character then answered character_not_owned."""
    db = await SlowRosterReads.open(tmp_path / "raid.db")
    assert isinstance(db, SlowRosterReads)
    service = RaidService(make_config(tmp_path), db, Metrics())
    await service.start()
    try:
        raid_id = await service.create_raid("dummy")
        old = CharacterGrant("old-c", "Old", 3, {"power": 100}, ("fire",))
        await service.grant_roster("u", [old])
        db.hold, db.read = asyncio.Event(), asyncio.Event()
        reading = asyncio.ensure_future(service.team_options("u", raid_id))
        await asyncio.wait_for(db.read.wait(), TIMEOUT)  # it has read the one-character roster
        hold = db.hold
        db.hold = db.read = None
        new = CharacterGrant("new-c", "New", 3, {"power": 100}, ("fire",))
        await service.grant_roster("u", [new])  # committed, the cached roster cleared
        hold.set()  # only now does the old read come back
        options = await reading
        assert "old-c" in str(options)
        report = await service.strike("u", raid_id, Action.FIGHT, ["new-c"], "first")
        assert report["strike_count"] == 1
    finally:
        await service.stop()
        await db.close()


# -- defect 7: finished raids are unloaded, hello is bounded ----------------------------------


IDLE_S = 3600  # the server's own clock never unloads during a test: the tests give ``now``


def later(times: int) -> float:
    return time.monotonic() + times * (IDLE_S + 1)


async def test_an_idle_finished_raid_is_unloaded_and_reloaded_on_demand(tmp_path: Path) -> None:
    """Defect 7: every raid anyone looked at kept its actor and the Snapshotter's shadow copy
    until the server stopped."""
    h, service, db = await open_harness(tmp_path, f"\n[actors]\nraid_idle_s = {IDLE_S}\n")
    try:
        active = await service.create_raid("dummy")
        finished = await service.create_raid("dummy")
        await h.grant("p")
        report = await h.strike("p", finished, ["p-c0"], "one")
        await service.end_raid(finished)
        await service.snapshot(finished)
        await service.hub("p", finished)
        assert service.unload_idle(time.monotonic()) == [], "unloaded while in use"
        assert service.unload_idle(later(1)) == [finished]
        assert set(service.live) == {active}, "an active raid keeps its actor"
        await until(lambda: raid_actors() == [service.live[active].ref], "its actor stopped")
        with pytest.raises(RaidError) as refused:  # the Snapshotter forgot its shadow copy
            await service.snapshot(finished)
        assert refused.value.code is ErrorCode.UNAVAILABLE
        hub = await service.hub("p", finished)  # restored on demand, nothing lost
        assert hub["raid"]["status"] == "ended"
        assert hub["me"]["personal_damage"] == report["damage"]
        with pytest.raises(RaidError) as claimed:  # the strike's reward survived the unload
            await service.rewards_claim("p", finished, "strike:one")
        assert claimed.value.code is ErrorCode.ALREADY_CLAIMED
        again = await h.strike("p", finished, ["p-c0"], "one")  # a repeat, not a new strike
        assert again == report
    finally:
        await service.stop()
        await db.close()


async def test_a_finished_raid_with_work_in_flight_or_no_snapshot_stays(tmp_path: Path) -> None:
    h, service, db = await open_harness(tmp_path, f"\n[actors]\nraid_idle_s = {IDLE_S}\n")
    try:
        raid_id = await service.create_raid("dummy")
        await h.grant("p")
        await h.strike("p", raid_id, ["p-c0"], "one")
        await service.end_raid(raid_id)
        await until(lambda: service.statuses[raid_id].is_final, "the raid ended")
        service.unload_idle(later(1))  # notes the requests sent so far
        assert service.unload_idle(later(2)) == [], "unloaded before its strike was snapshotted"
        await service.snapshot(raid_id)
        assert service.unload_idle(later(3)) == [raid_id]
    finally:
        await service.stop()
        await db.close()


async def test_loading_finished_raids_past_the_bound_unloads_the_least_recently_used(
    tmp_path: Path,
) -> None:
    _, service, db = await open_harness(tmp_path, "\n[actors]\nmax_finished_raids = 2\n")
    try:
        raids = [await service.create_raid("dummy", raid_id=f"r{i}") for i in range(4)]
        for raid_id in raids:
            await service.end_raid(raid_id)
        await service.stop()
        await db.close()
        # A restart loads only unfinished raids (and those in their claim window: all four).
        _, service, db = await open_harness(tmp_path, "\n[actors]\nmax_finished_raids = 2\n")
        assert len(service.live) <= 2
        for raid_id in raids:
            hub = await service.hub("p", raid_id)
            assert hub["raid"]["status"] == "ended"
            assert raid_id in service.live and len(service.live) <= 2
        await until(lambda: len(raid_actors()) <= 2, "the others' actors stopped")
    finally:
        await service.stop()
        await db.close()


async def test_hello_lists_at_most_hello_raids_unfinished_first(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEST_CONFIG.replace("[server]\n", "[server]\nhello_raids = 3\n", 1))
    db = await Database.open(tmp_path / "raid.db")
    service = RaidService(load_config(path), db, Metrics())
    await service.start()
    try:
        ended = [await service.create_raid("dummy", raid_id=f"old{i}") for i in range(3)]
        for raid_id in ended:
            await service.end_raid(raid_id)
        running = [await service.create_raid("dummy", raid_id=f"new{i}") for i in range(2)]
        hello = await service.hello("p", "player")
        listed = [raid["raid_id"] for raid in hello["raids"]]
        assert len(listed) == 3
        assert set(listed[:2]) == set(running)
        assert listed[2] in ended
    finally:
        await service.stop()
        await db.close()


# -- defect 9: start-up work on the actor's thread --------------------------------------------


async def test_leaderboards_are_built_on_the_raid_actors_thread(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 9: pykka runs an actor's __init__ on the caller's thread, so the leaderboards
    over every player of a restored raid were built on the event loop."""
    service = harness.service
    raid_id = await service.create_raid("dummy")
    await harness.grant("p")
    await harness.strike("p", raid_id, ["p-c0"], "one")
    built_on: list[threading.Thread] = []
    original = Leaderboards.of.__func__  # type: ignore[attr-defined]

    def recording(cls: type[Leaderboards], players: Any) -> Leaderboards:
        built_on.append(threading.current_thread())
        boards: Leaderboards = original(cls, players)
        return boards

    monkeypatch.setattr(Leaderboards, "of", classmethod(recording))
    await service.restart(raid_id, "test: restore with players")
    hub = await service.hub("p", raid_id)
    assert hub["me"]["rank_damage"] == 1  # the boards were built, with the player ranked
    assert built_on, "the restored raid built no leaderboards"
    assert threading.main_thread() not in built_on, "built on the event loop's thread"
    assert all(thread.name.startswith("RaidActor") for thread in built_on), built_on
