"""The database schema and its versioned migrations.

A fresh file is built by applying every migration in order; a file written by an older
version is brought up to date by the migrations it lacks, all in one ``BEGIN IMMEDIATE``
transaction (an error leaves the file exactly as it was). A file whose version is newer than
``LATEST_VERSION`` is refused with ``SchemaTooNew``. The version lives in ``schema_version``
(one row).

Current schema (version 4)::

    characters(character_id TEXT PK, user_id, name, rarity 1..5, stats JSON, tags JSON)
        index characters_by_user(user_id)
    boss_raids(raid_id TEXT PK, boss_id, name, status, event_start, event_end, created_at,
               ended_at NULL, template JSON, rng_seed)
        index boss_raids_by_status(status)
    raid_strike_logs(id INTEGER PK AUTOINCREMENT, raid_id -> boss_raids, seq, at, user_id,
                     strike_id, action, team JSON, base "n/d", multiplier "n/d", score, damage,
                     analysis_points, breakthrough, retaliation, victory, draws JSON,
                     result JSON, rolled_back 0/1)
        unique raid_strike_logs_seq(raid_id, seq) WHERE rolled_back = 0
            -- a seq is reused after an operator rollback; the old row stays, marked
        index raid_strike_logs_strike_id(raid_id, user_id, strike_id) WHERE rolled_back = 0
    raid_reward_claims(id INTEGER PK AUTOINCREMENT, raid_id -> boss_raids, user_id, key,
                       bundle JSON, at, strike_seq NULL, acked_at NULL, rolled_back 0/1)
        unique raid_reward_claims_key(raid_id, user_id, key) WHERE rolled_back = 0
            -- "recorded once": a second claim of a key is refused by this index
        unique raid_reward_claims_strike(raid_id, strike_seq)
               WHERE strike_seq IS NOT NULL AND rolled_back = 0
            -- strike grants (strike_seq = the strike's seq) are rolled back with their strike
        index raid_reward_claims_pending(id) WHERE acked_at IS NULL AND rolled_back = 0
            -- the backend's delivery feed stays small however many rewards were delivered
    raid_snapshots(snapshot_id INTEGER PK AUTOINCREMENT, raid_id -> boss_raids, seq,
                   taken_at, current_hp, strike_count, raid_state JSON, rolled_back 0/1)
        unique raid_snapshots_by_raid(raid_id, snapshot_id)
    player_raid_states(raid_id, user_id, snapshot_id, state JSON,
                       PK(raid_id, user_id, snapshot_id), WITHOUT ROWID,
                       (raid_id, snapshot_id) -> raid_snapshots)

    raid_restores(restore_id INTEGER PK AUTOINCREMENT, raid_id -> boss_raids, at,
                  snapshot_id NULL, seq NULL, parent_restore_id NULL, strike_mark, claim_mark,
                  snapshot_mark, rolled_back_strikes, restored_strikes)
        index raid_restores_by_raid(raid_id, restore_id)
            -- operator restores; the marks tell which timeline each row belongs to
            -- (persistence.timeline). snapshot_id NULL: a raid rolled back before version 3
    host_leases(lease TEXT PK, holder, generation >= 1, expires_at)
            -- raid host ownership; journal and snapshot writes check the generation
            -- (persistence.leases)

Snapshots are incremental: a snapshot stores only the players changed since the previous
one. The state of player U at snapshot K is U's row with the greatest snapshot_id <= K among
the raid's snapshots that are not rolled back. WITHOUT ROWID keeps those rows clustered by
(raid_id, user_id, snapshot_id), so loading a snapshot is one ordered scan of the primary key.

Version 1 (the first release) had plain UNIQUE constraints on (raid_id, seq) and
(raid_id, user_id, key), and no rolled_back, strike_seq or acked_at columns. Migration 2
rebuilds the two journal tables (SQLite cannot drop a table constraint), backfills strike_seq
of ``strike:<strike_id>`` grants from the journal, and leaves every old reward pending
(acked_at NULL): version 1 had no delivery feed, so none of them is known to be delivered.
Migration 3 adds ``raid_restores``; a raid that version 2 had already rolled back gets a marker
row (snapshot_id NULL): its rolled-back rows cannot be told apart, so it is never rolled forward.
Migration 4 adds ``host_leases`` (empty: a database served by one process needs no lease).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from persistence.errors import SchemaError, SchemaTooNew
from persistence.records import SchemaUpgrade


@dataclass(frozen=True, slots=True)
class Migration:
    version: int  # the schema version once applied; versions are 1, 2, 3... in order
    description: str
    script: str  # SQL statements, each ending with ';' on its own line (see split_statements)

    @property
    def statements(self) -> list[str]:
        return split_statements(self.script)


def split_statements(script: str) -> list[str]:
    """Split a script into statements at line ends where a statement is complete.

    ``executescript`` cannot be used: it commits any open transaction first, and migrations
    must run inside the caller's ``BEGIN IMMEDIATE``.
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer.strip()!r}")
    return statements


MIGRATION_1 = Migration(
    version=1,
    description="initial schema",
    script="""
CREATE TABLE characters (
    character_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rarity INTEGER NOT NULL CHECK (rarity BETWEEN 1 AND 5),
    stats TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX characters_by_user ON characters (user_id);
CREATE TABLE boss_raids (
    raid_id TEXT PRIMARY KEY,
    boss_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    event_start REAL NOT NULL,
    event_end REAL NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    template TEXT NOT NULL,
    rng_seed INTEGER NOT NULL
);
CREATE INDEX boss_raids_by_status ON boss_raids (status);
CREATE TABLE raid_strike_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    user_id TEXT NOT NULL,
    strike_id TEXT NOT NULL,
    action TEXT NOT NULL,
    team TEXT NOT NULL,
    base TEXT NOT NULL,
    multiplier TEXT NOT NULL,
    score INTEGER NOT NULL,
    damage INTEGER NOT NULL,
    analysis_points INTEGER NOT NULL,
    breakthrough INTEGER NOT NULL,
    retaliation INTEGER NOT NULL,
    victory INTEGER NOT NULL,
    draws TEXT NOT NULL,
    result TEXT NOT NULL,
    UNIQUE (raid_id, seq)
);
CREATE INDEX raid_strike_logs_strike_id ON raid_strike_logs (raid_id, user_id, strike_id);
CREATE TABLE raid_reward_claims (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    bundle TEXT NOT NULL,
    at REAL NOT NULL,
    UNIQUE (raid_id, user_id, key)
);
CREATE TABLE raid_snapshots (
    snapshot_id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    seq INTEGER NOT NULL,
    taken_at REAL NOT NULL,
    current_hp INTEGER NOT NULL,
    strike_count INTEGER NOT NULL,
    raid_state TEXT NOT NULL
);
CREATE UNIQUE INDEX raid_snapshots_by_raid ON raid_snapshots (raid_id, snapshot_id);
CREATE TABLE player_raid_states (
    raid_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    snapshot_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (raid_id, user_id, snapshot_id),
    FOREIGN KEY (raid_id, snapshot_id) REFERENCES raid_snapshots (raid_id, snapshot_id)
) WITHOUT ROWID;
""",
)

MIGRATION_2 = Migration(
    version=2,
    description="operator rollback (rolled_back, partial unique indexes) and reward delivery feed",
    script="""
CREATE TABLE raid_strike_logs_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    user_id TEXT NOT NULL,
    strike_id TEXT NOT NULL,
    action TEXT NOT NULL,
    team TEXT NOT NULL,
    base TEXT NOT NULL,
    multiplier TEXT NOT NULL,
    score INTEGER NOT NULL,
    damage INTEGER NOT NULL,
    analysis_points INTEGER NOT NULL,
    breakthrough INTEGER NOT NULL,
    retaliation INTEGER NOT NULL,
    victory INTEGER NOT NULL,
    draws TEXT NOT NULL,
    result TEXT NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0 CHECK (rolled_back IN (0, 1))
);
INSERT INTO raid_strike_logs_v2 (
    id, raid_id, seq, at, user_id, strike_id, action, team, base, multiplier, score, damage,
    analysis_points, breakthrough, retaliation, victory, draws, result
)
SELECT
    id, raid_id, seq, at, user_id, strike_id, action, team, base, multiplier, score, damage,
    analysis_points, breakthrough, retaliation, victory, draws, result
FROM raid_strike_logs;
DROP TABLE raid_strike_logs;
ALTER TABLE raid_strike_logs_v2 RENAME TO raid_strike_logs;
CREATE UNIQUE INDEX raid_strike_logs_seq ON raid_strike_logs (raid_id, seq)
    WHERE rolled_back = 0;
CREATE INDEX raid_strike_logs_strike_id ON raid_strike_logs (raid_id, user_id, strike_id)
    WHERE rolled_back = 0;
CREATE TABLE raid_reward_claims_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    bundle TEXT NOT NULL,
    at REAL NOT NULL,
    strike_seq INTEGER,
    acked_at REAL,
    rolled_back INTEGER NOT NULL DEFAULT 0 CHECK (rolled_back IN (0, 1))
);
INSERT INTO raid_reward_claims_v2 (id, raid_id, user_id, key, bundle, at, strike_seq)
SELECT
    c.id, c.raid_id, c.user_id, c.key, c.bundle, c.at,
    (
        SELECT l.seq FROM raid_strike_logs AS l
        WHERE l.raid_id = c.raid_id AND l.user_id = c.user_id AND c.key = 'strike:' || l.strike_id
    )
FROM raid_reward_claims AS c;
DROP TABLE raid_reward_claims;
ALTER TABLE raid_reward_claims_v2 RENAME TO raid_reward_claims;
CREATE UNIQUE INDEX raid_reward_claims_key ON raid_reward_claims (raid_id, user_id, key)
    WHERE rolled_back = 0;
CREATE UNIQUE INDEX raid_reward_claims_strike ON raid_reward_claims (raid_id, strike_seq)
    WHERE strike_seq IS NOT NULL AND rolled_back = 0;
CREATE INDEX raid_reward_claims_pending ON raid_reward_claims (id)
    WHERE acked_at IS NULL AND rolled_back = 0;
ALTER TABLE raid_snapshots
    ADD COLUMN rolled_back INTEGER NOT NULL DEFAULT 0 CHECK (rolled_back IN (0, 1));
""",
)

MIGRATION_3 = Migration(
    version=3,
    description="restore history (roll a raid forward again to a rolled-back snapshot)",
    script="""
CREATE TABLE raid_restores (
    restore_id INTEGER PRIMARY KEY AUTOINCREMENT,
    raid_id TEXT NOT NULL REFERENCES boss_raids (raid_id),
    at REAL NOT NULL,
    snapshot_id INTEGER,
    seq INTEGER,
    parent_restore_id INTEGER,
    strike_mark INTEGER NOT NULL,
    claim_mark INTEGER NOT NULL,
    snapshot_mark INTEGER NOT NULL,
    rolled_back_strikes INTEGER NOT NULL DEFAULT 0,
    restored_strikes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX raid_restores_by_raid ON raid_restores (raid_id, restore_id);
INSERT INTO raid_restores (raid_id, at, strike_mark, claim_mark, snapshot_mark)
SELECT raid_id, 0, 0, 0, 0 FROM boss_raids
WHERE raid_id IN (SELECT raid_id FROM raid_strike_logs WHERE rolled_back = 1)
   OR raid_id IN (SELECT raid_id FROM raid_snapshots WHERE rolled_back = 1);
""",
)

MIGRATION_4 = Migration(
    version=4,
    description="raid host leases (a generation per lease fences stale hosts' writes)",
    script="""
CREATE TABLE host_leases (
    lease TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    generation INTEGER NOT NULL CHECK (generation >= 1),
    expires_at REAL NOT NULL
);
""",
)

MIGRATIONS: tuple[Migration, ...] = (MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4)
LATEST_VERSION = MIGRATIONS[-1].version

_CREATE_VERSION_TABLE = "CREATE TABLE schema_version (version INTEGER NOT NULL)"


async def read_version(conn: aiosqlite.Connection, path: str) -> int:
    """The file's schema version; 0 for an empty file.

    A file that has tables but no ``schema_version`` is not ours: refuse it rather than
    create our tables among someone else's.
    """
    rows = list(
        await conn.execute_fetchall(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    names = {str(row[0]) for row in rows}
    if not names:
        return 0
    if "schema_version" not in names:
        raise SchemaError(f"{path} is not a World-Threat Raid database (no schema_version table)")
    versions = list(await conn.execute_fetchall("SELECT version FROM schema_version"))
    if len(versions) != 1:
        raise SchemaError(f"{path}: schema_version must hold one row, found {len(versions)}")
    return int(versions[0][0])


async def upgrade(
    conn: aiosqlite.Connection, path: str, migrations: Sequence[Migration] = MIGRATIONS
) -> SchemaUpgrade:
    """Bring the file to the newest version of ``migrations``, in one transaction.

    ``conn`` must be in autocommit mode (isolation_level=None) with foreign keys off: a
    table rebuild would otherwise trip them. Foreign keys are checked before committing.
    """
    latest = migrations[-1].version
    current = await read_version(conn, path)
    if current > latest:
        raise SchemaTooNew(path, current, latest)
    if current == latest:
        return SchemaUpgrade(current, current)
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have upgraded meanwhile.
        current = await read_version(conn, path)
        if current > latest:
            raise SchemaTooNew(path, current, latest)
        if current == 0:
            await conn.execute(_CREATE_VERSION_TABLE)
            await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        for migration in migrations:
            if migration.version > current:
                for statement in migration.statements:
                    await conn.execute(statement)
        await conn.execute("UPDATE schema_version SET version = ?", (latest,))
        violations = list(await conn.execute_fetchall("PRAGMA foreign_key_check"))
        if violations:
            raise SchemaError(
                f"{path}: upgrade from version {current} to {latest} leaves "
                f"{len(violations)} foreign key violation(s), first: {tuple(violations[0])}"
            )
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return SchemaUpgrade(current, latest)
