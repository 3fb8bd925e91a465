"""Per-raid leaderboards by personal damage and personal analysis (RULES.md, "Leaderboard").

Ties rank by who reached the total first: the order is ``(-total, seq at which the total was
reached)``, packed into one integer (comparing ints is several times cheaper than comparing
tuples). The pair is unique per board: the strike with that seq raised one player's total only.
Only players with a positive total are ranked. A ``SortedList`` keeps both boards so that a
strike costs O(log n) and a player's rank is a bisection, even with 100,000 players.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from sortedcontainers import SortedList

from raid.models import PlayerRaidState

SEQ_BITS = 48
"""A raid never reaches 2**48 strikes."""


def _key(total: int, seq: int) -> int:
    return (-total << SEQ_BITS) + seq


@dataclass(frozen=True, slots=True)
class Entry:
    user_id: str
    value: int


class Board:
    """One ranking."""

    def __init__(self) -> None:
        self._keys: SortedList = SortedList()  # of _key(total, seq), best first
        self._users: dict[int, str] = {}  # key -> the player it ranks

    def __len__(self) -> int:
        return len(self._keys)

    def update(self, user_id: str, old: tuple[int, int], new: tuple[int, int]) -> None:
        """Move ``user_id`` from total/seq ``old`` to ``new``."""
        if old == new:
            return
        if old[0] > 0:
            key = _key(*old)
            self._keys.remove(key)
            del self._users[key]
        if new[0] > 0:
            key = _key(*new)
            self._keys.add(key)
            self._users[key] = user_id

    def top(self, n: int) -> list[Entry]:
        return [Entry(self._users[key], -(key >> SEQ_BITS)) for key in islice(self._keys, n)]

    def rank(self, user_id: str, total: int, seq: int) -> int | None:
        """1-based rank of a player with this total, or None if unranked (total 0)."""
        if total <= 0:
            return None
        return int(self._keys.bisect_left(_key(total, seq))) + 1


class Leaderboards:
    """Both rankings of one raid."""

    def __init__(self) -> None:
        self.damage = Board()  # by personal_damage
        self.analysis = Board()  # by personal_analysis

    @classmethod
    def of(cls, players: Iterable[PlayerRaidState]) -> Leaderboards:
        boards = cls()
        for player in players:
            boards.update(player, (0, 0), (0, 0))
        return boards

    def update(
        self, player: PlayerRaidState, old_damage: tuple[int, int], old_analysis: tuple[int, int]
    ) -> None:
        """Re-rank ``player`` whose totals were ``old_damage`` / ``old_analysis`` (total, seq)."""
        user = player.user_id
        self.damage.update(user, old_damage, (player.personal_damage, player.damage_seq))
        self.analysis.update(user, old_analysis, (player.personal_analysis, player.analysis_seq))

    def ranks(self, player: PlayerRaidState) -> tuple[int | None, int | None]:
        return (
            self.damage.rank(player.user_id, player.personal_damage, player.damage_seq),
            self.analysis.rank(player.user_id, player.personal_analysis, player.analysis_seq),
        )
