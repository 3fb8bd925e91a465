"""BroadcasterActor: a raid's events go out once per clock tick, in seq order, each once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.broadcaster import (
    BroadcasterActor,
    BroadcastSinks,
    FlushTick,
    Publish,
    Subscribe,
)
from tests.timeouts import TIMEOUT


class Outside:
    """What leaves the broadcaster, in the order it was posted (the loop's side)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posted: list[tuple[str, Any]] = []

    def post(self, fn: Any, *args: Any) -> None:
        fn(*args)

    def deliver(self, subscribers: tuple[str, ...], events: list[dict[str, Any]]) -> None:
        with self.lock:
            self.posted.append(("deliver", (subscribers, [e["seq"] for e in events])))

    def subscribed(self, subscriber: str, reply: dict[str, Any], replay: list[Any]) -> None:
        with self.lock:
            self.posted.append(("subscribed", (subscriber, reply["seq"])))


@pytest.fixture
def broadcaster() -> Iterator[tuple[pykka.ActorRef[Any], Outside]]:
    outside = Outside()
    sinks = BroadcastSinks(outside.post, outside.deliver, outside.subscribed, lambda n: None)
    ref = BroadcasterActor.start(sinks, 100)
    try:
        yield ref, outside
    finally:
        ref.stop()


def _publish(ref: pykka.ActorRef[Any], kind: str) -> None:
    ref.ask(Publish("r", [{"type": kind}], None, 0, 10.0, 0.0), timeout=TIMEOUT)


def test_events_of_one_tick_leave_as_one_delivery_in_seq_order(
    broadcaster: tuple[pykka.ActorRef[Any], Outside],
) -> None:
    ref, outside = broadcaster
    ref.ask(Subscribe("r", "a", None, 1), timeout=TIMEOUT)
    for kind in ("retaliation", "announcement", "breakthrough"):
        _publish(ref, kind)
    assert [kind for kind, _ in outside.posted] == ["subscribed"]  # nothing before the tick
    ref.ask(FlushTick(1.0), timeout=TIMEOUT)
    ref.ask(FlushTick(1.05), timeout=TIMEOUT)  # nothing new: no empty delivery
    (_, (_, first_seq)), (kind, (subscribers, seqs)) = outside.posted
    assert kind == "deliver" and subscribers == ("a",)
    assert seqs == [first_seq + 1, first_seq + 2, first_seq + 3]


def test_a_subscribe_sends_what_was_stamped_before_it_to_the_earlier_subscribers_first(
    broadcaster: tuple[pykka.ActorRef[Any], Outside],
) -> None:
    ref, outside = broadcaster
    ref.ask(Subscribe("r", "a", None, 1), timeout=TIMEOUT)
    _publish(ref, "retaliation")
    ref.ask(Subscribe("r", "b", None, 2), timeout=TIMEOUT)
    _publish(ref, "announcement")
    ref.ask(FlushTick(1.0), timeout=TIMEOUT)
    _, before, joined, after = outside.posted
    assert before[0] == "deliver" and before[1][0] == ("a",)
    assert joined == ("subscribed", ("b", before[1][1][0]))  # b's reply covers that event
    assert after[0] == "deliver" and after[1] == (("a", "b"), [before[1][1][0] + 1])
