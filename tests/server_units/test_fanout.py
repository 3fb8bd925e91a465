"""SessionFanout: events encoded once per format, delivered in order, in bounded slices."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgpack

from server.fanout import CHECK_EVERY, EncodedEvent, SessionFanout
from server.frames import Format


class FakeSession:
    """Records what it is pushed (the fan-out only needs an id and the two push methods)."""

    def __init__(self, session_id: str, fmt: Format = Format.MSGPACK) -> None:
        self.session_id = session_id
        self.format = fmt
        self.got: list[Any] = []

    def push(self, msg: Any) -> bool:
        self.got.append(msg)
        return True

    def push_event(self, frames: Any) -> bool:
        self.got.append(frames[self.format])
        return True

    def push_events(self, batch: Any) -> bool:
        self.got.extend(batch.frames(self.format))
        return True


async def test_each_event_is_encoded_once_per_format_in_use() -> None:
    fanout = SessionFanout()
    sessions = [FakeSession(f"s{i}") for i in range(50)]
    for session in sessions:
        fanout.add(session)  # type: ignore[arg-type]
    events = [{"op": "event", "type": "hp", "seq": n} for n in range(3)]
    fanout.deliver([s.session_id for s in sessions], events)
    await asyncio.sleep(0)
    frames = [s.got for s in sessions]
    assert all(len(got) == 3 for got in frames)
    # the very same bytes objects: encoded once, shared by every subscriber
    assert all(got[i] is frames[0][i] for got in frames for i in range(3))
    encoded = EncodedEvent(events[0])
    assert isinstance(encoded[Format.MSGPACK], bytes) and isinstance(encoded[Format.JSON], str)


async def test_big_deliveries_are_sliced_across_loop_iterations_and_stay_in_order() -> None:
    fanout = SessionFanout(chunk=10)
    sessions = [FakeSession(f"s{i}") for i in range(35)]
    for session in sessions:
        fanout.add(session)  # type: ignore[arg-type]
    ids = [s.session_id for s in sessions]
    fanout.deliver(ids, [{"op": "event", "type": "a", "seq": 1}])
    fanout.deliver(ids[:-1], [{"op": "event", "type": "b", "seq": 2}])  # not mergeable
    fanout.deliver(ids[:-1], [{"op": "event", "type": "c", "seq": 3}])  # merges with b
    assert fanout.backlog == 2
    await asyncio.sleep(0)
    assert sum(len(s.got) for s in sessions) == 10  # one slice per iteration
    for _ in range(20):
        if not fanout.backlog:
            break
        await asyncio.sleep(0)
    assert fanout.backlog == 0
    decoded = [
        EncodedEvent({"op": "event", "type": t, "seq": n})[Format.MSGPACK]
        for t, n in (("a", 1), ("b", 2), ("c", 3))
    ]
    assert all(s.got == decoded for s in sessions[:-1])
    assert sessions[-1].got == decoded[:1]


async def test_gone_sessions_are_skipped_and_subscribe_replies_go_first() -> None:
    fanout = SessionFanout()
    alive = FakeSession("a", Format.JSON)
    fanout.add(alive)  # type: ignore[arg-type]
    fanout.subscribed("a", {"rid": 7, "seq": 41}, [{"op": "event", "type": "x", "seq": 41}])
    fanout.deliver(["gone", "a"], [{"op": "event", "type": "y", "seq": 42}])
    fanout.subscribed("gone", {"rid": 1, "seq": 0}, [])
    await asyncio.sleep(0)
    assert alive.got[0] == {"op": "raid.subscribe.ok", "rid": 7, "seq": 41}
    assert [frame.count('"seq"') for frame in alive.got[1:]] == [1, 1]
    assert '"y"' in alive.got[2]


async def test_a_subscribe_reply_waits_for_deliveries_queued_before_it() -> None:
    fanout = SessionFanout()
    session = FakeSession("a")
    fanout.add(session)  # type: ignore[arg-type]
    fanout.deliver(["a"], [{"op": "event", "type": "x", "seq": 5}])  # stamped before
    fanout.subscribed("a", {"rid": 2, "seq": 5}, [])
    assert session.got == []
    await asyncio.sleep(0)
    kinds = [msgpack.unpackb(frame)["op"] for frame in session.got]
    assert kinds == ["event", "raid.subscribe.ok"]


class SlowSession(FakeSession):
    """A session whose push takes a known time (a socket write on a busy machine)."""

    def push_events(self, batch: Any) -> bool:
        until = time.perf_counter() + 0.0002
        while time.perf_counter() < until:
            pass
        return super().push_events(batch)


async def test_a_slice_stops_at_its_time_budget_not_only_at_its_count() -> None:
    fanout = SessionFanout(chunk=1000, slice_s=0.001)
    sessions = [SlowSession(f"s{i}") for i in range(100)]
    for session in sessions:
        fanout.add(session)  # type: ignore[arg-type]
    fanout.deliver([s.session_id for s in sessions], [{"op": "event", "type": "a", "seq": 1}])
    await asyncio.sleep(0)
    # 16 pushes (3.2 ms) pass the 1-ms budget at the first look at the clock
    assert sum(len(s.got) for s in sessions) == CHECK_EVERY
    for _ in range(20):
        if not fanout.backlog:
            break
        await asyncio.sleep(0)
    assert all(len(s.got) == 1 for s in sessions)
