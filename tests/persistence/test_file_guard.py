"""A database file removed or replaced under a running server takes no commit (issue 9,
storage faults): SQLite would write on into the unlinked file and every acknowledged write
would be gone at the next start."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from persistence.connections import ConnectionPool
from persistence.file_guard import DatabaseFileGone


def _rows(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT x FROM t ORDER BY x")]


async def _insert(pool: ConnectionPool, value: int) -> None:
    await pool.run_transaction(lambda raw: raw.execute("INSERT INTO t VALUES (?)", (value,)))


async def test_commits_stop_while_the_file_is_gone_and_resume_once_it_is_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "raid.db"
    pool = ConnectionPool(str(path), synchronous="FULL", readers=1, busy_timeout_ms=100)
    await pool.open()
    try:
        async with pool.transaction() as conn:
            await conn.execute("CREATE TABLE t (x INTEGER)")
        await _insert(pool, 1)
        saved = tmp_path / "raid.db.saved"
        os.link(path, saved)
        path.unlink()  # an operator's mistake: the name is gone, the inode lives on
        with pytest.raises(DatabaseFileGone, match="was removed"):
            await _insert(pool, 2)
        with pytest.raises(DatabaseFileGone):
            async with pool.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (3)")
        os.link(saved, path)  # the fault is gone: the same file is back under its name
        await _insert(pool, 4)
    finally:
        await pool.close()
    assert _rows(path) == [1, 4]


async def test_a_file_copied_over_the_open_one_takes_no_commit(tmp_path: Path) -> None:
    path = tmp_path / "raid.db"
    pool = ConnectionPool(str(path), synchronous="FULL", readers=1, busy_timeout_ms=100)
    await pool.open()
    try:
        async with pool.transaction() as conn:
            await conn.execute("CREATE TABLE t (x INTEGER)")
        other = tmp_path / "other.db"
        shutil.copy(path, other)
        os.replace(other, path)
        with pytest.raises(DatabaseFileGone, match="replaced"):
            await _insert(pool, 1)
    finally:
        await pool.close()
