"""Players' rosters as the rules see them, read from the database and kept in a bounded LRU.

Reads are batched (``actors/read_batches.py``): every roster wanted while a read is under way
is fetched by the next read, up to ``MAX_USERS_PER_READ`` at once, in one row; one read per
player made cold players' first strikes wait seconds under load (1,000 players after a
restart each queued a read).
"""

from __future__ import annotations

from collections import OrderedDict

from actors.raids import SharedParts, roster_of
from actors.read_batches import ReadBatches
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
        self._reads: ReadBatches[None, str, Roster] = ReadBatches(
            self._read, MAX_USERS_PER_READ, "roster-reads", keep=self._keep
        )

    def __len__(self) -> int:
        return len(self._rosters)

    @property
    def reads(self) -> int:
        """Database reads made (tests: batching)."""
        return self._reads.reads

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
        return await self._reads.get(None, user_id)

    def forget(self, user_id: str) -> None:
        """The roster changed (a grant committed): read it again on next use."""
        self._rosters.pop(user_id, None)
        self._reads.detach(None, user_id)

    async def _read(self, _: None, users: list[str]) -> dict[str, Roster]:
        found = await self.db.get_users_characters(users)
        shared = SharedParts()  # the batch's rosters share equal names, stats and tags
        return {user_id: roster_of(found[user_id], shared) for user_id in users}

    def _keep(self, user_id: str, roster: Roster) -> None:
        self._rosters[user_id] = roster
        self._rosters.move_to_end(user_id)
        if len(self._rosters) > self.size:
            self._rosters.popitem(last=False)
