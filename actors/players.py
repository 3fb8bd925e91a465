"""The pool of live PlayerActors: started on demand, stopped when idle, bounded in number.

A PlayerActor runs on the loop's dispatcher (no thread of its own) and costs a few KiB, so the
pool may hold one per active player; ``max_live`` bounds memory only: starting one more stops
the least recently used. Its state lives in the RaidActor, so a stopped PlayerActor loses
nothing; it is rebuilt on the player's next request. Runs on the loop thread only.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pykka

from actors.batch_sender import BatchSender
from actors.loop_actor import LoopDispatcher
from actors.player_actor import Invalidate, PlayerActor
from raid.errors import Unavailable

log = logging.getLogger(__name__)

_Key = tuple[str, str]
_Entry = tuple[pykka.ActorRef[Any], float, BatchSender]  # actor, last used, raid inbox


class PlayerPool:
    def __init__(
        self,
        max_live: int,
        idle_s: float,
        safe_team_size: int,
        strike_id_window: int,
        on_count: Callable[[int], None] = lambda _count: None,
    ) -> None:
        self.max_live = max_live  # PlayerActors alive at most
        self.idle_s = idle_s  # idle time after which a PlayerActor is stopped
        self.safe_team_size = safe_team_size  # team size no team_cap curse can refuse
        self.strike_id_window = strike_id_window  # strike_ids each actor's cache keeps
        self.on_count = on_count  # reports the live count (metrics)
        self.dispatcher: LoopDispatcher | None = None  # runs the actors; set once the loop runs
        self._live: OrderedDict[_Key, _Entry] = OrderedDict()
        self._learned: dict[_Key, list[Any]] = {}  # outcomes to pass to a live PlayerActor
        self.started = 0  # PlayerActors started since boot
        self.evicted = 0  # PlayerActors stopped to respect max_live or idle_s

    def __len__(self) -> int:
        return len(self._live)

    def get(self, raid_id: str, user_id: str, raid: BatchSender) -> pykka.ActorRef[Any]:
        """The player's actor in that raid, bound to ``raid`` (the raid's current inbox),
        started if needed; marks it used now.

        An actor bound to another inbox served an earlier incarnation of the raid (started
        while it restarted, by a request that fetched the raid before the restart): it is
        replaced, or it would forward every later request of the player to a stopped actor.
        A request that brings a stopped raid's inbox is answered ``unavailable``.
        """
        key = (raid_id, user_id)
        entry = self._live.get(key)
        now = time.monotonic()
        if entry is not None:
            ref, _used, bound = entry
            if bound is raid and ref.is_alive():
                self._live[key] = (ref, now, bound)
                self._live.move_to_end(key)
                return ref
        if not raid.ref.is_alive():
            raise Unavailable(f"raid {raid_id} is restarting; try again")
        if entry is not None:
            self._drop(key)
        while len(self._live) >= self.max_live:
            self._stop_oldest()
        if self.dispatcher is None:
            raise RuntimeError("the player pool has no dispatcher yet")
        ref = PlayerActor.start(
            self.dispatcher, raid_id, user_id, raid, self.safe_team_size, self.strike_id_window
        )
        self._live[key] = (ref, now, raid)
        self.started += 1
        self.on_count(len(self._live))
        return ref

    def checkout(
        self, raid_id: str, user_id: str, raid: BatchSender
    ) -> tuple[pykka.ActorRef[Any], tuple[Any, ...]]:
        """``get``, plus the outcomes the actor has not seen yet (handed over once)."""
        ref = self.get(raid_id, user_id, raid)
        learned = self._learned.pop((raid_id, user_id), None)
        return ref, tuple(learned) if learned else ()

    def learn(self, raid_id: str, user_id: str, outcome: Any) -> None:
        """Keep an outcome for the player's live actor, to ride along its next request."""
        key = (raid_id, user_id)
        if key in self._live:
            self._learned.setdefault(key, []).append(outcome)

    def reap_idle(self) -> int:
        """Stop actors idle for longer than idle_s; returns how many."""
        deadline = time.monotonic() - self.idle_s
        stopped = 0
        while self._live:
            _key, (_ref, used, _raid) = next(iter(self._live.items()))
            if used > deadline:
                break
            self._stop_oldest()
            stopped += 1
        return stopped

    def invalidate_raid(self, raid_id: str) -> None:
        """The raid changed under the caches (status change): rebuild them on next use."""
        for (raid, _user), (ref, _used, _inbox) in self._live.items():
            if raid == raid_id:
                _tell(ref, Invalidate())

    def stop_raid(self, raid_id: str) -> None:
        """Stop every PlayerActor of a raid (the raid is restarting or gone)."""
        for key in [k for k in self._live if k[0] == raid_id]:
            self._drop(key)
        self.on_count(len(self._live))

    def stop_all(self) -> None:
        for ref, _used, _raid in self._live.values():
            ref.stop(block=False)
        self._live.clear()
        self._learned.clear()
        self.on_count(0)

    def _drop(self, key: _Key) -> None:
        ref, _used, _raid = self._live.pop(key)
        self._learned.pop(key, None)
        ref.stop(block=False)

    def _stop_oldest(self) -> None:
        key, (ref, _used, _raid) = self._live.popitem(last=False)
        self._learned.pop(key, None)
        ref.stop(block=False)
        self.evicted += 1
        self.on_count(len(self._live))


def _tell(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        log.debug("player actor already stopped")
