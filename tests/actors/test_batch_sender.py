"""BatchSender: what the loop sends an actor in one iteration arrives as one Batch, in order."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pykka

from actors.base import Actor
from actors.batch_sender import Batch, BatchSender
from tests.timeouts import TIMEOUT


class Collector(Actor):
    def __init__(self, got: list[Any], arrived: threading.Event) -> None:
        super().__init__()
        self.got = got
        self.arrived = arrived

    def on_receive(self, message: Any) -> Any:
        self.got.append(message)
        self.arrived.set()


async def test_one_iteration_is_one_batch_in_order() -> None:
    got: list[Any] = []
    arrived = threading.Event()
    ref = Collector.start(got, arrived)
    try:
        sender = BatchSender(ref, asyncio.get_running_loop(), lambda _m: None)
        for n in range(100):
            sender.send(n)
        assert got == []  # nothing crosses before the loop's next iteration
        assert await asyncio.to_thread(arrived.wait, TIMEOUT)
        arrived.clear()
        sender.send("later")
        assert await asyncio.to_thread(arrived.wait, TIMEOUT)
        assert got == [Batch(tuple(range(100))), Batch(("later",))]
        assert sender.batches == 2
    finally:
        ref.stop()


async def test_messages_for_a_stopped_actor_are_each_handed_back() -> None:
    ref = Collector.start([], threading.Event())
    ref.stop()
    dead: list[Any] = []
    sender = BatchSender(ref, asyncio.get_running_loop(), dead.append)
    sender.send("a")
    sender.send("b")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert dead == ["a", "b"]
    assert not ref.is_alive()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
