"""Delivering raid events to sessions: the gateway's ``EventSink`` (actors.api).

Each event is encoded at most once per wire format, and only for formats some subscriber
uses; a delivery's events are also framed once per format (``EncodedBatch.wire``), so an
uncompressed session whose outbox is empty gets them in one socket write of bytes shared with
every other subscriber. A delivery to many sessions is spread over loop iterations, at most
``SLICE_S`` of loop time (and ``chunk`` session pushes) per iteration, so a burst of events to
thousands of subscribers never holds the loop (and the strikes waiting on it) in one long
stretch: a strike crosses the loop many times between its frame and its reply, and each
crossing waited behind a whole slice (1,000 pushes, ~10 ms here, made a striker's p50 200 ms
with 5,000 subscribers; docs/benchmarks.md). It starts on the next loop iteration, so
deliveries to the same subscribers posted together go out as one.
Deliveries stay in order: a later one waits until the earlier ones have reached everyone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from server.frames import Format, encode_frame, websocket_frame
from server.session import Frame, Session

DEFAULT_CHUNK = 1000
"""Session pushes per loop iteration at most."""

SLICE_S = 0.001
"""Loop time one iteration's pushes may take (checked every ``CHECK_EVERY`` pushes). Shorter
slices cost more in loop iterations than they save: 0.3 ms doubled the striker's p99."""

CHECK_EVERY = 16
"""Pushes between two looks at the clock."""


class EncodedEvent:
    """An event and its frames, encoded on first use per format."""

    __slots__ = ("_frames", "event")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self._frames: dict[Format, Frame] = {}

    def __getitem__(self, fmt: Format) -> Frame:
        frame = self._frames.get(fmt)
        if frame is None:
            frame = self._frames[fmt] = encode_frame(self.event, fmt)
        return frame


class EncodedBatch:
    """One delivery's events, encoded once per format, and framed once per format."""

    __slots__ = ("_wire", "events")

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = [EncodedEvent(event) for event in events]
        self._wire: dict[Format, bytes] = {}

    def __len__(self) -> int:
        return len(self.events)

    def extend(self, events: list[dict[str, Any]]) -> None:
        """Append events (only before any of these frames was handed out)."""
        assert not self._wire, "frames already handed out"
        self.events.extend(EncodedEvent(event) for event in events)

    def frames(self, fmt: Format) -> list[Frame]:
        """Each event's encoded message, in order."""
        return [event[fmt] for event in self.events]

    def wire(self, fmt: Format) -> bytes:
        """Every event's complete WebSocket frame, joined: what goes on the socket."""
        wire = self._wire.get(fmt)
        if wire is None:
            wire = self._wire[fmt] = b"".join(websocket_frame(f) for f in self.frames(fmt))
        return wire


class SessionFanout:
    """Sessions by id, and the deliveries still on their way to them."""

    def __init__(self, chunk: int = DEFAULT_CHUNK, slice_s: float = SLICE_S) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        self.chunk = chunk  # session pushes per loop iteration at most
        self.slice_s = slice_s  # loop time per iteration at most (checked every CHECK_EVERY)
        self.sessions: dict[str, Session] = {}  # subscriber id -> open session
        self._queue: deque[_Delivery] = deque()  # deliveries not yet pushed to every session
        self._scheduled = False  # a continuation is queued on the loop

    def add(self, session: Session) -> None:
        self.sessions[session.session_id] = session

    def remove(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)

    @property
    def backlog(self) -> int:
        """Deliveries not yet pushed to all their sessions."""
        return len(self._queue)

    # -- actors.api.EventSink ---------------------------------------------------------------

    def subscribed(
        self, subscriber_id: str, reply: dict[str, Any], replay: list[dict[str, Any]]
    ) -> None:
        # Deliveries queued before this point were stamped before the reply's seq: they go
        # out first, then the reply and its replay, so nothing arrives twice or out of order.
        session = self.sessions.get(subscriber_id)
        if session is None:
            return
        answer = {"op": "raid.subscribe.ok", **reply}
        if self._queue:
            self._enqueue((subscriber_id,), [answer, *replay])
            return
        session.push(answer)
        for event in replay:
            session.push_event(EncodedEvent(event))

    def deliver(self, subscriber_ids: Sequence[str], events: list[dict[str, Any]]) -> None:
        if not subscriber_ids or not events:
            return
        self._enqueue(subscriber_ids, events)

    def _enqueue(self, subscriber_ids: Sequence[str], events: list[dict[str, Any]]) -> None:
        queue = self._queue
        last = queue[-1] if queue else None
        if (
            last is not None
            and last.position == 0
            and (last.subscriber_ids is subscriber_ids or last.subscriber_ids == subscriber_ids)
        ):
            last.events.extend(events)  # one write per session for both
        else:
            queue.append(_Delivery(subscriber_ids, EncodedBatch(events)))
        if not self._scheduled:
            # Next loop iteration: deliveries posted together (one bridge drain: a publish
            # and its hp update, several raids' commits) merge into one write per session.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    # -- pushing ----------------------------------------------------------------------------

    def _run(self) -> None:
        self._scheduled = False
        budget = self.chunk
        sessions = self.sessions
        queue = self._queue
        until = time.perf_counter() + self.slice_s
        while queue and budget > 0:
            delivery = queue[0]
            ids = delivery.subscriber_ids
            stop = min(len(ids), delivery.position + budget, delivery.position + CHECK_EVERY)
            batch = delivery.events
            for index in range(delivery.position, stop):
                session = sessions.get(ids[index])
                if session is not None:
                    session.push_events(batch)
            budget -= stop - delivery.position
            delivery.position = stop
            if stop == len(ids):
                queue.popleft()
            if time.perf_counter() >= until:
                break
        if queue:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)


class _Delivery:
    __slots__ = ("events", "position", "subscriber_ids")

    def __init__(self, subscriber_ids: Sequence[str], events: EncodedBatch) -> None:
        self.subscriber_ids = subscriber_ids
        self.events = events
        self.position = 0  # sessions before this index have it
