"""Journal lookups of strike_ids that may be older repeats, batched per raid.

A player keeps its latest strike_ids in memory and a bounded filter of older ones
(``raid/strike_ids.py``); an id the filter may have seen is a repeat or a false positive,
and only the journal's ``(raid_id, user_id, strike_id)`` index can tell. The filter's false
positives grow with a player's strikes (it is bounded, the ids are not), so on a long raid
many new strikes need this lookup. One read per strike waited for the GIL at each step of
the reader's thread under load; here (``actors/read_batches.py``) every lookup wanted while
a read is under way joins the next read of its raid (up to ``MAX_STRIKE_IDS_PER_READ``),
which returns one row.
"""

from __future__ import annotations

from actors.read_batches import ReadBatches
from persistence.database import MAX_STRIKE_IDS_PER_READ, Database

Key = tuple[str, str]
"""(user_id, strike_id)"""


class StrikeIdLookups:
    """Batched ``find_strike_ids`` reads (loop thread only)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._reads: ReadBatches[str, Key, int | None] = ReadBatches(
            self._read, MAX_STRIKE_IDS_PER_READ, "strike-id-lookups"
        )

    @property
    def reads(self) -> int:
        """Database reads made (tests: batching)."""
        return self._reads.reads

    async def seq_of(self, raid_id: str, user_id: str, strike_id: str) -> int | None:
        """The seq of the journaled strike with this strike_id, or None if there is none."""
        return await self._reads.get(raid_id, (user_id, strike_id))

    async def _read(self, raid_id: str, keys: list[Key]) -> dict[Key, int | None]:
        found = await self.db.find_strike_ids(raid_id, keys)
        return {key: found.get(key) for key in keys}
