"""Requests from the loop to actors, awaited as futures, failed if an actor never answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.bridge import CallbackReply, LoopBridge, Reply, Settle
from actors.deadlines import CURRENT_CALLER
from actors.inbox import INBOX_FULL_RETRY_AFTER_S, InboxFull
from raid.errors import Overloaded, Unavailable

REQUEST_TIMEOUT_S = 30.0
"""An actor that has not answered by then is presumed dead: the caller gets ``unavailable``;
a raid that picks the request up later drops it (actors/deadlines.py). The server passes
``[actors] request_timeout_s``."""


class ActorCalls:
    """``call`` sends a request carrying a ``Reply`` and awaits it; ``expire`` (run by the
    clock) fails the calls past their deadline: a timer handle per request was 5 % of the
    whole strike path, one sweep every few seconds costs nothing."""

    def __init__(self, bridge: LoopBridge, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.bridge = bridge  # makes the Reply/future pairs
        self.timeout_s = timeout_s  # [actors] request_timeout_s: past it, unavailable
        self._deadlines: dict[asyncio.Future[Any], float] = {}  # calls awaiting a reply
        self._callbacks: dict[CallbackReply, float] = {}  # callback replies not yet settled

    def __len__(self) -> int:
        return len(self._deadlines) + len(self._callbacks)

    def callback(self, done: Settle) -> CallbackReply:
        """A reply that calls ``done`` on the loop once answered (or failed at its deadline);
        the caller sends it and returns: nothing waits."""
        reply = CallbackReply(self.bridge, done, self._callbacks)
        deadline = reply.deadline = time.monotonic() + self.timeout_s
        reply.caller = CURRENT_CALLER.get()  # actors.deadlines: dropped if it leaves first
        self._callbacks[reply] = deadline
        return reply

    @staticmethod
    def refused(reply: CallbackReply, error: pykka.ActorDeadError) -> None:
        """Answer a callback request its actor did not take (a full inbox, a dead actor)."""
        if isinstance(error, InboxFull):
            reply.fail(Overloaded(f"too many requests queued ({error})", INBOX_FULL_RETRY_AFTER_S))
        else:
            reply.fail(Unavailable("that raid is restarting; try again"))

    async def call(self, send: Callable[[Any], None], make: Callable[[Reply[Any]], Any]) -> Any:
        reply, future = self.bridge.reply()
        deadline = reply.deadline = time.monotonic() + self.timeout_s
        reply.caller = CURRENT_CALLER.get()  # actors.deadlines: dropped if it leaves first
        try:
            send(make(reply))
        except InboxFull as full:
            raise Overloaded(
                f"too many requests queued ({full})", INBOX_FULL_RETRY_AFTER_S
            ) from None
        except pykka.ActorDeadError:
            raise Unavailable("that raid is restarting; try again") from None
        self._deadlines[future] = deadline
        try:
            return await future
        finally:
            reply.abandoned = True  # answered, expired or cancelled: a raid drops it unread
            self._deadlines.pop(future, None)

    def expire(self) -> None:
        """Fail calls whose actor did not answer by their deadline."""
        now = time.monotonic()
        for future, deadline in list(self._deadlines.items()):
            if deadline <= now and not future.done():
                future.set_exception(Unavailable("the raid did not answer in time; try again"))
        # Oldest first (insertion order): stop at the first one still in time.
        late = []
        for reply, deadline in self._callbacks.items():
            if deadline > now:
                break
            late.append(reply)
        for reply in late:
            reply.fail(Unavailable("the raid did not answer in time; try again"))
