"""Messages from the loop to one threaded actor, one crossing per loop iteration.

Every message sent to a RaidActor from the loop (PlayerActors forwarding strikes, the service
asking for a hub view) goes through the raid's ``BatchSender``: messages sent during one loop
iteration leave together as one ``Batch`` in the next, so waking the raid's thread is paid once
per batch, not once per strike. Order is kept: the actor handles a batch's messages one at a
time, in order, exactly as if each had been told on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.inbox import INBOX_FULL_RETRY_AFTER_S, InboxFull
from raid.errors import Overloaded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages for one actor, oldest first."""

    messages: tuple[Any, ...]


class BatchSender:
    """Collects messages on the loop thread and tells them to ``ref`` as one ``Batch``."""

    def __init__(
        self,
        ref: pykka.ActorRef[Any],
        loop: asyncio.AbstractEventLoop,
        on_dead: Callable[[Any], None],
    ) -> None:
        self.ref = ref  # the actor the batches go to
        self.loop = loop  # the loop whose iterations delimit batches
        self.on_dead = on_dead  # answers a message the actor can no longer take
        self._pending: list[Any] = []  # sent during this iteration
        self._scheduled = False  # a flush is queued on the loop
        self.batches = 0  # batches told (metrics, benchmarks)

    def send(self, message: Any) -> None:
        """Queue a message for the actor (loop thread only; never blocks, never raises)."""
        self._pending.append(message)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._scheduled = False
        if not batch:
            return
        while batch:
            try:
                self.ref.tell(Batch(tuple(batch)))
                self.batches += 1
                return
            except InboxFull as full:
                room = full.limit - full.queued  # a batch bigger than the room: admit what fits
                if room <= 0 or room >= len(batch):
                    shed(batch, full)
                    return
                shed(batch[room:], full)
                batch = batch[:room]
            except pykka.ActorDeadError:
                for message in batch:
                    self.on_dead(message)
                return


def shed(batch: list[Any], full: InboxFull) -> None:
    """The actor's inbox is at its bound: answer the batch ``unavailable`` + ``retry_after``.
    Nothing was queued, so nothing changes; messages without a reply (none are sent from the
    loop today) are dropped and logged."""
    error = Overloaded(f"the raid is busy ({full}); try again", INBOX_FULL_RETRY_AFTER_S)
    for message in batch:
        reply = getattr(message, "reply", None)
        if reply is not None:
            reply.fail(error)
        else:
            log.warning("raid inbox full: dropped %s", type(message).__name__)
