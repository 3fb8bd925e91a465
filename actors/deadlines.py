"""Dropping work whose caller is gone, at the point a raid picks it up.

A request waits in queues (a PlayerActor's inbox, the raid's batch, the RaidActor's inbox)
before it is decided. If by then nobody waits for the answer (the call passed its deadline,
was cancelled, or its connection closed), deciding it would change the raid for an answer
nobody reads and, for a timed-out strike, after the client was told ``unavailable``. So every
``Reply`` carries its deadline and its caller, and the RaidActor checks ``caller_gone`` before
running a handler: a gone caller's request is answered ``unavailable`` and changes nothing.

Work already decided is not undone: a strike decided just before its caller left is
committed as usual (the client's retry with the same ``strike_id`` gets its report).

The flags are plain attributes written on the loop thread and read on actor threads: a bool
or float attribute is read atomically under the GIL, and a late read only lets one request
through that was about to be answered anyway.
"""

from __future__ import annotations

import contextvars
import time

from actors.bridge import CallbackReply, Reply


class Caller:
    """Whoever waits for the answers of some calls (a connection); ``gone`` once it left."""

    __slots__ = ("gone",)

    def __init__(self) -> None:
        self.gone = False  # set on the loop thread when the connection closed


CURRENT_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "raid_current_caller", default=None
)
"""The caller of the request running in this task. The gateway sets it once per connection;
tasks copy their context when created, so every request of the connection sees it."""


def caller_gone(answer: object, now: float | None = None) -> bool:
    """True when nobody waits for ``answer`` any more. Only a reply to the loop can be
    abandoned; other answers (a message back to an actor) always have someone waiting."""
    if type(answer) is not Reply and type(answer) is not CallbackReply:
        return False
    if answer.abandoned or (answer.caller is not None and answer.caller.gone):
        return True
    return (time.monotonic() if now is None else now) >= answer.deadline
