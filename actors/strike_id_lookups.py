"""Journal lookups of strike_ids that may be older repeats, batched per raid.

A player keeps its latest strike_ids in memory and a bounded filter of older ones
(``raid/strike_ids.py``); an id the filter may have seen is a repeat or a false positive,
and only the journal's ``(raid_id, user_id, strike_id)`` index can tell. The filter's false
positives grow with a player's strikes (it is bounded, the ids are not), so on a long raid
many new strikes need this lookup. One read per strike waited for the GIL at each step of
the reader's thread under load; here every lookup wanted while a read is under way joins
the next read of its raid (up to ``MAX_STRIKE_IDS_PER_READ``), which returns one row.
"""

from __future__ import annotations

import asyncio
import itertools

from persistence.database import MAX_STRIKE_IDS_PER_READ, Database

Key = tuple[str, str]
"""(user_id, strike_id)"""


class StrikeIdLookups:
    """Batched ``find_strike_ids`` reads (loop thread only)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queued: dict[str, dict[Key, asyncio.Future[int | None]]] = {}  # per raid
        self._reader: asyncio.Task[None] | None = None
        self.reads = 0  # database reads made (tests: batching)

    async def seq_of(self, raid_id: str, user_id: str, strike_id: str) -> int | None:
        """The seq of the journaled strike with this strike_id, or None if there is none."""
        raid = self._queued.setdefault(raid_id, {})
        key = (user_id, strike_id)
        future = raid.get(key)
        if future is None:
            future = raid[key] = asyncio.get_running_loop().create_future()
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="strike-id-lookups")
        # Shielded: a caller that gives up must not cancel the others waiting for this read.
        return await asyncio.shield(future)

    async def _read(self) -> None:
        try:
            while self._queued:
                raid_id = next(iter(self._queued))
                raid = self._queued[raid_id]
                keys = list(itertools.islice(raid, MAX_STRIKE_IDS_PER_READ))
                batch = {key: raid.pop(key) for key in keys}
                if not raid:
                    del self._queued[raid_id]
                self.reads += 1
                try:
                    found = await self.db.find_strike_ids(raid_id, keys)
                except Exception as exc:  # noqa: BLE001 - each waiter gets it; the reader goes on
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: a waiter may have given up
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found.get(key))
        finally:
            self._reader = None
            for raid in self._queued.values():  # cancelled with the loop: nobody hangs
                for future in raid.values():
                    future.cancel()
            self._queued.clear()
