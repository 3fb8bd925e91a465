"""``RaidClient``: one typed method per op, reconnection, resumable event streams.

Reconnection: a request that finds the connection gone (or loses it while waiting)
reconnects with exponential back-off and jitter, logs in again with the same token and
is sent again, unless sending it twice could change the outcome (``rewards.claim`` and
``admin.raid.create`` have no idempotency key; they raise ``ConnectionLost`` instead).
``strike`` is safe to send again because it carries a ``strike_id``: the server returns
the original report for a repeated id, so a strike is never applied twice and never
silently lost. ``strike`` also retries ``unavailable`` refusals, which the protocol says
changed nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from raidclient.backoff import Backoff
from raidclient.connection import Connection
from raidclient.errors import (
    ConnectionLost,
    ProtocolViolation,
    RequestTimeout,
    Unavailable,
    error_from_reply,
)
from raidclient.models import (
    Event,
    Hello,
    Hub,
    PendingReward,
    Resync,
    Reward,
    Rewards,
    Snapshot,
    StrikeReport,
    TeamOptions,
    event_from_wire,
    parse,
)
from raidclient.wire import Format

DEFAULT_REQUEST_TIMEOUT_S = 30.0
DEFAULT_RECONNECT_TIMEOUT_S = 60.0
DEFAULT_EVENT_QUEUE = 10_000

_NOT_RESENT = frozenset({"rewards.claim", "admin.raid.create"})
"""Ops without an idempotency key: after a lost connection they raise instead of resending."""


async def connect(
    url: str,
    token: str,
    *,
    fmt: Format | str = Format.MSGPACK,
    reconnect: bool = True,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
    reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S,
    backoff: Backoff | None = None,
) -> RaidClient:
    """Connect to ``url`` (``ws://HOST:PORT/ws``) and log in with ``token``.

    Raises ``ConnectionLost`` when the server cannot be reached and ``Unauthenticated``
    when it refuses the token.
    """
    client = RaidClient(
        url,
        token,
        fmt=Format(fmt),
        reconnect=reconnect,
        request_timeout=request_timeout,
        reconnect_timeout=reconnect_timeout,
        backoff=backoff,
    )
    await client.open()
    return client


class RaidClient:
    """A logged-in client; use ``connect()`` to make one. Also an async context manager."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        fmt: Format = Format.MSGPACK,
        reconnect: bool = True,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.format = fmt
        self.reconnect = reconnect  # reconnect and resend after a lost connection
        self.request_timeout = request_timeout  # seconds a reply may take
        self.reconnect_timeout = reconnect_timeout  # seconds of failed reconnects before giving up
        self.backoff = backoff or Backoff()
        self.hello: Hello | None = None  # the latest hello.ok
        self.reconnects = 0  # successful reconnections so far
        self._conn: Connection | None = None
        self._reconnecting: asyncio.Task[Connection] | None = None  # shared by all waiters
        self._watchers: set[asyncio.Task[None]] = set()
        self._subscriptions: dict[str, Subscription] = {}  # raid_id -> its event stream
        self._closed = False

    # -- connection management ---------------------------------------------------------

    async def open(self) -> None:
        """Connect and log in (``connect()`` calls this)."""
        self._conn = await self._login()

    @property
    def user_id(self) -> str:
        if self.hello is None:
            raise ConnectionLost("not logged in")
        return self.hello.user_id

    async def _login(self) -> Connection:
        conn = await Connection.open(self.url, fmt=self.format, on_event=self._on_event)
        try:
            reply = await conn.request("hello", {"token": self.token}, self.request_timeout)
        except (ConnectionLost, RequestTimeout):
            await conn.close()
            raise
        if reply.get("op") != "hello.ok":
            await conn.close()
            raise _error(reply, "hello")
        self.hello = Hello.from_wire(reply)
        watcher = asyncio.create_task(self._watch(conn), name="raidclient-watch")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return conn

    async def _watch(self, conn: Connection) -> None:
        """Tell every event stream when ``conn`` drops, so it can resume."""
        await conn.closed.wait()
        if not self._closed:
            for subscription in self._subscriptions.values():
                subscription.connection_lost()

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is not None and conn.is_open:
            return conn
        if self._closed:
            raise ConnectionLost("the client is closed")
        if not self.reconnect:
            raise ConnectionLost(conn.close_reason if conn else "not connected")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.create_task(self._reconnect(), name="raidclient-reconnect")
        return await asyncio.shield(self._reconnecting)

    async def _reconnect(self) -> Connection:
        deadline = time.monotonic() + self.reconnect_timeout
        self.backoff.reset()
        while True:
            try:
                conn = await self._login()
            except (ConnectionLost, RequestTimeout) as exc:
                delay = self.backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise ConnectionLost(
                        f"could not reconnect to {self.url} within "
                        f"{self.reconnect_timeout:g} s: {exc}"
                    ) from None
                await asyncio.sleep(delay)
                continue
            self._conn = conn
            self.reconnects += 1
            self.backoff.reset()
            return conn

    async def close(self) -> None:
        """Close the connection; event streams end and later requests raise."""
        self._closed = True
        for subscription in list(self._subscriptions.values()):
            subscription.end()
        self._subscriptions.clear()
        if self._reconnecting is not None and not self._reconnecting.done():
            self._reconnecting.cancel()
        if self._conn is not None:
            await self._conn.close()
        for watcher in list(self._watchers):
            watcher.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- requests ----------------------------------------------------------------------

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send any op and return its ``<op>.ok`` reply map, or raise its error.

        Fields given as None are left out. The typed methods below are built on this.
        """
        body = {name: value for name, value in fields.items() if value is not None}
        while True:
            conn = await self._connection()
            try:
                reply = await conn.request(op, body, self.request_timeout)
            except ConnectionLost:
                if op in _NOT_RESENT or not self.reconnect or self._closed:
                    raise
                continue  # the next round reconnects and sends it again
            if reply.get("op") == f"{op}.ok":
                return reply
            raise _error(reply, op)

    async def _forget(self, subscription: Subscription) -> None:
        """Drop a stream that ended; unsubscribe only over a live connection."""
        if self._subscriptions.get(subscription.raid_id) is not subscription:
            return
        del self._subscriptions[subscription.raid_id]
        conn = self._conn
        if conn is not None and conn.is_open:
            with contextlib.suppress(ConnectionLost, RequestTimeout):
                await conn.request(
                    "raid.unsubscribe", {"raid_id": subscription.raid_id}, self.request_timeout
                )

    def _on_event(self, msg: dict[str, Any]) -> None:
        subscription = self._subscriptions.get(str(msg.get("raid_id")))
        if subscription is not None:
            subscription.deliver(msg)

    # -- session and player ops ----------------------------------------------------------

    async def ping(self) -> float:
        """The server's clock (unix seconds)."""
        reply = await self.request("ping")
        return parse("ping.ok", lambda: float(reply["server_time"]))

    async def hub(self, raid_id: str) -> Hub:
        return Hub.from_wire(await self.request("raid.hub", raid_id=raid_id))

    async def team_options(self, raid_id: str) -> TeamOptions:
        return TeamOptions.from_wire(await self.request("team.options", raid_id=raid_id))

    async def strike(
        self,
        raid_id: str,
        action: str,
        team: Iterable[str],
        strike_id: str | None = None,
    ) -> StrikeReport:
        """Strike; a missing ``strike_id`` is made here and kept for every resend."""
        fields = {
            "raid_id": raid_id,
            "action": action,
            "team": list(team),
            "strike_id": strike_id or uuid.uuid4().hex,
        }
        deadline = time.monotonic() + self.reconnect_timeout
        backoff = Backoff(initial=self.backoff.initial, maximum=self.backoff.maximum)
        while True:
            try:
                return StrikeReport.from_wire(await self.request("strike", **fields))
            except Unavailable:
                delay = backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)

    async def rewards(self, raid_id: str) -> Rewards:
        return Rewards.from_wire(await self.request("rewards.list", raid_id=raid_id))

    async def claim(self, raid_id: str, key: str) -> Reward:
        reply = await self.request("rewards.claim", raid_id=raid_id, key=key)
        return parse("rewards.claim.ok", lambda: Reward(str(reply["key"]), dict(reply["bundle"])))

    def subscribe(
        self, raid_id: str, since_seq: int | None = None, *, max_queue: int = DEFAULT_EVENT_QUEUE
    ) -> Subscription:
        """The raid's events as an async iterator that survives reconnects.

        ``async with client.subscribe(raid_id) as events: async for event in events: ...``
        The request is sent on ``start()``, entering the ``async with``, or the first
        iteration. One stream per raid: subscribing again replaces the previous stream.
        """
        old = self._subscriptions.get(raid_id)
        if old is not None:
            old.end()
        subscription = Subscription(self, raid_id, since_seq, max_queue)
        self._subscriptions[raid_id] = subscription
        return subscription

    async def unsubscribe(self, raid_id: str) -> None:
        subscription = self._subscriptions.pop(raid_id, None)
        if subscription is not None:
            subscription.end()
        await self.request("raid.unsubscribe", raid_id=raid_id)

    # -- operator ops (admin token) ------------------------------------------------------

    async def create_raid(
        self,
        boss: str,
        *,
        start: float | str | None = None,
        end: float | str | None = None,
        raid_id: str | None = None,
    ) -> str:
        """A new raid of boss template ``boss``; returns its raid_id."""
        reply = await self.request(
            "admin.raid.create", boss=boss, start=start, end=end, raid_id=raid_id
        )
        return parse("admin.raid.create.ok", lambda: str(reply["raid_id"]))

    async def end_raid(self, raid_id: str) -> str:
        """End a raid now; returns its final status."""
        reply = await self.request("admin.raid.end", raid_id=raid_id)
        return parse("admin.raid.end.ok", lambda: str(reply["status"]))

    async def grant_roster(
        self, user_id: str, characters: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        """Grant characters (maps as in docs/protocol.md); returns their ids."""
        reply = await self.request(
            "admin.roster.grant", user_id=user_id, characters=list(characters)
        )
        return parse("admin.roster.grant.ok", lambda: [str(i) for i in reply["character_ids"]])

    async def snapshot(self, raid_id: str) -> Snapshot:
        reply = await self.request("admin.snapshot", raid_id=raid_id)
        return parse(
            "admin.snapshot.ok", lambda: Snapshot(int(reply["snapshot_id"]), int(reply["seq"]))
        )

    async def pending_rewards(self, limit: int | None = None) -> list[PendingReward]:
        reply = await self.request("admin.rewards.pending", limit=limit)
        return parse(
            "admin.rewards.pending.ok",
            lambda: [
                PendingReward(
                    int(r["id"]),
                    str(r["raid_id"]),
                    str(r["user_id"]),
                    str(r["key"]),
                    dict(r["bundle"]),
                    float(r["at"]),
                )
                for r in reply["rewards"]
            ],
        )

    async def ack_rewards(self, ids: Iterable[int]) -> int:
        reply = await self.request("admin.rewards.ack", ids=list(ids))
        return parse("admin.rewards.ack.ok", lambda: int(reply["acked"]))


def _error(reply: Mapping[str, Any], op: str) -> Exception:
    if reply.get("op") == "error":
        return error_from_reply(reply)
    return ProtocolViolation(f"{op}: unexpected reply op {reply.get('op')!r}")


class Subscription:
    """One raid's event stream: typed events in ``seq`` order, and ``Resync`` markers.

    Survives reconnects: after a lost connection it subscribes again with ``since_seq``
    (the last seq it yielded); the server replays what was missed, or answers
    ``resync``. On resync, a gap in ``seq``, or a consumer so slow that ``max_queue``
    events piled up, it yields one ``Resync`` carrying a fresh ``raid.hub`` and goes on
    with live events. Duplicates (seq already yielded) are dropped.
    """

    def __init__(self, client: RaidClient, raid_id: str, since_seq: int | None, max_queue: int):
        self.client = client
        self.raid_id = raid_id
        self.seq: int | None = since_seq  # the last seq yielded (or resumed from)
        self.max_queue = max_queue  # events held for a slow consumer before a resync
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = asyncio.Event()  # set when something changed for the consumer
        self._started = False
        self._lost = False  # the connection dropped: subscribe again before going on
        self._overflowed = False  # the queue hit max_queue: resync
        self._ended = False
        self._marker: Resync | None = None  # a Resync to yield next

    async def start(self) -> int:
        """Send ``raid.subscribe`` (with ``since_seq`` if given); returns the raid's seq."""
        self._started = True
        return await self._subscribe(self.seq)

    async def _subscribe(self, since_seq: int | None) -> int:
        reply = await self.client.request(
            "raid.subscribe", raid_id=self.raid_id, since_seq=since_seq
        )
        seq = parse("raid.subscribe.ok", lambda: int(reply["seq"]))
        if since_seq is None:
            self.seq = seq
        elif reply.get("resync"):
            await self._resync(seq)
        return seq

    async def _resync(self, seq: int | None = None) -> None:
        """Continue live from ``seq`` (or from a fresh subscribe), with a hub marker."""
        if seq is None:
            reply = await self.client.request("raid.subscribe", raid_id=self.raid_id)
            seq = parse("raid.subscribe.ok", lambda: int(reply["seq"]))
        hub = await self.client.hub(self.raid_id)
        self.seq = seq
        self._marker = Resync(self.raid_id, seq, hub)

    def deliver(self, msg: dict[str, Any]) -> None:
        """Called by the client for every event of this raid (on the event loop)."""
        if len(self._queue) >= self.max_queue:
            self._queue.clear()
            self._overflowed = True
        else:
            self._queue.append(msg)
        self._wake.set()

    def connection_lost(self) -> None:
        self._lost = True
        self._wake.set()

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event | Resync:
        if not self._started:
            await self.start()
        while True:
            if self._ended:
                raise StopAsyncIteration
            if self._marker is not None:
                marker, self._marker = self._marker, None
                return marker
            if self._lost:
                self._lost = False
                await self._subscribe(self.seq)
                continue
            if self._overflowed:
                self._overflowed = False
                await self._resync()
                continue
            if self._queue:
                msg = self._queue.popleft()
                seq = msg.get("seq")
                if not isinstance(seq, int):
                    raise ProtocolViolation(f"event without an integer seq: {msg!r}")
                if self.seq is not None and seq <= self.seq:
                    continue  # already yielded (a replay overlapping what we had)
                if self.seq is not None and seq != self.seq + 1:
                    await self._resync()
                    continue
                self.seq = seq
                return event_from_wire(msg)
            self._wake.clear()
            await self._wake.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end()
        await self.client._forget(self)
