"""Players' rosters as the rules see them, read from the database and kept in a bounded LRU."""

from __future__ import annotations

from collections import OrderedDict

from actors.raids import roster_of
from persistence.database import Database
from raid.models import Roster


class RosterCache:
    """At most ``size`` rosters in memory, least recently used dropped first (loop thread).

    A read that was under way when the roster changed (``forget``, after a grant committed)
    may have read the old roster: it is answered, but not kept, or the cache would serve the
    old roster until it is evicted (``character_not_owned`` for the new characters).
    """

    def __init__(self, db: Database, size: int) -> None:
        self.db = db  # where rosters live
        self.size = size  # players kept at most ([actors] roster_cache)
        self._rosters: OrderedDict[str, Roster] = OrderedDict()  # user_id -> roster
        self._reading: dict[str, int] = {}  # user_id -> reads under way (loop-bounded)
        self._changed: set[str] = set()  # users forgotten while a read of theirs was under way

    def __len__(self) -> int:
        return len(self._rosters)

    def cached(self, user_id: str) -> Roster | None:
        """The roster if it is in memory (marked used), without awaiting anything."""
        roster = self._rosters.get(user_id)
        if roster is not None:
            self._rosters.move_to_end(user_id)
        return roster

    async def get(self, user_id: str) -> Roster:
        roster = self._rosters.get(user_id)
        if roster is not None:
            self._rosters.move_to_end(user_id)
            return roster
        self._reading[user_id] = self._reading.get(user_id, 0) + 1
        try:
            roster = roster_of(await self.db.get_user_characters(user_id))
        finally:
            stale = user_id in self._changed
            left = self._reading.pop(user_id) - 1
            if left:
                self._reading[user_id] = left
            else:
                self._changed.discard(user_id)
        if not stale:
            self._rosters[user_id] = roster
            if len(self._rosters) > self.size:
                self._rosters.popitem(last=False)
        return roster

    def forget(self, user_id: str) -> None:
        """The roster changed (a grant committed): read it again on next use."""
        self._rosters.pop(user_id, None)
        if user_id in self._reading:
            self._changed.add(user_id)
