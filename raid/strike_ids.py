"""Which strike_ids a player has used, in memory bounded by configuration.

A player keeps the seq of its latest ``window`` strike_ids exactly (a dict, oldest first).
An id pushed out of the window goes into a fixed-size Bloom filter (``FILTER_BITS`` bits, three
bits per id from a stable hash). A strike_id in the window is a known repeat; one the filter has
never seen is surely new (a Bloom filter has no false negatives); one it may have seen is an
older repeat or a false positive, and only the journal can tell (its
``(raid_id, user_id, strike_id)`` index). So memory stays ``window`` ids + ``FILTER_BITS`` bits
per player whatever the number of strikes, and the journal is read only for possible repeats:
about 2 % of a player's new strikes after 300 evicted ids, a third after 1,000.
"""

from __future__ import annotations

import hashlib

from raid.models import EVICTED_FILTER_BYTES, PlayerRaidState

FILTER_BITS = EVICTED_FILTER_BYTES * 8
"""Bits of a player's filter of evicted strike_ids (a power of two)."""

_MASK = FILTER_BITS - 1


def _bits(strike_id: str) -> tuple[int, int, int]:
    digest = int.from_bytes(hashlib.blake2b(strike_id.encode(), digest_size=8).digest(), "little")
    return digest & _MASK, (digest >> 16) & _MASK, (digest >> 32) & _MASK


def remember(player: PlayerRaidState, strike_id: str, seq: int, window: int | None) -> None:
    """Record an accepted strike's id; with a window, older ids move to the filter."""
    strike_ids = player.strike_ids
    strike_ids[strike_id] = seq
    if window is None:
        return
    while len(strike_ids) > window:
        oldest = next(iter(strike_ids))
        del strike_ids[oldest]
        evicted = player.evicted_ids
        for bit in _bits(oldest):
            evicted[bit >> 3] |= 1 << (bit & 7)


def maybe_older_repeat(player: PlayerRaidState, strike_id: str) -> bool:
    """Whether ``strike_id`` (not in the window) may be an evicted one: ask the journal."""
    if strike_id in player.strike_ids or not any(player.evicted_ids):
        return False
    evicted = player.evicted_ids
    return all(evicted[bit >> 3] & (1 << (bit & 7)) for bit in _bits(strike_id))
