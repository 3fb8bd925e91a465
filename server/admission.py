"""Admission control: shed requests with ``unavailable`` + ``retry_after`` before queues grow.

Every request that reaches the raids (all but ``hello`` and ``ping``) takes a place when it
arrives and gives it back when its reply is sent. At most ``[server] max_in_flight`` requests
run at once in the whole server, ``max_in_flight_per_raid`` for one raid and
``max_in_flight_per_connection`` for one connection; one more is refused at once, before
anything is queued, with ``retry_after = overload_retry_after_s``. The last one keeps one
client (16 connections at most per user) from filling a raid's share alone: a client that
asks faster than it is answered, or does not read its answers, is refused early.

Why here and not deeper: a request refused at the door costs a reply and nothing else,
while one queued behind thousands of others waits for all of them, and so does every later
request of every player of that raid. A raid decides a few thousand strikes per second on
a small box (docs/benchmarks.md), so the per-raid default (4,000) keeps the worst queueing
delay near a second instead of letting it grow with the offered load.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from raid.errors import Overloaded


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_in_flight: int  # requests running at once, whole server
    max_in_flight_per_raid: int  # requests naming one raid running at once
    max_in_flight_per_connection: int  # requests of one connection running at once
    retry_after_s: float  # what a shed request is told


class Admission:
    """Counts requests in flight, per server and per raid (loop thread only)."""

    def __init__(
        self, limits: AdmissionLimits, on_shed: Callable[[str], None] = lambda _limit: None
    ) -> None:
        self.limits = limits
        self.on_shed = on_shed  # told the name of the limit that refused (metrics)
        self.in_flight = 0  # requests admitted and not yet answered
        self.per_raid: Counter[str] = Counter()  # the same, per raid_id (no zero entries)
        self.per_connection: Counter[str] = Counter()  # the same, per connection id
        self.shed = 0  # requests refused so far (tests, logs)

    def enter(self, raid_id: str | None, connection: str = "") -> Place:
        """Admit a request or raise ``Overloaded``; release the returned place when done."""
        limits = self.limits
        if self.per_connection[connection] >= limits.max_in_flight_per_connection:
            self.shed += 1
            self.on_shed("max_in_flight_per_connection")
            raise Overloaded(
                f"this connection has {self.per_connection[connection]} requests in flight "
                f"(at most {limits.max_in_flight_per_connection}); wait for their answers",
                limits.retry_after_s,
            )
        if self.in_flight >= limits.max_in_flight:
            self.shed += 1
            self.on_shed("max_in_flight")
            raise Overloaded(
                f"the server is busy ({self.in_flight} requests in flight); try again",
                limits.retry_after_s,
            )
        if raid_id is not None and self.per_raid[raid_id] >= limits.max_in_flight_per_raid:
            self.shed += 1
            self.on_shed("max_in_flight_per_raid")
            raise Overloaded(
                f"raid {raid_id} is busy ({self.per_raid[raid_id]} requests in flight); try again",
                limits.retry_after_s,
            )
        self.in_flight += 1
        self.per_connection[connection] += 1
        if raid_id is not None:
            self.per_raid[raid_id] += 1
        return Place(self, raid_id, connection)

    def _leave(self, raid_id: str | None, connection: str) -> None:
        self.in_flight -= 1
        _decrement(self.per_connection, connection)
        if raid_id is not None:
            _decrement(self.per_raid, raid_id)


def _decrement(counter: Counter[str], key: str) -> None:
    """One less; a key at zero is removed, so counters stay as small as what is in use."""
    left = counter[key] - 1
    if left:
        counter[key] = left
    else:
        del counter[key]


class Place:
    """One admitted request; ``release`` (idempotent) gives its place back."""

    __slots__ = ("_admission", "_connection", "_raid_id", "_released")

    def __init__(self, admission: Admission, raid_id: str | None, connection: str) -> None:
        self._admission = admission
        self._raid_id = raid_id
        self._connection = connection
        self._released = False

    def release(self, *_: object) -> None:
        """Also usable as a task's done callback."""
        if not self._released:
            self._released = True
            self._admission._leave(self._raid_id, self._connection)
