"""BroadcasterActor: per-raid event sequence, hp coalescing, replay buffer and fan-out.

Every event of a raid takes the next ``seq`` here, so all subscribers see one contiguous
sequence. ``hp`` updates are coalesced per raid (not per client) to at most
``hp_events_per_s``, always carrying the latest values. The actor never waits for a client:
at every clock tick (``[actors] tick_s``) it posts each raid's events of that tick, with the
ids of the raid's subscribers, to the loop, where the gateway's ``EventSink`` (actors.api)
delivers them. It knows subscriber ids only, no sessions.

Sequence numbers start, for each raid and each server run, at the current unix time in
milliseconds: they keep rising across restarts, so a client resuming with a ``since_seq`` from
before a restart is told to resync instead of being sent someone else's events.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.base import Actor

log = logging.getLogger(__name__)


Deliver = Callable[[tuple[str, ...], list[dict[str, Any]]], None]
"""Deliver events to subscribers; runs on the loop (the broadcaster posts it via the bridge)."""

Subscribed = Callable[[str, dict[str, Any], list[dict[str, Any]]], None]
"""A subscriber's subscribe reply fields, then the replayed events (on the loop)."""


@dataclass(frozen=True, slots=True)
class BroadcastSinks:
    post: Callable[..., None]
    """LoopBridge.post."""
    deliver: Deliver
    subscribed: Subscribed
    coalesced: Callable[[int], None]
    """Count hp updates folded into a later one (metrics)."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Events of committed strikes of one raid, in order, and the raid's latest hp."""

    raid_id: str
    events: list[dict[str, Any]]
    hp: Mapping[str, int] | None
    hp_updates: int
    """How many strikes the hp values sum up (all but one are coalesced)."""
    hp_events_per_s: float
    now: float


@dataclass(frozen=True, slots=True)
class Subscribe:
    raid_id: str
    subscriber_id: str
    since_seq: int | None
    rid: Any


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    raid_id: str
    subscriber_id: str


@dataclass(frozen=True, slots=True)
class DropSubscriber:
    subscriber_id: str


@dataclass(frozen=True, slots=True)
class FlushTick:
    now: float


@dataclass(slots=True)
class _Channel:
    seq: int  # last seq given out
    replay: deque[dict[str, Any]]  # the latest events, for since_seq resume
    subscribers: dict[str, None] = field(default_factory=dict)  # subscriber ids, in order
    hp_pending: Mapping[str, int] | None = None  # newest hp values not yet sent
    hp_last: float = 0.0  # when the last hp event went out
    hp_interval: float = 0.1  # 1 / hp_events_per_s
    outbox: list[dict[str, Any]] = field(default_factory=list)  # stamped, sent at next tick


class BroadcasterActor(Actor):
    def __init__(self, sinks: BroadcastSinks, replay_size: int) -> None:
        super().__init__()
        self.sinks = sinks  # how events leave this thread
        self.replay_size = replay_size  # events kept per raid for resume
        self.channels: dict[str, _Channel] = {}  # raid_id -> its channel
        self.followed: dict[str, set[str]] = {}  # subscriber_id -> raids it follows

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Publish):
            self._publish(message)
        elif isinstance(message, FlushTick):
            for raid_id, channel in self.channels.items():
                if channel.hp_pending is not None and message.now - channel.hp_last >= (
                    channel.hp_interval
                ):
                    self._emit_hp(raid_id, channel, message.now)
                self._flush(channel)
        elif isinstance(message, Subscribe):
            self._flush(self._channel(message.raid_id))  # what was stamped before goes first
            self._subscribe(message)
        elif isinstance(message, Unsubscribe):
            self._channel(message.raid_id).subscribers.pop(message.subscriber_id, None)
            self.followed.get(message.subscriber_id, set()).discard(message.raid_id)
        elif isinstance(message, DropSubscriber):
            for raid_id in self.followed.pop(message.subscriber_id, set()):
                self._channel(raid_id).subscribers.pop(message.subscriber_id, None)
        else:
            log.error("broadcaster: unexpected message %r", message)
        return None

    def latest_seq(self, raid_id: str) -> int:
        """The seq of the raid's latest event (for tests and the hub)."""
        return self._channel(raid_id).seq

    def _channel(self, raid_id: str) -> _Channel:
        channel = self.channels.get(raid_id)
        if channel is None:
            channel = self.channels[raid_id] = _Channel(
                seq=int(time.time() * 1000), replay=deque(maxlen=self.replay_size)
            )
        return channel

    def _stamp(self, raid_id: str, channel: _Channel, event: dict[str, Any]) -> dict[str, Any]:
        channel.seq += 1
        stamped = {"op": "event", "type": event["type"], "raid_id": raid_id, "seq": channel.seq}
        stamped.update((k, v) for k, v in event.items() if k != "type")
        channel.replay.append(stamped)
        return stamped

    def _queue(self, channel: _Channel, events: list[dict[str, Any]]) -> None:
        """Queue stamped events for the next tick: a raid's events go out at most once per
        ``tick_s`` (20 times a second by default), so each subscriber gets one socket write
        per tick however many strikes were committed in it (fan-out costs a write per
        subscriber per delivery; Colyseus patches rooms at 20 Hz for the same reason)."""
        if events and channel.subscribers:
            channel.outbox.extend(events)

    def _flush(self, channel: _Channel) -> None:
        if channel.outbox:
            if channel.subscribers:
                self.sinks.post(self.sinks.deliver, tuple(channel.subscribers), channel.outbox)
            channel.outbox = []

    def _publish(self, message: Publish) -> None:
        channel = self._channel(message.raid_id)
        channel.hp_interval = 1.0 / message.hp_events_per_s
        out = [self._stamp(message.raid_id, channel, e) for e in message.events]
        self._queue(channel, out)
        if message.hp is not None:
            folded = message.hp_updates - 1 + (channel.hp_pending is not None)
            if folded:
                self.sinks.coalesced(folded)
            channel.hp_pending = message.hp
            if message.now - channel.hp_last >= channel.hp_interval:
                self._emit_hp(message.raid_id, channel, message.now)

    def _emit_hp(self, raid_id: str, channel: _Channel, now: float) -> None:
        assert channel.hp_pending is not None
        event = self._stamp(raid_id, channel, {"type": "hp", **channel.hp_pending})
        channel.hp_pending = None
        channel.hp_last = now
        self._queue(channel, [event])

    def _subscribe(self, message: Subscribe) -> None:
        channel = self._channel(message.raid_id)
        subscriber = message.subscriber_id
        channel.subscribers[subscriber] = None
        self.followed.setdefault(subscriber, set()).add(message.raid_id)
        reply: dict[str, Any] = {"rid": message.rid, "seq": channel.seq}
        replay: list[dict[str, Any]] = []
        since = message.since_seq
        if since is not None and since < channel.seq:
            oldest = channel.replay[0]["seq"] if channel.replay else channel.seq + 1
            if since + 1 >= oldest:
                replay = [e for e in channel.replay if e["seq"] > since]
            else:
                reply["resync"] = True
        elif since is not None and since > channel.seq:
            reply["resync"] = True
        self.sinks.post(self.sinks.subscribed, subscriber, reply, replay)
