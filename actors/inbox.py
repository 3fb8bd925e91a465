"""Failing the messages left in a stopping actor's inbox, so no caller waits for nothing.

pykka answers leftover ``ask`` envelopes itself, but messages sent with ``tell`` carry our own
``Reply`` and would otherwise be dropped silently when the actor stops.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka
import pykka.messages

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
