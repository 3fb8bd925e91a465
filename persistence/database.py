"""``Database``: the async service layer over one SQLite file.

Connections (see ``persistence.connections``): one writer connection and ``readers`` reader
connections (default 2), WAL mode, ``synchronous`` FULL by default (NORMAL is faster but may
lose the last commits on power loss, never on a process crash), ``busy_timeout`` 5000 ms,
foreign keys on. Everything that writes goes to the writer; every read goes to a reader, so
a large read never waits for a commit in flight. Every multi-step change is one
``BEGIN IMMEDIATE`` transaction. Raid and player state are opaque JSON text chosen by the
callers. The schema is described in ``persistence.schema``.

SQLite errors that are nobody's fault (disk full, database locked past busy_timeout) reach the
caller as ``sqlite3.Error``; the caller's mistakes raise the exceptions of
``persistence.errors`` or ``ValueError``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from persistence import rows, timeline
from persistence.connections import DEFAULT_PAGE_CACHE_MIB, ConnectionPool
from persistence.errors import (
    DuplicatePlayerState,
    DuplicateRaid,
    RosterConflict,
    UnknownRaid,
    UnknownSnapshot,
)
from persistence.records import (
    AuditedClaim,
    AuditedStrike,
    CharacterRow,
    ClaimStatus,
    LoadedSnapshot,
    PendingReward,
    RaidRow,
    RestoreInfo,
    RestoreResult,
    RewardGrant,
    SchemaUpgrade,
    SnapshotInfo,
    StrikeRecord,
)

if TYPE_CHECKING:
    from persistence.leases import Fence

T = TypeVar("T")

MAX_PENDING_LIMIT = 1000
STRIKE_KEY_PREFIX = "strike:"
_NO_UPPER_BOUND = 2**63 - 1  # the largest SQLite integer: "as of the latest snapshot"


def _is_foreign_key_error(exc: sqlite3.IntegrityError) -> bool:
    return exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY"


class Database:
    """The persistence service: rosters, raids, the strike journal, rewards and snapshots.

    Use ``db = await Database.open(path)`` ... ``await db.close()``, or
    ``async with Database(path) as db``. Every method raises ``DatabaseNotOpen`` when the
    database is not open.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        readers: int = 2,
        busy_timeout_ms: int = 5000,
        page_cache_mib: int = DEFAULT_PAGE_CACHE_MIB,
    ) -> None:
        self._pool = ConnectionPool(
            os.fspath(path),
            synchronous=synchronous,
            readers=readers,
            busy_timeout_ms=busy_timeout_ms,
            page_cache_mib=page_cache_mib,
        )
        self._schema_upgrade: SchemaUpgrade | None = None  # what connect() migrated, for logs
        self.fence: Fence | None = None
        """A raid host's ``persistence.leases.Fence``: journal and snapshot transactions
        check it first and raise ``Fenced`` once another host took the lease over."""

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        readers: int = 2,
        busy_timeout_ms: int = 5000,
        page_cache_mib: int = DEFAULT_PAGE_CACHE_MIB,
    ) -> Database:
        """Open (creating or upgrading) the database file at ``path``."""
        db = cls(
            path,
            synchronous=synchronous,
            readers=readers,
            busy_timeout_ms=busy_timeout_ms,
            page_cache_mib=page_cache_mib,
        )
        await db.connect()
        return db

    async def connect(self) -> None:
        self._schema_upgrade = await self._pool.open()

    async def close(self) -> None:
        """Close the connections once the operations under way are done. Idempotent."""
        await self._pool.close()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def path(self) -> str:
        return self._pool.path

    @property
    def is_open(self) -> bool:
        return self._pool.is_open

    @property
    def schema_upgrade(self) -> SchemaUpgrade | None:
        """The schema versions before and after opening (equal when nothing was migrated)."""
        return self._schema_upgrade

    # -- rosters ---------------------------------------------------------------------------

    async def upsert_characters(self, characters: Sequence[CharacterRow]) -> list[str]:
        """Insert or update characters in one transaction; returns their ids in order.

        A character_id owned by another user (in the database or earlier in the batch)
        raises ``RosterConflict`` naming every such id, and nothing is written.
        """
        ids = [character.character_id for character in characters]
        async with self._pool.transaction() as conn:
            owners = {
                str(row[0]): str(row[1])
                for row in await conn.execute_fetchall(
                    "SELECT c.character_id, c.user_id FROM characters AS c "
                    "JOIN json_each(?) AS j ON c.character_id = j.value",
                    (rows.dump_json(ids),),
                )
            }
            conflicts = []
            for character in characters:
                owner = owners.setdefault(character.character_id, character.user_id)
                if owner != character.user_id:
                    conflicts.append(character.character_id)
            if conflicts:
                raise RosterConflict(conflicts)
            await conn.executemany(
                f"INSERT INTO characters ({rows.CHARACTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (character_id) DO UPDATE SET name = excluded.name, "
                "rarity = excluded.rarity, stats = excluded.stats, tags = excluded.tags",
                [rows.character_params(character) for character in characters],
            )
        return ids

    async def get_user_characters(self, user_id: str) -> list[CharacterRow]:
        return (await self.get_users_characters([user_id]))[user_id]

    async def get_users_characters(self, user_ids: Sequence[str]) -> dict[str, list[CharacterRow]]:
        """Several users' characters (ordered by ``character_id``) in one read of one row:
        a row per character would give the GIL back once per character and wait for it
        again each time (``ONE_STEP_READS``). At most ``MAX_USERS_PER_READ`` users."""
        if len(user_ids) > MAX_USERS_PER_READ:
            raise ValueError(f"{len(user_ids)} users in one read; at most {MAX_USERS_PER_READ}")
        padded = rows.padded(list(user_ids))  # a repeated user adds nothing to the result
        async with self._pool.reading() as conn:
            sql = rows.characters_as_one_row(len(padded))
            async with conn.execute(sql, padded) as cursor:
                (text,) = await cursor.fetchone() or ("{}",)
        return rows.characters_from_one_row(text, user_ids)

    # -- raids -----------------------------------------------------------------------------

    async def create_boss_raid(self, raid: RaidRow) -> RaidRow:
        async with self._pool.writing() as conn:
            cursor = await conn.execute(
                f"INSERT INTO boss_raids ({rows.RAID_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (raid_id) DO NOTHING",
                rows.raid_params(raid),
            )
        if cursor.rowcount == 0:
            raise DuplicateRaid(raid.raid_id)
        return raid

    async def create_boss_raid_with_snapshot(
        self, raid: RaidRow, *, current_hp: int
    ) -> SnapshotInfo:
        """Create a raid and its first snapshot (seq 0, the template's state) in ONE
        transaction: a crash or a full disk can never leave a raid without a snapshot."""
        snapshot = (raid.raid_id, 0, raid.created_at, current_hp, 0, raid.template_json)
        snapshot_id = await self._pool.run_transaction(_insert_raid_and_snapshot, raid, snapshot)
        return SnapshotInfo(snapshot_id, raid.raid_id, 0, raid.created_at, current_hp, 0)

    async def run_transaction(self, work: Callable[..., T], *args: Any) -> T:
        """``work(sqlite3_connection, *args)`` in one write transaction (persistence.leases)."""
        return await self._pool.run_transaction(work, *args)

    async def get_boss_raid_by_id(self, raid_id: str) -> RaidRow | None:
        async with self._pool.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    f"SELECT {rows.RAID_COLUMNS} FROM boss_raids WHERE raid_id = ?", (raid_id,)
                )
            )
        return rows.raid_from_row(found[0]) if found else None

    async def list_recent_raids(self, limit: int) -> list[RaidRow]:
        """At most ``limit`` raids: unfinished ones first, then finished ones; newest first."""
        query = (
            f"SELECT {rows.RAID_COLUMNS} FROM boss_raids "
            "ORDER BY status IN ('defeated', 'expired', 'ended'), created_at DESC, raid_id "
            "LIMIT ?"
        )
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(query, (limit,))
        return [rows.raid_from_row(row) for row in found]

    async def list_boss_raids(self, statuses: Collection[str] | None = None) -> list[RaidRow]:
        """Every raid, or those whose status is in ``statuses``, oldest first."""
        if isinstance(statuses, str):
            raise TypeError("statuses must be a collection of statuses, not one string")
        query = f"SELECT {rows.RAID_COLUMNS} FROM boss_raids"
        params: tuple[object, ...] = ()
        if statuses is not None:
            query += " WHERE status IN (SELECT value FROM json_each(?))"
            params = (rows.dump_json(sorted(statuses)),)
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(query + " ORDER BY created_at, raid_id", params)
        return [rows.raid_from_row(row) for row in found]

    async def update_boss_raid_state(
        self, raid_id: str, *, status: str, ended_at: float | None = None
    ) -> int:
        """Set status and ended_at (None clears it); returns the number of rows changed."""
        async with self._pool.writing() as conn:
            cursor = await conn.execute(
                "UPDATE boss_raids SET status = ?, ended_at = ? WHERE raid_id = ?",
                (status, ended_at, raid_id),
            )
        return cursor.rowcount

    # -- journal ---------------------------------------------------------------------------

    async def add_raid_strike_logs(
        self, records: Sequence[StrikeRecord], claims: Sequence[RewardGrant] = ()
    ) -> None:
        """Append strikes (with their grants) and claims to the journal in one transaction.

        A seq already journaled for the raid, a reward key already recorded or an unknown
        raid raises ``sqlite3.IntegrityError`` and nothing is written.
        """
        for record in records:
            if record.grant is not None:
                _check_strike_grant(record, record.grant)
        for claim in claims:
            _check_claim_key(claim)
        if not records and not claims:
            self._pool.require_open()
            return
        await self._pool.run_transaction(
            _fenced, self.fence, _insert_journal_batch, records, claims
        )

    async def get_raid_strike_logs_by_raid(
        self, raid_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[StrikeRecord]:
        """The raid's journal (rolled-back strikes excluded) with seq > after_seq, by seq."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1 (or None for no limit), not {limit}")
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                rows.STRIKE_SELECT + "WHERE l.raid_id = ? AND l.rolled_back = 0 AND l.seq > ? "
                "ORDER BY l.seq LIMIT ?",
                (raid_id, after_seq, -1 if limit is None else limit),
            )
        return [rows.strike_from_row(row) for row in found]

    async def get_strike_results(
        self, raid_id: str, *, after_seq: int = 0
    ) -> list[tuple[int, str]]:
        """Just ``(seq, result JSON)`` of the raid's journal after ``after_seq``, by seq.

        What start-up restore replays: reading whole records costs five times as much.
        """
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                "SELECT seq, result FROM raid_strike_logs "
                "WHERE raid_id = ? AND rolled_back = 0 AND seq > ? ORDER BY seq",
                (raid_id, after_seq),
            )
        return [(int(row[0]), str(row[1])) for row in found]

    async def get_strike_log(self, raid_id: str, seq: int) -> StrikeRecord | None:
        return await self._one_strike(
            "WHERE l.raid_id = ? AND l.seq = ? AND l.rolled_back = 0", (raid_id, seq)
        )

    async def find_strike_ids(
        self, raid_id: str, wanted: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """The seq of each ``(user_id, strike_id)`` of ``wanted`` the raid's journal holds
        (not rolled back), in one read of one row (``ONE_STEP_READS``): an index probe per
        pair, and usually none found. At most ``MAX_STRIKE_IDS_PER_READ`` pairs."""
        if len(wanted) > MAX_STRIKE_IDS_PER_READ:
            raise ValueError(
                f"{len(wanted)} strike_ids in one read; at most {MAX_STRIKE_IDS_PER_READ}"
            )
        if not wanted:
            return {}
        padded = rows.padded(list(wanted))  # a repeated pair is found twice: the same key
        sql = rows.strike_ids_as_one_row(len(padded))
        params = [value for pair in padded for value in pair]
        async with self._pool.reading() as conn, conn.execute(sql, (*params, raid_id)) as cursor:
            (text,) = await cursor.fetchone() or ("[]",)
        return {(user_id, strike_id): seq for user_id, strike_id, seq in orjson.loads(text)}

    async def _one_strike(self, where: str, params: tuple[object, ...]) -> StrikeRecord | None:
        async with self._pool.reading() as conn:
            found = list(await conn.execute_fetchall(rows.STRIKE_SELECT + where, params))
        return rows.strike_from_row(found[0]) if found else None

    # -- rewards ---------------------------------------------------------------------------

    async def claim_reward(self, grant: RewardGrant) -> ClaimStatus:
        """Record a claim once: a second claim of the key (even concurrent) is ALREADY_CLAIMED.

        ``strike:`` rewards are granted with their strike (``add_raid_strike_logs``).
        """
        _check_claim_key(grant)
        try:
            async with self._pool.writing() as conn:
                cursor = await conn.execute(
                    f"INSERT INTO raid_reward_claims ({rows.GRANT_INSERT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (raid_id, user_id, key) WHERE rolled_back = 0 DO NOTHING",
                    rows.grant_params(grant, None),
                )
        except sqlite3.IntegrityError as exc:
            if _is_foreign_key_error(exc):
                raise UnknownRaid(grant.raid_id) from exc
            raise
        return ClaimStatus.CLAIMED if cursor.rowcount == 1 else ClaimStatus.ALREADY_CLAIMED

    async def list_player_rewards(self, raid_id: str, user_id: str) -> list[RewardGrant]:
        """Every reward granted to or claimed by the player in the raid, in grant order."""
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                f"SELECT {rows.GRANT_COLUMNS} FROM raid_reward_claims "
                "WHERE raid_id = ? AND user_id = ? AND rolled_back = 0 ORDER BY id",
                (raid_id, user_id),
            )
        return [rows.grant_from_row(row) for row in found]

    async def get_claims(
        self, raid_id: str, *, exclude_prefix: str | None = None
    ) -> list[RewardGrant]:
        """The raid's rewards in grant order, without those whose key starts with the prefix."""
        query = (
            f"SELECT {rows.GRANT_COLUMNS} FROM raid_reward_claims "
            "WHERE raid_id = ? AND rolled_back = 0"
        )
        params: tuple[object, ...] = (raid_id,)
        if exclude_prefix is not None:
            query += " AND substr(key, 1, ?) <> ?"
            params += (len(exclude_prefix), exclude_prefix)
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(query + " ORDER BY id", params)
        return [rows.grant_from_row(row) for row in found]

    async def pending_rewards(self, limit: int = 100) -> list[PendingReward]:
        """Rewards not yet acknowledged by the game's backend, oldest first."""
        if not 1 <= limit <= MAX_PENDING_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_PENDING_LIMIT}, not {limit}")
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                f"SELECT {rows.PENDING_COLUMNS} FROM raid_reward_claims "
                "WHERE acked_at IS NULL AND rolled_back = 0 ORDER BY id LIMIT ?",
                (limit,),
            )
        return [rows.pending_from_row(row) for row in found]

    async def ack_rewards(self, ids: Sequence[int]) -> int:
        """Mark rewards delivered; returns how many were newly acknowledged."""
        if not ids:
            self._pool.require_open()
            return 0
        at = time.time()
        async with self._pool.transaction() as conn:
            cursor = await conn.executemany(
                "UPDATE raid_reward_claims SET acked_at = ? WHERE id = ? AND acked_at IS NULL",
                [(at, reward_id) for reward_id in ids],
            )
        return cursor.rowcount

    # -- player states -----------------------------------------------------------------------

    async def create_player_raid_state(
        self, raid_id: str, user_id: str, snapshot_id: int, state_json: str
    ) -> None:
        """Record the player's state at a snapshot; ``DuplicatePlayerState`` if recorded."""
        written = await self._write_player_state(
            raid_id, user_id, snapshot_id, state_json, replace=False
        )
        if written == 0:
            raise DuplicatePlayerState(raid_id, user_id, snapshot_id)

    async def update_player_raid_state(
        self, raid_id: str, user_id: str, snapshot_id: int, state_json: str
    ) -> None:
        """Record or replace the player's state at a snapshot."""
        await self._write_player_state(raid_id, user_id, snapshot_id, state_json, replace=True)

    async def _write_player_state(
        self, raid_id: str, user_id: str, snapshot_id: int, state_json: str, *, replace: bool
    ) -> int:
        on_conflict = "DO UPDATE SET state = excluded.state" if replace else "DO NOTHING"
        try:
            async with self._pool.writing() as conn:
                cursor = await conn.execute(
                    "INSERT INTO player_raid_states (raid_id, user_id, snapshot_id, state) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (raid_id, user_id, snapshot_id) "
                    + on_conflict,
                    (raid_id, user_id, snapshot_id, state_json),
                )
        except sqlite3.IntegrityError as exc:
            if _is_foreign_key_error(exc):
                raise UnknownSnapshot(raid_id, snapshot_id) from exc
            raise
        return cursor.rowcount

    async def get_player_raid_state(
        self, raid_id: str, user_id: str, as_of_snapshot: int | None = None
    ) -> str | None:
        """The player's state at a snapshot (default: the latest), or None if never saved."""
        as_of = _NO_UPPER_BOUND if as_of_snapshot is None else as_of_snapshot
        async with self._pool.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    "SELECT p.state FROM player_raid_states AS p "
                    "JOIN raid_snapshots AS s ON s.snapshot_id = p.snapshot_id "
                    "WHERE p.raid_id = ? AND p.user_id = ? AND p.snapshot_id <= ? "
                    "AND s.rolled_back = 0 ORDER BY p.snapshot_id DESC LIMIT 1",
                    (raid_id, user_id, as_of),
                )
            )
        return str(found[0][0]) if found else None

    # -- snapshots ---------------------------------------------------------------------------

    async def save_snapshot(
        self,
        raid_id: str,
        *,
        seq: int,
        taken_at: float,
        current_hp: int,
        strike_count: int,
        raid_state_json: str,
        players: Sequence[tuple[str, str]],
    ) -> SnapshotInfo:
        """Save the raid state and the players changed since the previous snapshot.

        Everything, the 100,000-row case included, runs on the writer's thread in one
        transaction: the event loop only hands the rows over.
        """
        try:
            snapshot_id = await self._pool.run_transaction(
                _fenced,
                self.fence,
                _insert_snapshot,
                (raid_id, seq, taken_at, current_hp, strike_count, raid_state_json),
                players,
            )
        except sqlite3.IntegrityError as exc:
            if _is_foreign_key_error(exc):
                raise UnknownRaid(raid_id) from exc
            raise
        return SnapshotInfo(snapshot_id, raid_id, seq, taken_at, current_hp, strike_count)

    async def list_snapshots(self, raid_id: str) -> list[SnapshotInfo]:
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                f"SELECT {rows.SNAPSHOT_COLUMNS} FROM raid_snapshots "
                "WHERE raid_id = ? AND rolled_back = 0 ORDER BY snapshot_id",
                (raid_id,),
            )
        return [rows.snapshot_from_row(row) for row in found]

    async def load_snapshot(
        self, raid_id: str, snapshot_id: int | None = None
    ) -> LoadedSnapshot | None:
        """A snapshot (default: the latest) with every player's state as of it.

        None when the raid has no such snapshot (or it was rolled back).
        """
        select = (
            f"SELECT {rows.SNAPSHOT_COLUMNS}, raid_state FROM raid_snapshots "
            "WHERE raid_id = ? AND rolled_back = 0 "
        )
        async with self._pool.read_transaction() as conn:
            if snapshot_id is None:
                found = await conn.execute_fetchall(
                    select + "ORDER BY snapshot_id DESC LIMIT 1", (raid_id,)
                )
            else:
                found = await conn.execute_fetchall(
                    select + "AND snapshot_id = ?", (raid_id, snapshot_id)
                )
            snapshot = list(found)
            if not snapshot:
                return None
            info = rows.snapshot_from_row(snapshot[0])
            # SQLite takes bare columns from the row holding max(): the latest version.
            players = await conn.execute_fetchall(
                "SELECT user_id, state, max(snapshot_id) FROM player_raid_states "
                "WHERE raid_id = ? AND snapshot_id <= ? AND snapshot_id IN ("
                "SELECT snapshot_id FROM raid_snapshots WHERE raid_id = ? AND rolled_back = 0"
                ") GROUP BY user_id ORDER BY user_id",
                (raid_id, info.snapshot_id, raid_id),
            )
        return LoadedSnapshot(
            info=info,
            raid_state_json=str(snapshot[0][6]),
            players=[(str(row[0]), str(row[1])) for row in players],
        )

    async def restore_to_snapshot(
        self, raid_id: str, snapshot_id: int, *, at: float, status_of: timeline.StatusOf
    ) -> RestoreResult:
        """Make the snapshot the raid's latest, in one transaction (``persistence.timeline``).

        Going back marks what follows the snapshot rolled back; going forward to a snapshot
        an earlier restore rolled back brings its journal back. Rows are marked, never
        deleted; claims that are not strike grants are left alone. ``status_of`` reads the
        raid status and ``ended_at`` from the snapshot's raid state, written to ``boss_raids``.
        """
        return await self._pool.run_transaction(
            timeline.restore, raid_id, snapshot_id, at, status_of
        )

    async def list_restores(self, raid_id: str) -> list[RestoreInfo]:
        async with self._pool.reading() as conn:
            found = list(
                await conn.execute_fetchall(
                    "SELECT restore_id, at, snapshot_id, seq, rolled_back_strikes, "
                    "restored_strikes FROM raid_restores WHERE raid_id = ? "
                    "AND snapshot_id IS NOT NULL ORDER BY restore_id",
                    (raid_id,),
                )
            )
        return [RestoreInfo(*row) for row in found]

    async def audit_strikes(
        self, raid_id: str, *, user_id: str | None = None, strike_id: str | None = None
    ) -> list[AuditedStrike]:
        """Journaled strikes of the raid, rolled-back ones included, oldest first."""
        where, params = "WHERE l.raid_id = ?", [raid_id]
        if user_id is not None:
            where += " AND l.user_id = ?"
            params.append(user_id)
        if strike_id is not None:
            where += " AND l.strike_id = ?"
            params.append(strike_id)
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                rows.AUDIT_SELECT + where + " ORDER BY l.id", params
            )
        return [rows.audited_from_row(row) for row in found]

    async def audit_claims(self, raid_id: str, user_id: str) -> list[AuditedClaim]:
        """Every reward row of the player in the raid, rolled-back ones included, by id."""
        async with self._pool.reading() as conn:
            found = await conn.execute_fetchall(
                f"SELECT {rows.AUDIT_CLAIM_COLUMNS} FROM raid_reward_claims "
                "WHERE raid_id = ? AND user_id = ? ORDER BY id",
                (raid_id, user_id),
            )
        return [rows.audited_claim_from_row(row) for row in found]

    # -- maintenance -------------------------------------------------------------------------

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it; False if readers prevented it."""
        async with self._pool.writing() as conn:
            found = list(await conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)"))
        return int(found[0][0]) == 0

    async def set_max_page_count(self, pages: int) -> int:
        """Cap the file size at ``pages`` pages (writes past it fail with SQLITE_FULL).

        For quotas, and for tests that need a real full disk. SQLite never caps below the
        current size; returns the cap in effect. PRAGMA arguments cannot be bound, hence the
        int() check before formatting.
        """
        if isinstance(pages, bool) or int(pages) != pages or pages < 1:
            raise ValueError(f"pages must be a positive integer, not {pages!r}")
        async with self._pool.writing() as conn:
            found = list(await conn.execute_fetchall(f"PRAGMA max_page_count = {int(pages)}"))
        return int(found[0][0])


def _check_claim_key(claim: RewardGrant) -> None:
    if claim.key.startswith(STRIKE_KEY_PREFIX):
        raise ValueError(
            f"{claim.key!r}: strike rewards are granted with their strike (StrikeRecord.grant)"
        )


def _check_strike_grant(record: StrikeRecord, grant: RewardGrant) -> None:
    if grant.raid_id != record.raid_id or grant.user_id != record.user_id:
        raise ValueError(
            f"the grant of strike {record.raid_id}#{record.seq} names raid {grant.raid_id} "
            f"and user {grant.user_id}, not the strike's"
        )


ROWS_PER_INSERT = 64
"""Rows per multi-row INSERT in a group commit.

``executemany`` steps SQLite once per row and releases the GIL around every step; with busy
actor threads each step then waits up to a switch interval to get it back, which made a
100-row commit take 15 ms instead of 1 ms. A multi-row INSERT inserts up to 64 rows per step.
"""


MAX_STRIKE_IDS_PER_READ = 512
"""Strike_ids in one ``find_strike_ids`` (two bound parameters each)."""

MAX_USERS_PER_READ = 512
"""Users in one ``get_users_characters`` (SQLite allows 32,766 bound parameters)."""

ONE_STEP_READS = """Hot reads return one row built by SQLite (``json_group_array``).

Like ``executemany``, fetching N rows steps SQLite N times and releases the GIL around each
step; under load each step then waits for the GIL again: a player's 64-character roster read
took seconds at 1,000 striking clients, and that player's first strike waited for it.
"""


def _insert_rows(
    conn: sqlite3.Connection,
    table: str,
    columns: str,
    width: int,
    rows_: Sequence[Sequence[object]],
) -> None:
    one_row = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows_), ROWS_PER_INSERT):
        chunk = rows_[start : start + ROWS_PER_INSERT]
        values = ", ".join([one_row] * len(chunk))
        conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES {values}",
            [value for row in chunk for value in row],
        )


def _fenced(conn: sqlite3.Connection, fence: Fence | None, work: Callable[..., T], *args: Any) -> T:
    """``work`` in the caller's write transaction, once the raid host's fence is checked."""
    if fence is not None:
        from persistence.leases import check_fence  # leases imports this module

        check_fence(conn, fence)
    return work(conn, *args)


def _insert_journal_batch(
    conn: sqlite3.Connection, records: Sequence[StrikeRecord], claims: Sequence[RewardGrant]
) -> None:
    """One group commit's inserts, rows encoded here: on the writer's thread, not the loop's."""
    strike_rows = [rows.strike_params(record) for record in records]
    grant_rows = [
        rows.grant_params(record.grant, record.seq) for record in records if record.grant
    ] + [rows.grant_params(claim, None) for claim in claims]
    if strike_rows:
        _insert_rows(conn, "raid_strike_logs", rows.STRIKE_INSERT_COLUMNS, 17, strike_rows)
    if grant_rows:
        _insert_rows(conn, "raid_reward_claims", rows.GRANT_INSERT_COLUMNS, 6, grant_rows)


def _insert_raid_and_snapshot(
    conn: sqlite3.Connection, raid: RaidRow, snapshot: tuple[str, int, float, int, int, str]
) -> int:
    cursor = conn.execute(
        f"INSERT INTO boss_raids ({rows.RAID_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (raid_id) DO NOTHING",
        rows.raid_params(raid),
    )
    if cursor.rowcount == 0:
        raise DuplicateRaid(raid.raid_id)
    return _insert_snapshot(conn, snapshot, ())


def _insert_snapshot(
    conn: sqlite3.Connection,
    snapshot: tuple[str, int, float, int, int, str],
    players: Sequence[tuple[str, str]],
) -> int:
    """Insert a snapshot and its changed players; returns the snapshot id."""
    if len({user_id for user_id, _ in players}) != len(players):
        raise ValueError("players must name each user_id at most once")
    cursor = conn.execute(
        "INSERT INTO raid_snapshots (raid_id, seq, taken_at, current_hp, strike_count, "
        "raid_state) VALUES (?, ?, ?, ?, ?, ?)",
        snapshot,
    )
    snapshot_id = cursor.lastrowid
    if snapshot_id is None:
        raise RuntimeError("sqlite3 gave no rowid for the inserted snapshot")
    raid_id = snapshot[0]
    conn.executemany(
        "INSERT INTO player_raid_states (raid_id, user_id, snapshot_id, state) VALUES (?, ?, ?, ?)",
        ((raid_id, user_id, snapshot_id, state) for user_id, state in players),
    )
    return snapshot_id
