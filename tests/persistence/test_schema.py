"""Schema versions: fresh files, upgrades of version-1 files, refusal of newer files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from persistence import schema
from persistence.database import Database
from persistence.errors import RestoreRefused, SchemaError, SchemaTooNew
from persistence.records import SchemaUpgrade
from tests.persistence.helpers import ACTIVE, raid_row, strike

FIXTURES = Path(__file__).parent / "fixtures"

SchemaDescription = dict[str, object]


def describe_schema(path: Path) -> SchemaDescription:
    """Columns, foreign keys and indexes of every table, independent of how DDL was spelled."""
    with sqlite3.connect(path) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        description: SchemaDescription = {}
        for table in tables:
            description[table] = {
                "columns": conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,)).fetchall(),
                "foreign_keys": conn.execute(
                    "SELECT * FROM pragma_foreign_key_list(?)", (table,)
                ).fetchall(),
                "indexes": conn.execute(
                    "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? "
                    "ORDER BY name",
                    (table,),
                ).fetchall(),
            }
    conn.close()
    return description


def make_version_1_file(path: Path) -> None:
    """A real database written by version 1, with rows in every table."""
    with sqlite3.connect(path) as conn:
        conn.executescript((FIXTURES / "schema_v1.sql").read_text())
        conn.execute(
            "INSERT INTO characters VALUES ('c1', 'u1', 'Ayla', 5, '{\"atk\":9}', '[\"fire\"]')"
        )
        conn.execute(
            "INSERT INTO boss_raids VALUES "
            "('raid-1', 'leviathan', 'The Leviathan', 'active', 0, 86400, 1, NULL, '{}', 7)"
        )
        for seq in (1, 2, 3):
            conn.execute(
                "INSERT INTO raid_strike_logs (raid_id, seq, at, user_id, strike_id, action, "
                "team, base, multiplier, score, damage, analysis_points, breakthrough, "
                "retaliation, victory, draws, result) "
                "VALUES ('raid-1', ?, ?, 'u1', ?, 'fight', '[\"c1\"]', '9/1', '1/1', 9, 0, 0, "
                "0, 0, 0, '{}', '{}')",
                (seq, 100.0 + seq, f"s{seq}"),
            )
            conn.execute(
                "INSERT INTO raid_reward_claims (raid_id, user_id, key, bundle, at) "
                "VALUES ('raid-1', 'u1', ?, '{\"gold\":10}', ?)",
                (f"strike:s{seq}", 100.0 + seq),
            )
        conn.execute(
            "INSERT INTO raid_reward_claims (raid_id, user_id, key, bundle, at) "
            "VALUES ('raid-1', 'u1', 'damage:5', '{\"gems\":1}', 200)"
        )
        conn.execute(
            "INSERT INTO raid_snapshots (raid_id, seq, taken_at, current_hp, strike_count, "
            "raid_state) VALUES ('raid-1', 1, 150, 991, 1, '{\"hp\":991}')"
        )
        conn.execute("INSERT INTO player_raid_states VALUES ('raid-1', 'u1', 1, '{\"s\":1}')")
    conn.close()


def stored_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
    conn.close()
    return int(version)


async def apply(path: Path, migrations: tuple[schema.Migration, ...]) -> SchemaUpgrade:
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        return await schema.upgrade(conn, str(path), migrations)


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, len(schema.MIGRATIONS) + 1))
    assert schema.MIGRATIONS[-1].version == schema.LATEST_VERSION
    for migration in schema.MIGRATIONS:
        assert migration.statements, migration.description


def test_split_statements_refuses_an_unfinished_statement() -> None:
    assert schema.split_statements("SELECT 1;\nSELECT 2\n;\n") == ["SELECT 1;", "SELECT 2\n;"]
    with pytest.raises(ValueError, match="incomplete SQL statement"):
        schema.split_statements("SELECT 1;\nSELECT 2\n")


async def test_the_fixture_is_what_migration_1_builds(tmp_path: Path) -> None:
    make_version_1_file(tmp_path / "fixture.db")
    assert await apply(tmp_path / "built.db", schema.MIGRATIONS[:1]) == SchemaUpgrade(0, 1)
    assert describe_schema(tmp_path / "fixture.db") == describe_schema(tmp_path / "built.db")


async def test_a_version_1_file_is_upgraded_with_its_data(db_path: Path) -> None:
    make_version_1_file(db_path)
    db = await Database.open(db_path)
    try:
        assert db.schema_upgrade == SchemaUpgrade(1, schema.LATEST_VERSION)
        assert [c.character_id for c in await db.get_user_characters("u1")] == ["c1"]
        logs = await db.get_raid_strike_logs_by_raid("raid-1")
        assert [(r.seq, r.grant.key if r.grant else None) for r in logs] == [
            (1, "strike:s1"),
            (2, "strike:s2"),
            (3, "strike:s3"),
        ]
        # Version 1 had no delivery feed: every old reward is pending.
        assert [p.key for p in await db.pending_rewards()] == [
            "strike:s1",
            "strike:s2",
            "strike:s3",
            "damage:5",
        ]
        loaded = await db.load_snapshot("raid-1")
        assert loaded is not None
        assert loaded.players == [("u1", '{"s":1}')]

        # The new features work on the upgraded data: strike_seq was backfilled.
        result = await db.restore_to_snapshot(
            "raid-1", loaded.info.snapshot_id, at=1.0, status_of=ACTIVE
        )
        assert (result.rolled_back_strikes, result.rolled_back_grants) == (2, 2)
        await db.add_raid_strike_logs([strike("raid-1", 2, user_id="u1", strike_id="s2")])
        assert [r.seq for r in await db.get_raid_strike_logs_by_raid("raid-1")] == [1, 2]
        new_raid = await db.create_boss_raid(raid_row("raid-2"))
        assert await db.get_boss_raid_by_id(new_raid.raid_id) == new_raid
    finally:
        await db.close()
    assert stored_version(db_path) == schema.LATEST_VERSION


async def test_an_upgraded_file_has_the_schema_of_a_fresh_one(tmp_path: Path) -> None:
    make_version_1_file(tmp_path / "old.db")
    await (await Database.open(tmp_path / "old.db")).close()
    await (await Database.open(tmp_path / "fresh.db")).close()
    assert describe_schema(tmp_path / "old.db") == describe_schema(tmp_path / "fresh.db")


async def test_two_servers_opening_an_old_file_upgrade_it_once(db_path: Path) -> None:
    make_version_1_file(db_path)
    first, second = await asyncio.gather(Database.open(db_path), Database.open(db_path))
    try:
        upgrades = sorted(
            (u.from_version, u.to_version)
            for u in (first.schema_upgrade, second.schema_upgrade)
            if u is not None
        )
        latest = schema.LATEST_VERSION
        assert upgrades in ([(1, latest), (1, latest)], [(1, latest), (latest, latest)])
        assert len(await first.get_raid_strike_logs_by_raid("raid-1")) == 3
    finally:
        await first.close()
        await second.close()


async def test_a_newer_file_is_refused_and_left_alone(db_path: Path) -> None:
    await (await Database.open(db_path)).close()
    newer = schema.LATEST_VERSION + 1
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (newer,))
    conn.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {newer}, but this server only") as e:
        await Database.open(db_path)
    assert (e.value.found, e.value.supported) == (newer, schema.LATEST_VERSION)
    assert stored_version(db_path) == newer


async def test_a_failing_migration_leaves_the_file_as_it_was(db_path: Path) -> None:
    make_version_1_file(db_path)
    before = describe_schema(db_path)
    broken = schema.Migration(
        version=3,
        description="fails half-way",
        script="CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        await apply(db_path, (*schema.MIGRATIONS, broken))
    assert stored_version(db_path) == 1
    assert describe_schema(db_path) == before


async def test_a_damaged_version_table_is_refused(db_path: Path) -> None:
    make_version_1_file(db_path)
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (2)")
    conn.close()
    with pytest.raises(SchemaError, match="must hold one row, found 2"):
        await Database.open(db_path)


async def test_a_raid_rolled_back_by_version_2_is_never_rolled_forward(tmp_path: Path) -> None:
    """Version 2 kept no restore history: migration 3 marks such raids, and their rolled-back
    snapshots stay rolled back while restores to live snapshots still work."""
    path = tmp_path / "v2.db"
    make_version_1_file(path)
    await apply(path, schema.MIGRATIONS[:2])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO raid_snapshots (raid_id, seq, taken_at, current_hp, strike_count, "
            "raid_state) VALUES ('raid-1', 3, 3, 1, 3, '{}')"
        )
        conn.execute("UPDATE raid_strike_logs SET rolled_back = 1 WHERE seq = 3")
        conn.execute("UPDATE raid_snapshots SET rolled_back = 1 WHERE seq = 3")
        later = conn.execute("SELECT max(snapshot_id) FROM raid_snapshots").fetchone()[0]
        kept = conn.execute("SELECT min(snapshot_id) FROM raid_snapshots").fetchone()[0]
    conn.close()
    db = await Database.open(path)
    try:
        with pytest.raises(RestoreRefused, match="older server version"):
            await db.restore_to_snapshot("raid-1", later, at=1.0, status_of=ACTIVE)
        result = await db.restore_to_snapshot("raid-1", kept, at=1.0, status_of=ACTIVE)
        assert result.restore_id is None and result.rolled_back_strikes == 1
        assert [r.seq for r in await db.get_raid_strike_logs_by_raid("raid-1")] == [1]
        assert await db.list_restores("raid-1") == []
    finally:
        await db.close()
