"""The one crossing between actor threads and the asyncio event loop.

Modelled on aiosqlite's core: work for the loop is queued as ``(fn, args)`` and run by the loop;
results go back through ``loop.call_soon_threadsafe``; a future is only set ``if not done()``.
Posting is batched: however many threads post, the loop is woken once per batch, so a burst of
strike replies costs one self-pipe write, not one per reply.

Nothing else in the project touches another thread's objects: actors get a ``Reply`` (to answer
an asyncio caller) or call ``LoopBridge.post`` (to hand work to the loop).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from actors.deadlines import Caller

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

log = logging.getLogger(__name__)


class LoopBridge:
    """Runs callables on one asyncio loop, posted from any thread, in posting order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending: int = 100_000) -> None:
        self.loop = loop  # the loop every posted callable runs on
        self.max_pending = max_pending  # past it, actor threads wait for the loop ([actors])
        self._pending: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()  # guards _pending and _scheduled across threads
        self._space = threading.Condition(self._lock)  # the loop drained: waiting posts go on
        self._scheduled = False  # a drain is already queued on the loop
        self._closed = False  # the loop is gone: posts are dropped (and logged)
        self.waits = 0  # times an actor thread waited for room (tests, metrics)
        self.thread_id = threading.get_ident()  # the loop's thread (create the bridge on it)

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread_id

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon. Safe from any thread. Never blocks the loop;
        an actor thread waits while ``max_pending`` callables are queued (backpressure)."""
        with self._lock:
            if len(self._pending) >= self.max_pending and not self.on_loop_thread():
                self._wait_for_space()
            if self._closed:
                log.warning("bridge closed; dropped %s", getattr(fn, "__qualname__", fn))
                return
            self._pending.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._closed = True
                self._pending.clear()
            log.warning("event loop closed; bridge shut")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._space.notify_all()

    def _drain(self) -> None:
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._scheduled = False
            self._space.notify_all()
        for fn, args in batch:
            try:
                fn(*args)
            except Exception:
                log.exception("posted callable %s failed", getattr(fn, "__qualname__", fn))

    def _wait_for_space(self) -> None:
        """Wait (lock held, on an actor thread) until the loop drains the bridge or it closes.
        The loop never waits for an actor, so it always drains; the short wait slices only
        notice a loop that closed without ``close()``."""
        while len(self._pending) >= self.max_pending and not self._closed:
            if self.loop.is_closed():
                return
            self.waits += 1
            self._space.wait(0.1)

    def reply(self) -> tuple[Reply[Any], asyncio.Future[Any]]:
        """A ``Reply`` for an actor and the future it resolves (call on the loop thread)."""
        future: asyncio.Future[Any] = self.loop.create_future()
        return Reply(self, future), future


class Answer(Protocol[T_contra]):
    """How an actor answers a request: a ``Reply`` to the loop, or a message to an actor."""

    def set(self, value: T_contra) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class Reply(Generic[T]):
    """An actor's way to answer an asyncio caller exactly once, from its own thread."""

    __slots__ = ("_bridge", "_future", "abandoned", "caller", "deadline")

    def __init__(self, bridge: LoopBridge, future: asyncio.Future[T]) -> None:
        self._bridge = bridge
        self._future = future
        # Who waits for the answer, read by actors.deadlines.caller_gone on actor threads:
        self.deadline = math.inf  # time.monotonic() past which nobody waits for it
        self.caller: Caller | None = None  # the connection waiting, if any
        self.abandoned = False  # the call is over (answered, failed or cancelled)

    @property
    def future(self) -> asyncio.Future[T]:
        """The future this Reply resolves; touch it on the loop thread only."""
        return self._future

    def set(self, value: T) -> None:
        if self._bridge.on_loop_thread():  # a loop actor answering: no crossing needed
            _resolve(self._future, value)
        else:
            self._bridge.post(_resolve, self._future, value)

    def fail(self, error: BaseException) -> None:
        if self._bridge.on_loop_thread():
            _reject(self._future, error)
        else:
            self._bridge.post(_reject, self._future, error)


Settle = Callable[[Any, BaseException | None], None]
"""What a ``CallbackReply`` calls on the loop: ``(value, None)`` or ``(None, error)``."""


class CallbackReply:
    """An actor's way to answer a loop callback exactly once, from any thread.

    The strike path's answer: no asyncio future and no coroutine wait per strike, the
    committed outcome is turned into the reply frame by the callback itself. ``pending``
    (the caller's registry of unanswered replies, for deadlines) forgets it once settled.
    """

    __slots__ = ("_bridge", "_done", "_pending", "caller", "deadline")

    def __init__(
        self, bridge: LoopBridge, done: Settle, pending: dict[CallbackReply, float]
    ) -> None:
        self._bridge = bridge
        self._done: Settle | None = done  # None once settled
        self._pending = pending
        # Who waits for the answer, read by actors.deadlines.caller_gone on actor threads:
        self.deadline = math.inf  # time.monotonic() past which nobody waits for it
        self.caller: Caller | None = None  # the connection waiting, if any

    @property
    def abandoned(self) -> bool:
        """Answered already (or failed at its deadline): a raid drops it unread."""
        return self._done is None

    def set(self, value: Any) -> None:
        if self._bridge.on_loop_thread():
            self._settle(value, None)
        else:
            self._bridge.post(self._settle, value, None)

    def fail(self, error: BaseException) -> None:
        if self._bridge.on_loop_thread():
            self._settle(None, error)
        else:
            self._bridge.post(self._settle, None, error)

    def _settle(self, value: Any, error: BaseException | None) -> None:
        done = self._done
        if done is None:
            return
        self._done = None
        self._pending.pop(self, None)
        done(value, error)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _reject(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
