"""The base of every actor here: a pykka ThreadingActor with a C-implemented inbox.

pykka's default inbox is ``queue.Queue``, written in Python on top of ``threading.Condition``;
putting and taking a message there was about a fifth of all the CPU a strike costs.
``queue.SimpleQueue`` is implemented in C, has the same ``put``/``get``/``empty`` and is
unbounded like the default, so it drops in through pykka's own hook for runtimes.
"""

from __future__ import annotations

import queue
from typing import Any

import pykka


class Actor(pykka.ThreadingActor):
    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()
