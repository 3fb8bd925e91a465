"""JournalWriter: group commit, durability before acknowledgement, failure isolation."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from persistence.database import Database
from persistence.errors import JournalWriteFailed
from persistence.journal import JournalEntry, JournalWriter
from tests.persistence.helpers import TIMEOUT, grant, raid_row, strike

RAID_A = "raid-a"
RAID_B = "raid-b"


@dataclass
class Recorder:
    """Callbacks and observer of a JournalWriter, recording what they are told."""

    committed: list[list[JournalEntry]] = field(default_factory=list)
    failures: list[tuple[set[str], BaseException]] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    failed_batch_sizes: list[int] = field(default_factory=list)

    def on_committed(self, batch: list[JournalEntry]) -> None:
        self.committed.append(batch)

    def on_failed(self, raids: set[str], exc: BaseException) -> None:
        self.failures.append((raids, exc))

    def batch_committed(self, size: int, seconds: float) -> None:
        assert seconds >= 0
        self.batch_sizes.append(size)

    def batch_failed(self, size: int) -> None:
        self.failed_batch_sizes.append(size)

    def make_writer(self, db: Database, max_batch: int = 2000) -> JournalWriter:
        return JournalWriter(
            db,
            max_batch=max_batch,
            on_committed=self.on_committed,
            on_failed=self.on_failed,
            observer=self,
        )


def entry(raid_id: str, seq: int, generation: int = 1, *, result_json: str = "{}") -> JournalEntry:
    return JournalEntry(
        raid_id=raid_id,
        generation=generation,
        record=strike(raid_id, seq, result_json=result_json),
        payload=("event", raid_id, seq),
    )


def rows_on_disk(db_path: Path, raid_id: str) -> tuple[int, int]:
    """(strike rows, reward rows) of the raid, read through a brand-new connection."""
    conn = sqlite3.connect(db_path)
    try:
        (strikes,) = conn.execute(
            "SELECT count(*) FROM raid_strike_logs WHERE raid_id = ?", (raid_id,)
        ).fetchone()
        (rewards,) = conn.execute(
            "SELECT count(*) FROM raid_reward_claims WHERE raid_id = ?", (raid_id,)
        ).fetchone()
    finally:
        conn.close()
    return int(strikes), int(rewards)


async def wait_all(
    writer: JournalWriter, entries: list[JournalEntry]
) -> list[BaseException | None]:
    """How each entry ended: None if committed, else the exception."""
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(writer.wait(e) for e in entries), return_exceptions=True), TIMEOUT
    )
    return [o if isinstance(o, BaseException) else None for o in outcomes]


@pytest.fixture
async def raids(db: Database) -> list[str]:
    for raid_id in (RAID_A, RAID_B):
        await db.create_boss_raid(raid_row(raid_id))
    return [RAID_A, RAID_B]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def writer(
    db: Database, raids: list[str], recorder: Recorder
) -> AsyncIterator[JournalWriter]:
    journal = recorder.make_writer(db)
    journal.start()
    try:
        yield journal
    finally:
        await asyncio.wait_for(journal.stop(), TIMEOUT)


@pytest.fixture
def blocker(db_path: Path) -> Iterator[sqlite3.Connection]:
    """Another real connection to the file, closed after the test."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


async def test_wait_returns_once_the_entry_is_readable_by_a_new_connection(
    writer: JournalWriter, recorder: Recorder, db_path: Path
) -> None:
    entries = [entry(RAID_A, seq) for seq in (1, 2, 3)]
    for e in entries:
        writer.submit(e)
    assert writer.pending_count == 3
    for e in entries:
        await asyncio.wait_for(writer.wait(e), TIMEOUT)
        assert rows_on_disk(db_path, RAID_A)[0] >= e.record.seq  # type: ignore[union-attr]
    assert rows_on_disk(db_path, RAID_A) == (3, 3)
    assert [e.payload for batch in recorder.committed for e in batch] == [
        ("event", RAID_A, 1),
        ("event", RAID_A, 2),
        ("event", RAID_A, 3),
    ]
    assert (writer.committed_count, writer.pending_count) == (3, 0)


async def test_claims_are_journaled_too(
    writer: JournalWriter, db: Database, recorder: Recorder
) -> None:
    claim = JournalEntry(RAID_B, 1, grant(RAID_B, "u1", "victory"))
    writer.submit(entry(RAID_B, 1))
    writer.submit(claim)
    await asyncio.wait_for(writer.wait(claim), TIMEOUT)
    assert [g.key for g in await db.get_claims(RAID_B)] == ["strike:s1", "victory"]


async def test_a_thousand_entries_at_once_share_few_transactions(
    writer: JournalWriter, recorder: Recorder, db: Database
) -> None:
    entries = [entry(RAID_A if n % 2 else RAID_B, n // 2 + 1) for n in range(1000)]
    for e in entries:
        writer.submit(e)
    assert await wait_all(writer, entries) == [None] * 1000
    assert sum(recorder.batch_sizes) == 1000
    assert len(recorder.batch_sizes) <= 3
    assert [e for batch in recorder.committed for e in batch] == entries
    assert [r.seq for r in await db.get_raid_strike_logs_by_raid(RAID_A)] == list(range(1, 501))


async def test_batches_grow_while_a_commit_is_in_flight(
    writer: JournalWriter, recorder: Recorder
) -> None:
    next_seq = {RAID_A: 0, RAID_B: 0}

    async def submitter(raid_id: str) -> None:
        for _ in range(5):
            next_seq[raid_id] += 1
            e = entry(raid_id, next_seq[raid_id])
            writer.submit(e)
            await writer.wait(e)

    await asyncio.wait_for(
        asyncio.gather(*(submitter(RAID_A if n % 2 else RAID_B) for n in range(200))), TIMEOUT
    )
    assert sum(recorder.batch_sizes) == 1000
    assert len(recorder.batch_sizes) <= 50  # one transaction per strike would be 1000
    assert max(recorder.batch_sizes) >= 100


async def test_max_batch_bounds_each_transaction(
    db: Database, raids: list[str], recorder: Recorder, db_path: Path
) -> None:
    writer = recorder.make_writer(db, max_batch=100)
    entries = [entry(RAID_A, seq) for seq in range(1, 1001)]
    for e in entries:
        writer.submit(e)
    writer.start()
    await asyncio.wait_for(writer.stop(), TIMEOUT)
    assert recorder.batch_sizes == [100] * 10
    assert [e for batch in recorder.committed for e in batch] == entries
    assert rows_on_disk(db_path, RAID_A) == (1000, 1000)


async def test_a_full_disk_fails_the_batch_and_poisons_only_its_raid(
    db: Database, raids: list[str], recorder: Recorder, db_path: Path
) -> None:
    writer = recorder.make_writer(db, max_batch=1)
    writer.start()
    try:
        warm_up = entry(RAID_B, 1)
        writer.submit(warm_up)
        await asyncio.wait_for(writer.wait(warm_up), TIMEOUT)
        with sqlite3.connect(db_path) as conn:
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.close()
        await db.set_max_page_count(pages + 30)  # room for small entries, not for 1 MB

        too_big = entry(RAID_A, 1, result_json='"' + "x" * 1_000_000 + '"')
        behind_it = entry(RAID_A, 2)
        other_raid = entry(RAID_B, 2)
        for e in (too_big, behind_it, other_raid):
            writer.submit(e)
        big_error, behind_error, other_error = await wait_all(
            writer, [too_big, behind_it, other_raid]
        )

        assert isinstance(big_error, JournalWriteFailed)
        assert "database or disk is full" in str(big_error)
        assert isinstance(behind_error, JournalWriteFailed)
        assert "poisoned" in str(behind_error)
        assert other_error is None
        assert [(raids, type(exc)) for raids, exc in recorder.failures] == [
            ({RAID_A}, sqlite3.OperationalError)
        ]
        assert recorder.failed_batch_sizes == [1]
        assert rows_on_disk(db_path, RAID_A) == (0, 0)  # nothing partial
        assert rows_on_disk(db_path, RAID_B) == (2, 2)
        assert writer.is_poisoned(RAID_A)
        assert not writer.is_poisoned(RAID_B)

        late = entry(RAID_A, 1)
        writer.submit(late)
        assert late.future is not None
        assert late.future.done()  # refused at once, without touching the database
        with pytest.raises(JournalWriteFailed, match="poisoned"):
            await writer.wait(late)

        writer.reopen_raid(RAID_A, 2)
        retried = entry(RAID_A, 1, generation=2)
        writer.submit(retried)
        await asyncio.wait_for(writer.wait(retried), TIMEOUT)
        assert rows_on_disk(db_path, RAID_A) == (1, 1)
    finally:
        await asyncio.wait_for(writer.stop(), TIMEOUT)


async def test_a_locked_database_fails_cleanly_and_the_writer_survives(
    db_path: Path, recorder: Recorder, blocker: sqlite3.Connection
) -> None:
    async with Database(db_path, busy_timeout_ms=100) as db:
        for raid_id in (RAID_A, RAID_B):
            await db.create_boss_raid(raid_row(raid_id))
        writer = recorder.make_writer(db)
        writer.start()
        try:
            blocker.execute("BEGIN IMMEDIATE")
            blocked = entry(RAID_A, 1)
            writer.submit(blocked)
            with pytest.raises(JournalWriteFailed, match="database is locked"):
                await asyncio.wait_for(writer.wait(blocked), TIMEOUT)
            blocker.execute("ROLLBACK")

            flowing = entry(RAID_B, 1)
            writer.submit(flowing)
            await asyncio.wait_for(writer.wait(flowing), TIMEOUT)
            assert rows_on_disk(db_path, RAID_B) == (1, 1)
            assert rows_on_disk(db_path, RAID_A) == (0, 0)

            writer.reopen_raid(RAID_A, 2)
            again = entry(RAID_A, 1, generation=2)
            writer.submit(again)
            await asyncio.wait_for(writer.wait(again), TIMEOUT)
            assert rows_on_disk(db_path, RAID_A) == (1, 1)
        finally:
            await asyncio.wait_for(writer.stop(), TIMEOUT)


async def test_a_constraint_violation_poisons_only_the_guilty_raid(
    writer: JournalWriter, recorder: Recorder, db_path: Path
) -> None:
    first = entry(RAID_A, 1)
    writer.submit(first)
    await asyncio.wait_for(writer.wait(first), TIMEOUT)

    duplicate = entry(RAID_A, 1)  # seq 1 is already journaled
    innocent = [entry(RAID_B, 1), entry(RAID_B, 2)]
    for e in (innocent[0], duplicate, innocent[1]):
        writer.submit(e)
    outcomes = await wait_all(writer, [innocent[0], duplicate, innocent[1]])

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], JournalWriteFailed)
    assert "UNIQUE constraint failed" in str(outcomes[1])
    assert [raids for raids, _ in recorder.failures] == [{RAID_A}]
    assert rows_on_disk(db_path, RAID_B) == (2, 2)
    assert rows_on_disk(db_path, RAID_A) == (1, 1)


async def test_generations_decide_what_a_poisoned_raid_accepts(
    writer: JournalWriter, db_path: Path
) -> None:
    ghost = JournalEntry(RAID_A, 3, strike("no-such-raid", 1))  # fails: unknown raid
    writer.submit(ghost)
    with pytest.raises(JournalWriteFailed, match="FOREIGN KEY"):
        await asyncio.wait_for(writer.wait(ghost), TIMEOUT)

    for generation in (2, 3):
        stale = entry(RAID_A, 1, generation)
        writer.submit(stale)
        with pytest.raises(JournalWriteFailed, match="poisoned"):
            await writer.wait(stale)
    with pytest.raises(ValueError, match="newer generation"):
        writer.reopen_raid(RAID_A, 3)

    writer.reopen_raid(RAID_A, 5)
    retired = entry(RAID_A, 1, generation=4)
    writer.submit(retired)
    with pytest.raises(JournalWriteFailed, match="generation 4 is retired"):
        await writer.wait(retired)
    current = entry(RAID_A, 1, generation=5)
    writer.submit(current)
    await asyncio.wait_for(writer.wait(current), TIMEOUT)
    assert rows_on_disk(db_path, RAID_A) == (1, 1)


async def test_stop_commits_what_was_submitted_and_refuses_the_rest(
    db: Database, raids: list[str], recorder: Recorder, db_path: Path
) -> None:
    writer = recorder.make_writer(db)
    entries = [entry(RAID_A, seq) for seq in range(1, 51)]
    for e in entries:
        writer.submit(e)
    await asyncio.wait_for(writer.stop(), TIMEOUT)  # never started: stop() still drains
    assert await wait_all(writer, entries) == [None] * 50
    assert rows_on_disk(db_path, RAID_A) == (50, 50)

    late = entry(RAID_A, 51)
    writer.submit(late)
    with pytest.raises(JournalWriteFailed, match="stopped"):
        await writer.wait(late)
    with pytest.raises(RuntimeError, match="already started"):
        writer.start()


async def test_a_failing_callback_does_not_stop_the_writer(
    db: Database, raids: list[str], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(batch: list[JournalEntry]) -> None:
        raise RuntimeError("subscriber bug")

    writer = JournalWriter(db, on_committed=explode, on_failed=lambda raids, exc: None)
    writer.start()
    try:
        for seq in (1, 2):
            e = entry(RAID_A, seq)
            writer.submit(e)
            await asyncio.wait_for(writer.wait(e), TIMEOUT)
    finally:
        await asyncio.wait_for(writer.stop(), TIMEOUT)
    assert rows_on_disk(db_path, RAID_A) == (2, 2)
    assert "on_committed raised" in caplog.text


class ExplodingObserver:
    def batch_committed(self, size: int, seconds: float) -> None:
        raise RuntimeError("metrics bug")

    def batch_failed(self, size: int) -> None:
        raise RuntimeError("metrics bug")


async def test_a_failing_observer_does_not_stop_the_writer(
    db: Database, raids: list[str], db_path: Path
) -> None:
    writer = JournalWriter(
        db,
        on_committed=lambda batch: None,
        on_failed=lambda raids, exc: None,
        observer=ExplodingObserver(),
    )
    writer.start()
    try:
        bad, good = JournalEntry("ghost", 1, strike("ghost", 1)), entry(RAID_A, 1)
        writer.submit(bad)
        with pytest.raises(JournalWriteFailed):
            await asyncio.wait_for(writer.wait(bad), TIMEOUT)
        writer.submit(good)
        await asyncio.wait_for(writer.wait(good), TIMEOUT)
    finally:
        await asyncio.wait_for(writer.stop(), TIMEOUT)
    assert rows_on_disk(db_path, RAID_A) == (1, 1)


async def test_an_invalid_record_poisons_only_its_raid(
    writer: JournalWriter, recorder: Recorder, db_path: Path
) -> None:
    stray = strike(RAID_A, 1)
    invalid = JournalEntry(
        RAID_A, 1, dataclasses.replace(stray, grant=grant(RAID_A, "someone-else", "strike:x"))
    )
    valid = entry(RAID_B, 1)
    writer.submit(invalid)
    writer.submit(valid)
    outcomes = await wait_all(writer, [invalid, valid])
    assert isinstance(outcomes[0], JournalWriteFailed)
    assert outcomes[1] is None
    assert [raids for raids, _ in recorder.failures] == [{RAID_A}]
    assert rows_on_disk(db_path, RAID_B) == (1, 1)


async def test_an_integer_sqlite_cannot_hold_poisons_only_its_raid(
    writer: JournalWriter, recorder: Recorder, db_path: Path
) -> None:
    """A score between 2**63 and 2**64 made sqlite3 raise OverflowError for the whole batch,
    failing every raid in it (issue 9, item 11)."""
    huge = JournalEntry(RAID_A, 1, dataclasses.replace(strike(RAID_A, 1), score=2**63))
    valid = entry(RAID_B, 1)
    writer.submit(huge)
    writer.submit(valid)
    outcomes = await wait_all(writer, [huge, valid])
    assert isinstance(outcomes[0], JournalWriteFailed)
    assert outcomes[1] is None
    assert [raids for raids, _ in recorder.failures] == [{RAID_A}]
    assert rows_on_disk(db_path, RAID_B) == (1, 1)


async def test_a_cancelled_writer_fails_what_it_holds(db: Database, raids: list[str]) -> None:
    writer = Recorder().make_writer(db)
    entries = [entry(RAID_A, seq) for seq in (1, 2)]
    for e in entries:
        writer.submit(e)
    writer.start()
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "journal-writer"]
    task.cancel()  # before it ever ran: nothing it held may hang
    outcomes = await wait_all(writer, entries)
    assert all(isinstance(o, JournalWriteFailed) for o in outcomes)
    assert writer.pending_count == 0
    late = entry(RAID_A, 3)
    writer.submit(late)
    with pytest.raises(JournalWriteFailed, match="stopped"):
        await writer.wait(late)
    with pytest.raises(asyncio.CancelledError):
        await writer.stop()


async def test_cancelling_a_waiter_does_not_cancel_the_write(
    writer: JournalWriter, db_path: Path
) -> None:
    e = entry(RAID_A, 1)
    writer.submit(e)
    waiting = asyncio.Event()

    async def wait_for_it() -> None:
        waiting.set()
        await writer.wait(e)

    waiter = asyncio.create_task(wait_for_it())
    await asyncio.wait_for(waiting.wait(), TIMEOUT)  # the waiter is now inside wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(writer.wait(e), TIMEOUT)
    assert rows_on_disk(db_path, RAID_A) == (1, 1)


async def test_wait_needs_a_submitted_entry(writer: JournalWriter) -> None:
    with pytest.raises(ValueError, match="never submitted"):
        await writer.wait(entry(RAID_A, 1))


def test_max_batch_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        JournalWriter(
            Database(tmp_path / "x.db"),
            max_batch=0,
            on_committed=lambda batch: None,
            on_failed=lambda raids, exc: None,
        )
