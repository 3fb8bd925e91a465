"""LoopActor: a pykka actor whose messages run on the asyncio loop thread, not a thread of its own.

pykka 4 lets other runtimes plug in through three hooks: ``_create_actor_inbox``,
``_create_future`` and ``_start_actor_loop``. Here the inbox is a deque that, on ``put``, hands
the actor to a ``LoopDispatcher``; the dispatcher runs ready actors on the event loop, each for
at most ``budget`` messages per turn, so a player's messages still run one at a time and in
order, but waking a player costs a deque append instead of an OS-thread switch and a GIL
hand-over (2 µs against 60-130 µs per message with 1,000 actors, docs/architecture.md).

The receive step is pykka's own (``_handle_receive``, ``_handle_failure``, ``on_failure``,
``on_start``/``on_stop`` through ``_actor_loop_setup`` and ``_stop``): these are internal to
pykka, which is why pyproject.toml pins pykka to its minor version and
tests/actors/test_loop_actor.py tests this module against it.

Rules for code running here: never block. ``ask`` from another thread works (its future is a
``ThreadingFuture``); a blocking ``get()`` on the loop thread raises instead of deadlocking the
loop, so loop actors talk to others with ``tell`` and a reply.

LoopActors are owned by their dispatcher, not registered in pykka's global ``ActorRegistry``:
its list makes each unregister O(number of actors) (100,000 players) and its ``stop_all``
blocks, which would deadlock the loop. ``LoopDispatcher.close`` stops what is left.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
from collections import deque
from typing import Any, Self

import pykka
import pykka.messages
from pykka._envelope import Envelope

from actors.inbox import InboxFull

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 8
"""Messages one actor may handle per dispatcher turn before the others get theirs."""

DEFAULT_INBOX_LIMIT = 256
"""Requests queued for one actor at most; one more is refused with ``InboxFull`` (put from
the loop thread; puts from other threads are answers and control messages, never refused)."""


class LoopDispatcher:
    """Runs LoopActors on one asyncio loop: a FIFO of ready actors, a bounded slice each.

    Create it on the loop's thread. One turn runs the actors that were ready when it began;
    actors woken during a turn, and actors with messages left, run in the next turn (the next
    loop iteration), so sockets and timers get their share between turns.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        budget: int = DEFAULT_BUDGET,
        inbox_limit: int = DEFAULT_INBOX_LIMIT,
    ) -> None:
        if budget < 1:
            raise ValueError(f"budget must be at least 1, not {budget}")
        self.loop = loop  # the loop every actor of this dispatcher runs on
        self.budget = budget  # messages per actor per turn (fairness under one noisy actor)
        self.inbox_limit = inbox_limit  # requests queued per actor at most ([actors] player_inbox)
        self.thread_id = threading.get_ident()  # the loop's thread: the only one that runs us
        self._ready: deque[LoopActor] = deque()  # actors with messages, in wake-up order
        self._scheduled = False  # a turn is queued on the loop
        self._actors: set[LoopActor] = set()  # started and not yet finished
        self.closed = False  # close() was called: starting actors fails

    @classmethod
    def for_running_loop(cls, budget: int = DEFAULT_BUDGET) -> LoopDispatcher:
        return cls(asyncio.get_running_loop(), budget)

    def __len__(self) -> int:
        """Live actors."""
        return len(self._actors)

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread_id

    def _wake(self, actor: LoopActor) -> None:
        self._ready.append(actor)
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._turn)

    def _turn(self) -> None:
        self._scheduled = False
        ready = self._ready
        budget = self.budget
        for _ in range(len(ready)):
            actor = ready.popleft()
            if actor._run_slice(budget):
                ready.append(actor)
        if ready and not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._turn)

    def close(self) -> None:
        """Stop every actor still alive, at once (call on the loop thread, at shutdown).

        Their ``on_stop`` runs and their queued messages are answered as dead letters.
        """
        self.closed = True
        for actor in list(self._actors):
            actor._halt()


def is_request(message: Any) -> bool:
    """A message someone waits on (it carries a ``reply``): the inbox bound refuses only
    these, so control messages (stop, cache invalidation, answers) always get in."""
    return getattr(message, "reply", None) is not None


class LoopInbox:
    """pykka's inbox interface over a deque; ``put`` wakes the actor on its dispatcher."""

    __slots__ = ("_actor", "_messages")

    def __init__(self) -> None:
        self._messages: deque[Envelope[Any]] = deque()
        self._actor: LoopActor | None = None  # bound by _start_actor_loop

    def put(self, envelope: Envelope[Any], /) -> None:
        actor = self._actor
        if actor is None:
            raise RuntimeError("LoopActor inbox used before the actor was started")
        dispatcher = actor.dispatcher
        if threading.get_ident() == dispatcher.thread_id:
            if len(self._messages) >= dispatcher.inbox_limit and is_request(envelope.message):
                raise InboxFull(len(self._messages), dispatcher.inbox_limit)
            actor._deliver(envelope)
        else:
            try:
                dispatcher.loop.call_soon_threadsafe(actor._deliver, envelope)
            except RuntimeError:  # the loop is closed: nobody will ever handle it
                actor._dead_letter(envelope)

    def get(self) -> Envelope[Any]:
        return self.get_nowait()

    def get_nowait(self) -> Envelope[Any]:
        try:
            return self._messages.popleft()
        except IndexError:
            raise queue.Empty from None

    def empty(self) -> bool:
        return not self._messages

    def __len__(self) -> int:
        return len(self._messages)


class LoopFuture(pykka.ThreadingFuture[Any]):
    """A ThreadingFuture that refuses to block an event loop thread (it would never be set)."""

    def get(self, *, timeout: float | None = None) -> Any:
        if self._result is None and self._get_hook is None and _running_loop() is not None:
            raise RuntimeError(
                "blocking get() on an event loop thread; loop actors use tell with a reply"
            )
        return super().get(timeout=timeout)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LoopActor(pykka.Actor):
    """A pykka actor run by a ``LoopDispatcher`` (call ``super().__init__(dispatcher)``)."""

    actor_inbox: LoopInbox

    def __init__(self, dispatcher: LoopDispatcher) -> None:
        super().__init__()
        self.dispatcher = dispatcher  # runs this actor's messages on the loop
        self._queued = False  # in the dispatcher's ready queue
        self._set_up = False  # on_start has run
        self._finished = False  # stopped and its inbox emptied: later messages are dead

    @classmethod
    def start(cls, *args: Any, **kwargs: Any) -> pykka.ActorRef[Self]:
        """Create and start the actor (not registered in pykka's ActorRegistry, see above)."""
        obj = cls(*args, **kwargs)
        obj._start_actor_loop()
        return obj.actor_ref

    @staticmethod
    def _create_actor_inbox() -> LoopInbox:
        return LoopInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return LoopFuture()

    def _start_actor_loop(self) -> None:
        dispatcher = self.dispatcher
        if dispatcher.closed:
            raise pykka.ActorDeadError(f"{self}: its dispatcher is closed")
        self.actor_inbox._actor = self
        dispatcher._actors.add(self)
        if dispatcher.on_loop_thread():
            self._schedule()
        else:
            dispatcher.loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if not self._queued and not self._finished:
            self._queued = True
            self.dispatcher._wake(self)

    def _deliver(self, envelope: Envelope[Any]) -> None:
        """Queue a message (on the loop thread); a finished actor answers it as a dead letter."""
        if self._finished:
            self._dead_letter(envelope)
            return
        self.actor_inbox._messages.append(envelope)
        self._schedule()

    def _run_slice(self, budget: int) -> bool:
        """Handle up to ``budget`` messages; True if the actor has more waiting."""
        if not self._set_up:
            self._set_up = True
            self._actor_loop_setup()  # on_start; a failure there stops the actor
        messages = self.actor_inbox._messages
        stopped = self.actor_stopped
        while budget and messages and not stopped.is_set():
            self._receive(messages.popleft())
            budget -= 1
        if stopped.is_set():
            self._finish()
            return False
        if messages:
            return True
        self._queued = False
        return False

    def _receive(self, envelope: Envelope[Any]) -> None:
        """One step of pykka's ``_actor_loop_running``, verbatim in behaviour."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                log.info("Exception returned from %s to caller:", self, exc_info=sys.exc_info())
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:  # noqa: BLE001 - pykka's own rule: log it, the actor is stopped
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            self._stop()
            self._finish()
            raise

    def _halt(self) -> None:
        """Stop now, skipping the queue (dispatcher shutdown)."""
        if self._finished:
            return
        if not self.actor_stopped.is_set():
            self._stop()
        self._finish()

    def _finish(self) -> None:
        """After the stop: answer what is left as dead letters, leave the dispatcher."""
        if self._finished:
            return
        self._finished = True
        self._queued = False
        messages = self.actor_inbox._messages
        while messages:
            self._dead_letter(messages.popleft())
        self.dispatcher._actors.discard(self)

    def _dead_letter(self, envelope: Envelope[Any]) -> None:
        """A message the actor will never handle: its asker gets ActorDeadError (as pykka's
        teardown does), and ``on_dead_letter`` may answer whatever reply the message carries."""
        if envelope.reply_to is not None:
            if isinstance(envelope.message, pykka.messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                error = pykka.ActorDeadError(f"{self} stopped before handling the message")
                envelope.reply_to.set_exception(exc_info=(type(error), error, None))
            return
        try:
            self.on_dead_letter(envelope.message)
        except Exception:
            log.exception("%s: on_dead_letter failed", self)

    def on_dead_letter(self, message: Any) -> None:
        """A told message that will never be handled (the actor stopped or failed first)."""
        log.debug("%s dropped %r", self, message)
