"""``JournalWriter``: durable group commit of journal entries, on the asyncio loop.

Raid actors post entries (a strike with its grant, or a claim) in seq order; the writer task
commits whatever is pending in one transaction per batch. While a commit is in flight new
entries accumulate, so under load each batch grows and the cost of ``synchronous=FULL`` (one
fsync per commit) is shared by the whole batch; when idle, a lone entry is committed at once.

A failed batch (disk full, database locked past busy_timeout, any error) is rolled back by
the database and every one of its entries fails with ``JournalWriteFailed``. Its raids are
then *poisoned*: their later entries depend on state that never reached the disk, so their
pending entries fail too, and new entries of the same or an older generation fail at once
until ``reopen_raid`` names the generation of the raid's new actor (restarted from durable
state). Other raids keep committing. The one exception is a constraint violation
(``sqlite3.IntegrityError``) in a batch mixing raids: it is one raid's fault, so the batch is
retried one raid per transaction and only the raids whose own transaction fails are poisoned
(likewise for a ``ValueError`` from the record checks).

Everything here runs on the event loop thread: actors reach ``submit`` through the bridge.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from persistence.database import Database
from persistence.errors import JournalWriteFailed
from persistence.records import RewardGrant, StrikeRecord

LOG = logging.getLogger(__name__)

# Errors caused by an entry's own content (a duplicate seq or key, an unknown raid, a grant
# that does not match its strike, an integer SQLite cannot hold): worth retrying the other
# raids of the batch without it.
_ENTRY_ERRORS = (sqlite3.IntegrityError, ValueError, OverflowError)


class JournalObserver(Protocol):
    """Receives batch metrics (the lead wires it to Prometheus)."""

    def batch_committed(self, size: int, seconds: float) -> None: ...

    def batch_failed(self, size: int) -> None: ...


@dataclass(slots=True, eq=False)
class JournalEntry:
    raid_id: str
    generation: int  # the raid actor incarnation that produced it
    record: StrikeRecord | RewardGrant | None  # a strike (with its grant) or a claim
    payload: object = None  # opaque for consumers of on_committed (events, results)
    future: asyncio.Future[None] | None = None  # set by submit()
    on_settled: Callable[[BaseException | None], None] | None = None
    """Called once, on the loop, when the entry is committed (None) or failed (the error):
    answering a caller this way costs no extra callback round through the loop."""

    def release(self) -> None:
        """Drop the row and the payload once committed: caches that keep the entry (repeated
        strike_ids) then hold only its future, not kilobytes of encoded row and events."""
        self.record = None
        self.payload = None
        self.on_settled = None


class JournalWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 2000,
        on_committed: Callable[[list[JournalEntry]], None],
        on_failed: Callable[[set[str], BaseException], None],
        observer: JournalObserver | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._db = db
        self._max_batch = max_batch  # bounds one transaction's size and commit latency
        self._on_committed = on_committed  # told of every committed batch, in commit order
        self._on_failed = on_failed  # told once per failed batch: the raids now poisoned
        self._observer = observer
        self._pending: deque[JournalEntry] = deque()  # submitted, not yet in a batch
        self._in_flight: list[JournalEntry] = []  # the batch being written
        self._wakeup = asyncio.Event()  # set by submit() and stop() for the writer task
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # stop() was called or the task ended: refuse new entries
        self._poisoned: dict[str, int] = {}  # raid_id -> newest generation whose entries fail
        self._min_generation: dict[str, int] = {}  # raid_id -> oldest generation accepted
        self._committed = 0

    @property
    def committed_count(self) -> int:
        """Entries committed since the writer was created."""
        return self._committed

    @property
    def pending_count(self) -> int:
        """Entries submitted and not yet committed or failed (including the batch in flight)."""
        return len(self._pending) + len(self._in_flight)

    def is_poisoned(self, raid_id: str) -> bool:
        return raid_id in self._poisoned

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the journal writer was already started")
        self._task = self._start_task()

    async def stop(self) -> None:
        """Commit everything already submitted, then end the writer task."""
        self._stopping = True
        task = self._task if self._task is not None else self._start_task()
        self._task = task
        self._wakeup.set()
        await task

    def _start_task(self) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._run(), name="journal-writer")
        task.add_done_callback(self._writer_ended)
        return task

    def submit(self, entry: JournalEntry) -> None:
        """Queue an entry without blocking; ``wait(entry)`` tells how it ended.

        A raid's entries are committed in submission order.
        """
        entry.future = asyncio.get_running_loop().create_future()
        refusal = "the journal writer is stopped" if self._stopping else self._refusal(entry)
        if refusal is not None:
            _fail_entry(entry, refusal)
            return
        self._pending.append(entry)
        self._wakeup.set()

    async def wait(self, entry: JournalEntry) -> None:
        """Return once the entry is committed; raise ``JournalWriteFailed`` if it never will be.

        Cancelling the waiter does not cancel the write.
        """
        if entry.future is None:
            raise ValueError("wait() on an entry that was never submitted")
        await asyncio.shield(entry.future)

    def reopen_raid(self, raid_id: str, generation: int) -> None:
        """Accept the raid's entries again, from ``generation`` on (older ones stay refused)."""
        poisoned = self._poisoned.get(raid_id)
        if poisoned is not None and generation <= poisoned:
            raise ValueError(
                f"raid {raid_id} was poisoned at generation {poisoned}; "
                f"reopen it with a newer generation, not {generation}"
            )
        self._poisoned.pop(raid_id, None)
        self._min_generation[raid_id] = max(self._min_generation.get(raid_id, 0), generation)
        self._fail_refused_pending()

    def _refusal(self, entry: JournalEntry) -> str | None:
        """Why the entry's raid no longer accepts it, if it does not."""
        poisoned = self._poisoned.get(entry.raid_id)
        if poisoned is not None and entry.generation <= poisoned:
            return (
                f"the raid was poisoned by a failed journal write (generation {poisoned}); "
                "it must be reopened from durable state"
            )
        minimum = self._min_generation.get(entry.raid_id)
        if minimum is not None and entry.generation < minimum:
            return f"generation {entry.generation} is retired (raid reopened at {minimum})"
        return None

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            count = min(self._max_batch, len(self._pending))
            self._in_flight = [self._pending.popleft() for _ in range(count)]
            await self._write(self._in_flight)
            self._in_flight = []

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """Cancelled (even before it ran) or crashed: fail what it held, so nobody hangs."""
        self._stopping = True
        if task.cancelled():
            reason = "the journal writer was cancelled"
        elif task.exception() is not None:
            reason = f"the journal writer crashed: {task.exception()!r}"
            LOG.error("journal: %s", reason, exc_info=task.exception())
        else:
            return
        for entry in (*self._in_flight, *self._pending):
            _fail_entry(entry, reason)
        self._in_flight = []
        self._pending.clear()

    async def _write(self, batch: list[JournalEntry]) -> None:
        error = await self._try_write(batch)
        if error is None:
            return
        by_raid = _group_by_raid(batch)
        if isinstance(error, _ENTRY_ERRORS) and len(by_raid) > 1:
            for group in by_raid.values():
                group_error = await self._try_write(group)
                if group_error is not None:
                    self._fail(group, group_error)
            return
        self._fail(batch, error)

    async def _try_write(self, batch: list[JournalEntry]) -> Exception | None:
        """Commit the batch in one transaction; on failure return the (logged) error."""
        started = time.perf_counter()
        try:
            await self._insert(batch)
        except Exception as exc:  # every error fails the batch: the writer must live on
            LOG.exception(
                "journal write of %d entries failed (raids %s)",
                len(batch),
                sorted({entry.raid_id for entry in batch}),
            )
            return exc
        self._commit(batch, time.perf_counter() - started)
        return None

    async def _insert(self, batch: list[JournalEntry]) -> None:
        strikes: list[StrikeRecord] = []
        claims: list[RewardGrant] = []
        for entry in batch:
            if isinstance(entry.record, StrikeRecord):
                strikes.append(entry.record)
            elif entry.record is not None:
                claims.append(entry.record)
            else:
                raise ValueError("a released journal entry was submitted again")
        await self._db.add_raid_strike_logs(strikes, claims)

    def _commit(self, batch: list[JournalEntry], seconds: float) -> None:
        self._committed += len(batch)
        for entry in batch:
            future = entry.future
            if future is not None and not future.done():
                future.set_result(None)
                settled = entry.on_settled
                if settled is not None:
                    try:  # as _notify does, without a partial per entry (one per strike)
                        settled(None)
                    except Exception:
                        LOG.exception("journal: on_settled raised; the journal writer goes on")
        observer = self._observer
        if observer is not None:
            _notify(
                "observer.batch_committed", lambda: observer.batch_committed(len(batch), seconds)
            )
        _notify("on_committed", lambda: self._on_committed(batch))

    def _fail(self, batch: list[JournalEntry], exc: Exception) -> None:
        raids = {entry.raid_id for entry in batch}
        reason = f"{type(exc).__name__}: {exc}"
        for entry in batch:
            _fail_entry(entry, reason)
            poisoned = self._poisoned.get(entry.raid_id, entry.generation)
            self._poisoned[entry.raid_id] = max(poisoned, entry.generation)
        before = len(self._pending)
        self._fail_refused_pending()
        LOG.warning(
            "journal: raids %s poisoned until reopened; %d pending entries failed with them",
            sorted(raids),
            before - len(self._pending),
        )
        observer = self._observer
        if observer is not None:
            _notify("observer.batch_failed", lambda: observer.batch_failed(len(batch)))
        _notify("on_failed", lambda: self._on_failed(raids, exc))

    def _fail_refused_pending(self) -> None:
        """Fail the pending entries that submit() would now refuse."""
        kept: deque[JournalEntry] = deque()
        for entry in self._pending:
            refusal = self._refusal(entry)
            if refusal is None:
                kept.append(entry)
            else:
                _fail_entry(entry, refusal)
        self._pending = kept


def _notify(name: str, callback: Callable[[], None]) -> None:
    """Run a consumer's callback; its bug is logged, never allowed to stop the writer."""
    try:
        callback()
    except Exception:
        LOG.exception("journal: %s raised; the journal writer goes on", name)


def _fail_entry(entry: JournalEntry, reason: str) -> None:
    if entry.future is not None and not entry.future.done():
        error = JournalWriteFailed(entry.raid_id, reason)
        entry.future.set_exception(error)
        entry.future.exception()  # retrieved: on_settled or a waiter reports it
        if entry.on_settled is not None:
            _notify("on_settled", partial(entry.on_settled, error))


def _group_by_raid(batch: Iterable[JournalEntry]) -> dict[str, list[JournalEntry]]:
    groups: dict[str, list[JournalEntry]] = {}
    for entry in batch:
        groups.setdefault(entry.raid_id, []).append(entry)
    return groups
