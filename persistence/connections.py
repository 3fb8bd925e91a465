"""The SQLite connections of one database file: one writer, a few readers.

SQLite has no connection pool and admits one writer at a time, so there is exactly one
writer connection; every change goes through it, serialised by an asyncio lock. The file is
in WAL mode, where readers never block the writer nor each other: a few reader connections
(``PRAGMA query_only``) serve the reads, each read seeing the last committed state. Each
aiosqlite connection owns one thread, so the readers also run large reads in parallel with a
commit.

Connections are opened in autocommit mode (``isolation_level=None``): transactions are
explicit. Every multi-step change runs in ``transaction()`` (``BEGIN IMMEDIATE`` ... ``COMMIT``,
``ROLLBACK`` on any error); ``BEGIN IMMEDIATE`` takes the write lock up front, so a transaction
never fails half-way because another process started writing. Multi-statement reads run in
``read_transaction()`` so they see one consistent state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import aiosqlite

from persistence import schema
from persistence.errors import DatabaseNotOpen, PersistenceError
from persistence.file_guard import FileGuard
from persistence.records import SchemaUpgrade

T = TypeVar("T")

# A journal batch touches per-player index pages all over the file (consecutive strikes come
# from unrelated players). Checkpointing every 10,000 pages (40 MiB of WAL) instead of SQLite's
# 1,000 writes each hot page back once for several batches rather than once per batch, and a
# larger page cache for the writer (``[persistence] page_cache_mib``, 16 MiB by default instead
# of SQLite's 2 MiB) keeps those index pages in memory between batches. The cache fills as the
# database grows, so the server's RSS rises by up to that much, then stays. (64 MiB was no
# faster, in process or over WebSockets, and cost 30 MiB of RSS: docs/benchmarks.md.)
WAL_AUTOCHECKPOINT_PRAGMA = "PRAGMA wal_autocheckpoint = 10000"
DEFAULT_PAGE_CACHE_MIB = 16

SYNCHRONOUS_PRAGMAS = {
    "FULL": "PRAGMA synchronous = FULL",
    "NORMAL": "PRAGMA synchronous = NORMAL",
}


class ConnectionPool:
    def __init__(
        self,
        path: str,
        *,
        synchronous: str,
        readers: int,
        busy_timeout_ms: int,
        page_cache_mib: int = DEFAULT_PAGE_CACHE_MIB,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_PRAGMAS:
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        if readers < 1:
            raise ValueError(f"readers must be at least 1, not {readers}")
        if busy_timeout_ms < 0:
            raise ValueError(f"busy_timeout_ms must be >= 0, not {busy_timeout_ms}")
        self.path = path
        self._synchronous_pragma = SYNCHRONOUS_PRAGMAS[synchronous.upper()]
        self._reader_count = readers
        self._timeout_s = busy_timeout_ms / 1000  # sqlite3's busy timeout, in seconds
        self._page_cache_mib = page_cache_mib  # the writer's SQLite page cache
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()  # one user of the writer at a time
        self._reader_locks: list[asyncio.Lock] = []  # one user of each reader at a time
        self._next_reader = 0  # round robin among the readers
        self.guard = FileGuard(path)  # commits fail once the file is removed or replaced

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def open(self) -> SchemaUpgrade:
        """Open the connections, enabling WAL and migrating the schema first."""
        if self._writer is not None:
            raise PersistenceError(f"database {self.path} is already open")
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            # Checked here because aiosqlite reports a failed connect from a thread that may
            # outlive the event loop.
            raise PersistenceError(
                f"cannot open database {self.path}: directory {directory} does not exist"
            )
        opened: list[aiosqlite.Connection] = []
        try:
            writer = await self._connect()
            opened.append(writer)
            upgrade = await self._prepare_writer(writer)
            for _ in range(self._reader_count):
                reader = await self._connect()
                opened.append(reader)
                await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            for conn in opened:
                await conn.close()
            raise
        self._writer = writer
        self._readers = opened[1:]
        self._reader_locks = [asyncio.Lock() for _ in self._readers]
        self.guard.remember()
        return upgrade

    async def close(self) -> None:
        """Close every connection once the operations already under way are done."""
        if self._writer is None:
            return
        writer, readers = self._writer, self._readers
        self._writer, self._readers = None, []  # later calls fail with DatabaseNotOpen
        async with self._write_lock:
            await writer.close()
        for reader, lock in zip(readers, self._reader_locks, strict=True):
            async with lock:
                await reader.close()

    def require_open(self) -> None:
        if self._writer is None:
            raise DatabaseNotOpen(self.path)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer connection, for one autocommit statement."""
        writer = self._writer
        if writer is None:
            raise DatabaseNotOpen(self.path)
        async with self._write_lock:
            self.guard.check()
            yield writer

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the writer; ``ROLLBACK`` on any error."""
        async with self.writing() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                self.guard.check()
                await conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR).
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise

    async def run_transaction(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(sqlite3_connection, *args)`` in one write transaction, in ONE hop.

        ``transaction()`` costs a thread round trip per statement (BEGIN, each statement,
        COMMIT). Under load every hop waits for the GIL behind busy actor threads, so the
        journal's group commit runs its whole transaction on the writer's thread at once,
        through aiosqlite's function queue (``Connection._execute``, the queue every aiosqlite
        call goes through).
        """
        async with self.writing() as conn:
            raw: sqlite3.Connection = conn._conn
            run_on_thread: Callable[..., Awaitable[Any]] = conn._execute
            return cast(T, await run_on_thread(_in_transaction, raw, self.guard, work, *args))

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection: an idle one if any, else the next in turn."""
        if self._writer is None:
            raise DatabaseNotOpen(self.path)
        count = len(self._readers)
        index = self._next_reader
        for offset in range(count):
            candidate = (self._next_reader + offset) % count
            if not self._reader_locks[candidate].locked():
                index = candidate
                break
        self._next_reader = (index + 1) % count
        async with self._reader_locks[index]:
            yield self._readers[index]

    @contextlib.asynccontextmanager
    async def read_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A reader connection inside ``BEGIN`` ... ``COMMIT``: one consistent view."""
        async with self.reading() as conn:
            await conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    await conn.execute("COMMIT")

    async def _connect(self) -> aiosqlite.Connection:
        return await aiosqlite.connect(self.path, isolation_level=None, timeout=self._timeout_s)

    async def _journal_mode_wal(self, writer: aiosqlite.Connection) -> str:
        """Switch to WAL; the journal mode in effect after it.

        Switching needs the file to itself: SQLite answers ``SQLITE_BUSY`` at once, without
        its busy handler, while another process opens the same old file (two servers
        starting together); retried until the busy timeout, like any other lock wait."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                rows = list(await writer.execute_fetchall("PRAGMA journal_mode = WAL"))
                return str(rows[0][0])
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorname != "SQLITE_BUSY" or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(0.01)

    async def _prepare_writer(self, writer: aiosqlite.Connection) -> SchemaUpgrade:
        mode = await self._journal_mode_wal(writer)
        if mode.lower() != "wal":
            raise PersistenceError(f"database {self.path} cannot use WAL (journal_mode={mode})")
        await writer.execute(self._synchronous_pragma)
        await writer.execute(WAL_AUTOCHECKPOINT_PRAGMA)
        await writer.execute(f"PRAGMA cache_size = -{self._page_cache_mib * 1024}")
        # Off while migrating: rebuilding a table would trip them (schema.upgrade checks them).
        await writer.execute("PRAGMA foreign_keys = OFF")
        upgrade = await schema.upgrade(writer, self.path)
        await writer.execute("PRAGMA foreign_keys = ON")
        return upgrade


def _in_transaction(
    raw: sqlite3.Connection, guard: FileGuard, work: Callable[..., T], *args: Any
) -> T:
    raw.execute("BEGIN IMMEDIATE")
    try:
        result = work(raw, *args)
        guard.check()
        raw.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR).
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise
    return result
