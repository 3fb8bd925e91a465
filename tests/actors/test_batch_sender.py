"""BatchSender: what the loop sends an actor in one iteration arrives as one Batch, in order."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.base import Actor
from actors.batch_sender import Batch, BatchSender
from actors.inbox import BoundedInbox
from raid.errors import Overloaded
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


class SmallInboxCollector(Collector):
    def _create_actor_inbox(self) -> BoundedInbox:  # type: ignore[override]
        return BoundedInbox(5)


@dataclass
class Recorded:
    """A message with a reply that records how it was failed."""

    n: int
    failed: list[BaseException] = field(default_factory=list)

    @property
    def reply(self) -> Recorded:
        return self

    def fail(self, error: BaseException) -> None:
        self.failed.append(error)


async def test_a_batch_bigger_than_the_inbox_admits_what_fits_and_sheds_the_rest() -> None:
    """Requests released together (say, waiting for a raid to load) once made one batch that
    no inbox could take: all were shed, with "0 messages queued"."""
    got: list[Any] = []
    arrived = threading.Event()
    ref = SmallInboxCollector.start(got, arrived)
    try:
        sender = BatchSender(ref, asyncio.get_running_loop(), lambda _m: None)
        messages = [Recorded(n) for n in range(8)]
        for message in messages:
            sender.send(message)
        assert await asyncio.to_thread(arrived.wait, TIMEOUT)
        assert got == [Batch(tuple(messages[:5]))]
        assert [m.failed for m in messages[:5]] == [[]] * 5
        for message in messages[5:]:
            (error,) = message.failed
            assert isinstance(error, Overloaded) and error.retry_after is not None
    finally:
        ref.stop()
