"""Worker stand-ins for test_watchdog.py, in a module that imports next to nothing (a
spawned process imports the module of its target before it runs)."""

from __future__ import annotations

import multiprocessing.queues
import time
from typing import Any

SILENCE_S = 2.0
HANG_S = 60.0


def slow_but_alive(inbox: multiprocessing.queues.Queue[Any], beats: int) -> None:
    """A worker whose phase takes several silence periods, heartbeating all along."""
    inbox.put(("ready", 0))
    for _ in range(beats):
        inbox.put(("alive", 0))
        time.sleep(SILENCE_S / 8)
    inbox.put(("loaded", 0, "done"))


def hung(inbox: multiprocessing.queues.Queue[Any]) -> None:
    """A worker that says it is ready, then neither heartbeats nor exits."""
    inbox.put(("ready", 0))
    time.sleep(HANG_S)


def crashing(inbox: multiprocessing.queues.Queue[Any]) -> None:
    raise SystemExit(3)
