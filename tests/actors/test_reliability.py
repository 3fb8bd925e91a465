"""Issue 9: snapshots, shutdown, raid creation and restore, claims, stats — each test failed
before its fix. Real actors, a real SQLite file, faults injected into the real database."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import pykka
import pytest

from actors.raids import CharacterGrant
from actors.service import RaidService
from actors.snapshotter import Capture, SnapshotData
from persistence.database import Database
from raid.config import Action, load_config
from raid.errors import ErrorCode, RaidError
from raid.limits import MAX_STAT
from server.metrics import Metrics
from tests.actors.conftest import Harness, make_config, open_harness
from tests.e2e.harness import TEST_CONFIG
from tests.timeouts import TIMEOUT


async def _capture(service: RaidService, raid_id: str) -> SnapshotData:
    """Capture a snapshot and never save it: a caller that gave up (SIGTERM, a timeout)."""
    assert service.bridge is not None and service.snapshotter is not None
    reply, future = service.bridge.reply()
    service.snapshotter.tell(Capture(raid_id, reply))
    data = await asyncio.wait_for(future, TIMEOUT)
    assert isinstance(data, SnapshotData)
    return data


async def _restart(h: Harness, service: RaidService, db: Database) -> tuple[RaidService, Database]:
    await service.stop()
    await db.close()
    _, service, db = await open_harness(h.directory)
    return service, db


async def test_an_abandoned_capture_forgets_no_player(harness: Harness) -> None:
    """Defect 1: the capture cleared its players; the next snapshot (higher seq) left them
    out, and after a restart their damage and strike_ids were gone."""
    service, db = harness.service, harness.db
    raid_id = await service.create_raid("dummy")
    await harness.grant("early")
    await harness.grant("late")
    first = await harness.strike("early", raid_id, ["early-c0"], "once")
    abandoned = await _capture(service, raid_id)
    assert [user for user, _ in abandoned.players] == ["early"]
    await harness.strike("late", raid_id, ["late-c0"], "later")
    await service.snapshot(raid_id)
    loaded = await db.load_snapshot(raid_id)
    assert loaded is not None and loaded.info.seq == 2
    assert {user for user, _ in loaded.players} == {"early", "late"}

    service, db = await _restart(harness, service, db)
    try:
        hub = await service.hub("early", raid_id)
        assert hub["me"]["personal_damage"] == first["damage"]
        # The old strike_id: answered with the original report, not applied again.
        resent = await service.strike("early", raid_id, Action.FIGHT, ["early-c0"], "once")
        assert resent == first
        assert (await service.hub("early", raid_id))["raid"]["strike_count"] == 2
    finally:
        await service.stop()
        await db.close()


async def test_a_player_changed_after_the_capture_stays_marked(harness: Harness) -> None:
    service = harness.service
    raid_id = await service.create_raid("dummy")
    await harness.grant("p")
    await harness.strike("p", raid_id, ["p-c0"], "a")
    await service.snapshot(raid_id)  # seq 1 saved: p is clean
    await harness.strike("p", raid_id, ["p-c1"], "b")
    again = await _capture(service, raid_id)
    assert [user for user, _ in again.players] == ["p"]


async def test_the_snapshot_loop_survives_a_dead_snapshotter_and_shutdown_stops_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 2: the loop caught only RaidError, so one ActorDeadError (or a timeout) ended
    periodic snapshots; at shutdown the same error skipped the actor stops."""
    path = tmp_path / "config.toml"
    path.write_text(TEST_CONFIG.replace("snapshot_interval_s = 3600", "snapshot_interval_s = 0.02"))
    db = await Database.open(tmp_path / "raid.db")
    service = RaidService(load_config(path), db, Metrics())
    await service.start()
    h = Harness(service, db, tmp_path)
    try:
        raid_id = await service.create_raid("dummy")
        await h.grant("s")
        await h.strike("s", raid_id, ["s-c0"], "one")
        assert service.snapshotter is not None
        await asyncio.to_thread(service.snapshotter.stop)
        await h.strike("s", raid_id, ["s-c1"], "two")
        loop_task = next(t for t in service._tasks if t.get_name() == "raid-snapshots")
        deadline = time.monotonic() + TIMEOUT
        while sum("snapshot of" in r.getMessage() for r in caplog.records) < 3:
            assert time.monotonic() < deadline, "the loop never reported its failures"
            await asyncio.sleep(0.02)
        assert not loop_task.done(), "the snapshot loop died"
        with pytest.raises(RaidError) as refused:
            await service.snapshot(raid_id)
        assert refused.value.code is ErrorCode.UNAVAILABLE
    finally:
        caplog.set_level(logging.CRITICAL)
        await service.stop()
        await db.close()
    assert pykka.ActorRegistry.get_all() == [], "actor threads outlived the shutdown"


def _write_raw(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


async def test_a_raid_is_created_with_its_snapshot_in_one_transaction(harness: Harness) -> None:
    """Defect 3: the raid row was committed before its snapshot; a failure between the two
    left a raid that could not be restored, and every later start failed."""
    path = harness.directory / "raid.db"
    _write_raw(
        path,
        "CREATE TRIGGER no_snapshots BEFORE INSERT ON raid_snapshots "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END",
    )
    with pytest.raises(sqlite3.DatabaseError):
        await harness.service.create_raid("dummy", raid_id="half")
    assert await harness.db.get_boss_raid_by_id("half") is None
    _write_raw(path, "DROP TRIGGER no_snapshots")
    service, db = await _restart(harness, harness.service, harness.db)
    try:
        assert service.ready
        assert await service.create_raid("dummy", raid_id="half") == "half"
    finally:
        await service.stop()
        await db.close()


async def test_a_raid_without_a_snapshot_restores_from_its_template(tmp_path: Path) -> None:
    """A raid row left without a snapshot by an older version starts from its template."""
    h, service, db = await open_harness(tmp_path)
    try:
        raid_id = await service.create_raid("dummy", raid_id="legacy")
        await h.grant("l")
        report = await h.strike("l", raid_id, ["l-c0"], "s1")
    finally:
        await service.stop()
        await db.close()
    _write_raw(
        tmp_path / "raid.db",
        "DELETE FROM player_raid_states WHERE raid_id = 'legacy'",
        "DELETE FROM raid_snapshots WHERE raid_id = 'legacy'",
    )
    h, service, db = await open_harness(tmp_path)
    try:
        hub = await service.hub("l", raid_id)
        assert hub["raid"]["strike_count"] == 1
        assert hub["raid"]["current_hp"] == report["boss_hp"]
    finally:
        await service.stop()
        await db.close()


HEXER = """
[curses.hex]
name = "Hex"
kind = "fortify"
params = { action = "fight", factor = 2 }

[bosses.hexer]
name = "Hexer"
total_hp = 1000
duration_s = 86400
dominant_stats = ["power"]
weaknesses = []
resistances = []
weakness_pool = []
curse_pool = ["hex"]
analysis_thresholds = []
analysis_reward_pool = []
victory_cache = { gems = 1 }
"""


@pytest.mark.parametrize("fault", ["curse_removed", "corrupt_snapshot"])
async def test_a_raid_that_cannot_be_restored_does_not_stop_the_server(
    tmp_path: Path, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 3: one unrestorable raid made every start fail. Now it is marked out of
    service, logged, and the other raids are served."""
    h, service, db = await open_harness(tmp_path, HEXER)
    try:
        broken = await service.create_raid("hexer", raid_id="broken")
        healthy = await service.create_raid("dummy", raid_id="healthy")
        await h.grant("u")
        await h.strike("u", broken, ["u-c0"], "b1")
    finally:
        await service.stop()
        await db.close()
    if fault == "corrupt_snapshot":
        extra = HEXER
        _write_raw(
            tmp_path / "raid.db",
            "UPDATE raid_snapshots SET raid_state = '{\"raid_id\": 1' WHERE raid_id = 'broken'",
        )
    else:
        extra = ""  # the config no longer defines the hexer boss nor its curse
    config = make_config(tmp_path, extra)
    db = await Database.open(tmp_path / "raid.db")
    service = RaidService(config, db, Metrics())
    try:
        await service.start()
        assert service.ready
        assert "broken" in service.out_of_service
        assert any("out of service" in r.getMessage() for r in caplog.records)
        with pytest.raises(RaidError) as refused:
            await service.hub("u", broken)
        assert refused.value.code is ErrorCode.UNAVAILABLE
        report = await service.strike("u", healthy, Action.FIGHT, ["u-c1"], "h1")
        assert report["strike_count"] == 1
    finally:
        await service.stop()
        await db.close()


async def test_a_rewrite_that_leaves_an_unrestorable_raid_marks_it_out_of_service(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 3 on the live-restore path: a RestoreError after the change marks the raid
    out of service (one error line) instead of escaping from the rewrite."""
    service = harness.service
    broken = await service.create_raid("dummy", raid_id="rewritten")
    healthy = await service.create_raid("dummy", raid_id="fine")
    await harness.grant("u")

    async def corrupt() -> str:
        await asyncio.to_thread(
            _write_raw,
            harness.directory / "raid.db",
            "UPDATE raid_snapshots SET raid_state = '{\"raid_id\": 1' WHERE raid_id = 'rewritten'",
        )
        return "changed"

    assert await service.rewrite(broken, corrupt) == "changed"
    assert "rewritten" in service.out_of_service
    assert sum("out of service" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(RaidError) as refused:
        await service.hub("u", broken)
    assert refused.value.code is ErrorCode.UNAVAILABLE
    report = await harness.strike("u", healthy, ["u-c0"], "h1")
    assert report["strike_count"] == 1


async def test_already_claimed_waits_for_the_original_claim_to_be_stored(
    tmp_path: Path,
) -> None:
    """Item 12: a second claim answered already_claimed while the first was not committed;
    when that commit failed, the key was neither claimed nor claimable by the answer."""
    config = make_config(tmp_path)
    db = await Database.open(tmp_path / "raid.db", busy_timeout_ms=200)
    service = RaidService(config, db, Metrics())
    await service.start()
    try:
        raid_id = await service.create_raid("dummy")
        await service.grant_roster(
            "twice", [CharacterGrant("t-c0", "T", 3, {"power": 100}, ("fire",))]
        )
        await service.strike("twice", raid_id, Action.ANALYZE, ["t-c0"], "a")
        blocker = sqlite3.connect(tmp_path / "raid.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # every journal write now fails after 200 ms
        try:
            outcomes = await asyncio.gather(
                service.rewards_claim("twice", raid_id, "breakthrough:1"),
                service.rewards_claim("twice", raid_id, "breakthrough:1"),
                return_exceptions=True,
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        codes = [o.code for o in outcomes if isinstance(o, RaidError)]
        assert codes == [ErrorCode.UNAVAILABLE, ErrorCode.UNAVAILABLE], outcomes
        deadline = time.monotonic() + TIMEOUT
        while True:  # the raid restarts from durable state; then the key can be claimed
            try:
                claim = await service.rewards_claim("twice", raid_id, "breakthrough:1")
                break
            except RaidError as error:
                assert error.code is ErrorCode.UNAVAILABLE
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        assert claim["key"] == "breakthrough:1"
    finally:
        await service.stop()
        await db.close()


async def test_stats_past_the_bound_are_refused_and_the_largest_allowed_strike_is_stored(
    harness: Harness,
) -> None:
    """Item 11: stats near 2**62 were accepted; a strike then failed after apply_strike and
    crashed the raid on every attempt."""
    service = harness.service
    raid_id = await service.create_raid("dummy")
    with pytest.raises(RaidError) as refused:
        await service.grant_roster(
            "big", [CharacterGrant("big-c0", "Big", 5, {"power": 2**62}, ())]
        )
    assert refused.value.code is ErrorCode.BAD_REQUEST
    assert "above the maximum" in refused.value.message
    team = [f"max-c{i}" for i in range(6)]
    await service.grant_roster(
        "max",
        [
            CharacterGrant(c, "Max", 5, dict.fromkeys(service.config.rules.stats, MAX_STAT), ())
            for c in team
        ],
    )
    report = await service.strike("max", raid_id, Action.ANALYZE, team, "m")
    assert report["analysis_points"] > 0
    logs = await harness.db.get_raid_strike_logs_by_raid(raid_id)
    assert [log.strike_id for log in logs] == ["m"]
