"""Actor inboxes: bounded, and emptied with an answer for everyone when the actor stops.

pykka answers leftover ``ask`` envelopes itself, but messages sent with ``tell`` carry our own
``Reply`` and would otherwise be dropped silently when the actor stops (``fail_pending``).
A RaidActor's inbox holds at most ``[actors] raid_inbox`` requests (``BoundedInbox``); one
more is refused with ``InboxFull`` and its caller answered ``unavailable`` + ``retry_after``.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import pykka
import pykka.messages

from actors.messages import Tick
from raid.errors import RaidError


def fail_pending(actor: pykka.Actor, error: RaidError) -> int:
    """Answer every message still queued for ``actor`` with ``error``; returns how many."""
    failed = 0
    inbox: Any = actor.actor_inbox
    while True:
        try:
            envelope = inbox.get_nowait()
        except queue.Empty:
            return failed
        if isinstance(envelope.message, pykka.messages._ActorStop):
            if envelope.reply_to is not None:
                envelope.reply_to.set(None)
            continue
        reply = getattr(envelope.message, "reply", None)
        if reply is not None:
            reply.fail(error)
            failed += 1
        if envelope.reply_to is not None:
            envelope.reply_to.set_exception(exc_info=(type(error), error, None))
            failed += 1


class InboxFull(pykka.ActorDeadError):
    """An actor's inbox is at its bound: the message was not queued.

    A subclass of ``ActorDeadError`` on purpose: every sender already answers a message an
    actor cannot take (``unavailable``, nothing changed), so a full inbox can never leave a
    caller waiting; senders that can say more catch ``InboxFull`` first (``Overloaded``,
    with ``retry_after``)."""

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(f"inbox full ({queued} messages queued, at most {limit})")
        self.queued = queued  # messages waiting when this one was refused
        self.limit = limit  # the bound ([actors] raid_inbox / player_inbox)


INBOX_FULL_RETRY_AFTER_S = 1.0
"""``retry_after`` of a request refused by a full inbox. Admission limits ([server]
max_in_flight*) shed load before inboxes fill; this is the second line of defence."""


def message_weight(message: Any) -> int:
    """How many requests a message stands for: a ``Batch`` its messages, control messages
    (stop, the clock's ``Tick``) none, so they always get in."""
    messages = getattr(message, "messages", None)
    if isinstance(messages, tuple):
        return len(messages)
    if isinstance(message, pykka.messages._ActorStop | Tick):
        return 0
    return 1


class BoundedInbox:
    """A thread-safe FIFO inbox for a ThreadingActor that holds at most ``limit`` requests
    (``message_weight``); ``put`` past it raises ``InboxFull`` instead of growing.

    pykka's ``queue.Queue`` with ``maxsize`` would block the sender, and the sender here is
    the event loop: refusing is the only safe answer. A ``queue.SimpleQueue`` (in C) holds
    the envelopes; a lock guards the count."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # requests queued at most
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _count
        self._count = 0  # requests queued now

    def __len__(self) -> int:
        return self._count

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        weight = message_weight(envelope.message)
        with self._lock:
            if weight and self._count + weight > self.limit:
                raise InboxFull(self._count, self.limit)
            self._count += weight
        self._queue.put(envelope)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        envelope = self._queue.get(block, timeout)
        weight = message_weight(envelope.message)
        if weight:
            with self._lock:
                self._count -= weight
        return envelope

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def empty(self) -> bool:
        return self._queue.empty()
