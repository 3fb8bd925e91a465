"""Opening, closing and configuring a Database."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from persistence.database import Database
from persistence.errors import DatabaseNotOpen, PersistenceError, SchemaError
from persistence.schema import LATEST_VERSION
from tests.persistence.helpers import ACTIVE, character, grant, raid_row, strike

Call = Callable[[Database], Awaitable[object]]

EVERY_METHOD: dict[str, Call] = {
    "upsert_characters": lambda db: db.upsert_characters([character("c1", "u1")]),
    "get_user_characters": lambda db: db.get_user_characters("u1"),
    "create_boss_raid": lambda db: db.create_boss_raid(raid_row()),
    "get_boss_raid_by_id": lambda db: db.get_boss_raid_by_id("raid-1"),
    "list_boss_raids": lambda db: db.list_boss_raids(),
    "update_boss_raid_state": lambda db: db.update_boss_raid_state("raid-1", status="ended"),
    "add_raid_strike_logs": lambda db: db.add_raid_strike_logs([strike("raid-1", 1)]),
    "add_raid_strike_logs(empty)": lambda db: db.add_raid_strike_logs([]),
    "get_raid_strike_logs_by_raid": lambda db: db.get_raid_strike_logs_by_raid("raid-1"),
    "get_strike_log": lambda db: db.get_strike_log("raid-1", 1),
    "find_strike_ids": lambda db: db.find_strike_ids("raid-1", [("u", "s")]),
    "claim_reward": lambda db: db.claim_reward(grant("raid-1", "u1", "victory")),
    "list_player_rewards": lambda db: db.list_player_rewards("raid-1", "u1"),
    "get_claims": lambda db: db.get_claims("raid-1"),
    "pending_rewards": lambda db: db.pending_rewards(),
    "ack_rewards": lambda db: db.ack_rewards([1]),
    "ack_rewards(empty)": lambda db: db.ack_rewards([]),
    "create_player_raid_state": lambda db: db.create_player_raid_state("raid-1", "u", 1, "{}"),
    "update_player_raid_state": lambda db: db.update_player_raid_state("raid-1", "u", 1, "{}"),
    "get_player_raid_state": lambda db: db.get_player_raid_state("raid-1", "u1"),
    "save_snapshot": lambda db: db.save_snapshot(
        "raid-1",
        seq=0,
        taken_at=1.0,
        current_hp=10,
        strike_count=0,
        raid_state_json="{}",
        players=[],
    ),
    "list_snapshots": lambda db: db.list_snapshots("raid-1"),
    "load_snapshot": lambda db: db.load_snapshot("raid-1"),
    "restore_to_snapshot": lambda db: db.restore_to_snapshot("raid-1", 1, at=1.0, status_of=ACTIVE),
    "checkpoint": lambda db: db.checkpoint(),
    "set_max_page_count": lambda db: db.set_max_page_count(100_000),
}


@pytest.mark.parametrize("call", EVERY_METHOD.values(), ids=EVERY_METHOD.keys())
async def test_every_method_refuses_before_open(db_path: Path, call: Call) -> None:
    db = Database(db_path)
    with pytest.raises(DatabaseNotOpen, match=r"raid\.db is not open"):
        await call(db)


@pytest.mark.parametrize("call", EVERY_METHOD.values(), ids=EVERY_METHOD.keys())
async def test_every_method_refuses_after_close(db_path: Path, call: Call) -> None:
    db = await Database.open(db_path)
    await db.close()
    with pytest.raises(DatabaseNotOpen):
        await call(db)


async def test_open_creates_a_wal_database_at_the_latest_schema(db_path: Path) -> None:
    db = await Database.open(db_path)
    try:
        assert db.is_open
        assert db.schema_upgrade is not None
        assert (db.schema_upgrade.from_version, db.schema_upgrade.to_version) == (
            0,
            LATEST_VERSION,
        )
    finally:
        await db.close()
    assert not db.is_open
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(LATEST_VERSION,)]
    conn.close()


async def test_reopening_does_not_migrate_again(db_path: Path) -> None:
    await (await Database.open(db_path)).close()
    async with Database(db_path, synchronous="normal", readers=1) as db:
        assert db.schema_upgrade is not None
        assert db.schema_upgrade.from_version == db.schema_upgrade.to_version == LATEST_VERSION


async def test_close_is_idempotent(db_path: Path) -> None:
    db = await Database.open(db_path)
    await db.close()
    await db.close()


async def test_open_twice_is_refused(db: Database) -> None:
    with pytest.raises(PersistenceError, match="already open"):
        await db.connect()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"synchronous": "OFF"}, "synchronous must be FULL or NORMAL"),
        ({"readers": 0}, "readers must be at least 1"),
        ({"busy_timeout_ms": -1}, "busy_timeout_ms must be >= 0"),
    ],
)
def test_bad_options_are_refused(db_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Database(db_path, **options)  # type: ignore[arg-type]


async def test_a_foreign_sqlite_file_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(SchemaError, match="not a World-Threat Raid database"):
        await Database.open(db_path)


async def test_a_file_that_is_not_sqlite_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        await Database.open(db_path)


async def test_a_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PersistenceError, match="does not exist"):
        await Database.open(tmp_path / "missing" / "raid.db")


async def test_checkpoint_truncates_the_wal(db: Database, raid_id: str) -> None:
    await db.add_raid_strike_logs([strike(raid_id, seq) for seq in range(1, 101)])
    assert Path(db.path + "-wal").stat().st_size > 0
    assert await db.checkpoint()
    assert Path(db.path + "-wal").stat().st_size == 0


async def test_set_max_page_count_validates_and_never_goes_below_the_size(db: Database) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        await db.set_max_page_count(0)
    effective = await db.set_max_page_count(1)
    assert effective > 1  # SQLite keeps the cap at the current page count
    assert await db.set_max_page_count(effective + 10) == effective + 10


async def test_the_writers_page_cache_is_the_configured_size(db_path: Path) -> None:
    db = await Database.open(db_path, page_cache_mib=3)
    try:
        async with db._pool.writing() as writer:  # the pragma is the writer connection's
            (size,) = next(iter(await writer.execute_fetchall("PRAGMA cache_size")))
        assert size == -3 * 1024  # negative: KiB, i.e. 3 MiB whatever the page size
    finally:
        await db.close()
