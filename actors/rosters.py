"""Players' rosters as the rules see them, read from the database and kept in a bounded LRU.

Reads are batched: every roster wanted while a read is under way is fetched by the next
read, up to ``MAX_USERS_PER_READ`` at once, in one row. Under load a database read waits for
the GIL at each step of its thread, so one read per player made cold players' first strikes
wait seconds (1,000 players after a restart each queued a read); one read per batch keeps that
to one crossing per loop of the reader.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict

from actors.raids import roster_of
from persistence.database import MAX_USERS_PER_READ, Database
from raid.models import Roster


class RosterCache:
    """At most ``size`` rosters in memory, least recently used dropped first (loop thread).

    A read that was under way when the roster changed (``forget``, after a grant committed)
    may have read the old roster: it is answered, but not kept, or the cache would serve the
    old roster until it is evicted (``character_not_owned`` for the new characters); a
    ``get`` after the ``forget`` waits for a read of its own.
    """

    def __init__(self, db: Database, size: int) -> None:
        self.db = db  # where rosters live
        self.size = size  # players kept at most ([actors] roster_cache)
        self._rosters: OrderedDict[str, Roster] = OrderedDict()  # user_id -> roster
        self._queued: dict[str, asyncio.Future[Roster]] = {}  # for the next read
        self._reading: dict[str, asyncio.Future[Roster]] = {}  # in the read under way
        self._changed: set[str] = set()  # forgotten while in the read under way
        self._reader: asyncio.Task[None] | None = None  # reads while anything is queued
        self.reads = 0  # database reads made (tests: batching)

    def __len__(self) -> int:
        return len(self._rosters)

    def cached(self, user_id: str) -> Roster | None:
        """The roster if it is in memory (marked used), without awaiting anything."""
        roster = self._rosters.get(user_id)
        if roster is not None:
            self._rosters.move_to_end(user_id)
        return roster

    async def get(self, user_id: str) -> Roster:
        roster = self.cached(user_id)
        if roster is not None:
            return roster
        future = self._reading.get(user_id) or self._queued.get(user_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._queued[user_id] = future
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="roster-reads")
        # Shielded: a caller that gives up must not cancel the others waiting for this read.
        return await asyncio.shield(future)

    def forget(self, user_id: str) -> None:
        """The roster changed (a grant committed): read it again on next use."""
        self._rosters.pop(user_id, None)
        if user_id in self._reading:
            self._changed.add(user_id)
            del self._reading[user_id]  # later gets queue a read of their own

    async def _read(self) -> None:
        try:
            while self._queued:
                users = list(itertools.islice(self._queued, MAX_USERS_PER_READ))
                batch = {user_id: self._queued.pop(user_id) for user_id in users}
                self._reading = dict(batch)
                self.reads += 1
                try:
                    found = await self.db.get_users_characters(users)
                except Exception as exc:  # noqa: BLE001 - each waiter gets it; the reader goes on
                    for future in batch.values():
                        _settle(future, exc)
                    continue
                finally:
                    self._reading = {}
                changed, self._changed = self._changed, set()
                for user_id, future in batch.items():
                    roster = roster_of(found[user_id])
                    if user_id not in changed:
                        self._keep(user_id, roster)
                    if not future.done():
                        future.set_result(roster)
        finally:
            self._reader = None
            for future in self._queued.values():  # cancelled with the loop: nobody hangs
                future.cancel()
            self._queued.clear()

    def _keep(self, user_id: str, roster: Roster) -> None:
        self._rosters[user_id] = roster
        self._rosters.move_to_end(user_id)
        if len(self._rosters) > self.size:
            self._rosters.popitem(last=False)


def _settle(future: asyncio.Future[Roster], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: a waiter that gave up must not log it as lost
