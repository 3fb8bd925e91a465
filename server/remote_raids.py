"""``RemoteRaids``: the ``RaidApi`` of a gateway process, served by raid hosts over NATS.

The gateway (server/gateway.py) uses it exactly as it uses the in-process ``RaidService``.

Strikes: every strike of one event-loop iteration for one raid goes to the host as ONE
request (``<prefix>.raid.<raid>.strikes``, at most ``max_batch`` strikes); the host answers
with the batch of committed results (or refusals), which are handed back to their callers.
A request costs ~300 µs of NATS round trip from Python, so one request per strike would cap
a gateway far below what it can decode. Other ops are one request each.

Failures: no host subscribed raises ``unavailable`` with ``retry_after`` at once. A host that
dies or a NATS link that drops while requests are in flight is noticed by the host's missing
heartbeat (``<prefix>.hosts.alive``, every 0.5 s; silent for 3 s, or a new host instance,
means lost): those requests end ``unavailable`` with ``retry_after`` at once rather than at
their timeout. A strike among them may have been committed just before (its reply was lost);
the client retries with the same ``strike_id`` and the host's idempotence returns the original
report, so nothing is applied twice. While the host lives, its own answer always comes first:
``timeout_s`` (35 s) is longer than the host's 30 s deadline, so a live host's ``unavailable``
keeps its meaning, "nothing was changed".

Events: when one of its sessions subscribes to a raid, the gateway subscribes (once per raid)
to ``<prefix>.raid.<raid>.events`` and then asks the host for the subscribe reply and the
``since_seq`` replay (the replay buffer lives with the host's broadcaster). Events and replies
reach this process on two NATS subscriptions, which nats-py serves independently, so the
reply's ``seq`` decides what a new subscriber gets: the replay, then events already received
with a higher seq (kept in a small per-raid buffer), then live events past its ``seq`` only.
Every session thus sees each seq once, in order, as from the single-process server. A gap in
the stream (NATS dropped messages, the host restarted) is passed on as is: clients resync on a
gap, as they do after a lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from actors.api import EventSink, Rid, StrikeDone
from actors.raids import CharacterGrant
from raid.config import Action
from raid.errors import RaidError
from server import raid_link as link

log = logging.getLogger("raid.remote")

DEFAULT_TIMEOUT_S = link.REQUEST_TIMEOUT_S

NO_RESPONDERS_PAUSES_S = (0.02, 0.05, 0.1)
"""Pauses before asking again when NATS says no host subscribes: a host's subscription can
reach the server a moment after another client saw it answer (observed with nats-server
2.15 right after start-up), so "no responders" is believed only after a few tries (~170 ms)."""

LATE_START_MARGIN_S = 0.2
"""A request sent before any heartbeat was heard is lost if the first host heard started
this much after it (heartbeat delivery takes milliseconds; the margin keeps it safe)."""

DEFAULT_MAX_BATCH = 256
"""Strikes per request: bounds a request's size (NATS' max_payload is 1 MB by default)."""

DEFAULT_RECENT_EVENTS = 256
"""Events kept per raid to bridge a subscribe reply that overtook the events before it."""


class RemoteRaids:
    """Implements actors.api.RaidApi over NATS."""

    def __init__(
        self,
        nc: NATS,
        prefix: str = link.DEFAULT_PREFIX,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        recent_events: int = DEFAULT_RECENT_EVENTS,
    ) -> None:
        self.nc = nc  # connected NATS client
        self.prefix = prefix  # subject prefix shared with the hosts
        self.timeout_s = timeout_s  # per request
        self.max_batch = max_batch  # strikes per request
        self.recent_events = recent_events  # per-raid buffer of received events
        self.sink: EventSink | None = None  # where events go (the gateway attaches it)
        self.ready = True  # for /readyz: the gateway serves as soon as it is connected
        self._batches: dict[str, _StrikeBatch] = {}  # raid -> strikes of this loop iteration
        self._sending: set[asyncio.Task[None]] = set()  # batch requests in flight
        self._feeds: dict[str, _Feed] = {}  # raid -> its events subscription and followers
        self._following: dict[str, set[str]] = {}  # subscriber id -> raids it follows
        self.batches_sent = 0  # strike requests sent (tests, metrics)
        self._host: tuple[str, int] | None = None  # (instance, epoch) of the host last heard
        self._host_heard = time.monotonic()  # when it was last heard
        self._waiters: dict[asyncio.Future[str], _Sent] = {}  # requests -> host and time at send
        self._liveness: list[Any] = []  # heartbeat subscription and watchdog task

    async def start(self) -> None:
        """Follow the hosts' heartbeats: requests in flight to a lost host fail at once."""
        sub = await self.nc.subscribe(link.heartbeat_subject(self.prefix), cb=self._heard)
        self._liveness = [sub, asyncio.create_task(self._watch(), name="raid-host-watch")]

    async def _heard(self, msg: Msg) -> None:
        try:
            beat = link.unpack(msg.data)
            heard = (str(beat["instance"]), int(beat["epoch"]))
            started = time.monotonic() - float(beat["uptime"])  # on our clock, give or take
        except (ValueError, KeyError, TypeError):
            return
        self._host_heard = time.monotonic()
        if heard == self._host:
            return
        self._host = heard

        def lost(sent: _Sent) -> bool:
            if sent.host is None:  # sent before we heard any host: lost if this one is younger
                return sent.at < started - LATE_START_MARGIN_S
            return sent.host != heard  # another instance, or an older link epoch

        self._lose(lost, "the raid host restarted or its link to NATS dropped")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(link.HEARTBEAT_S)
            silent = time.monotonic() - self._host_heard
            if self._waiters and silent > link.HOST_SILENT_S:
                self._lose(lambda _: True, f"the raid host is silent for {silent:.1f} s")

    def link_lost(self) -> None:
        """Our NATS connection dropped: requests in flight may have lost their reply."""
        self._lose(lambda _: True, "the link to the raid host dropped")

    def _lose(self, sent_to: Callable[[_Sent], bool], why: str) -> None:
        for waiter, sent in list(self._waiters.items()):
            if sent_to(sent) and not waiter.done():
                waiter.set_result(why)

    @property
    def feeds(self) -> int:
        """Raids whose events this gateway follows (bounded by the raids its sessions follow)."""
        return len(self._feeds)

    def attach(self, sink: EventSink) -> None:
        self.sink = sink

    async def close(self) -> None:
        """Let strike batches in flight finish, drop the event subscriptions."""
        if self._sending:
            await asyncio.wait(set(self._sending))
        for part in self._liveness:
            if isinstance(part, asyncio.Task):
                part.cancel()
            else:
                with contextlib.suppress(nats.errors.Error):
                    await part.unsubscribe()
        self._liveness = []
        for feed in list(self._feeds.values()):
            await feed.close()
        self._feeds.clear()

    # -- requests ---------------------------------------------------------------------------

    async def _request(self, subject: str, body: dict[str, Any]) -> Any:
        payload = link.pack(body)
        for pause in NO_RESPONDERS_PAUSES_S:
            try:
                msg = await self._ask(subject, payload)
                break
            except nats.errors.NoRespondersError:
                await asyncio.sleep(pause)
        else:
            raise link.unavailable("no raid host is serving right now; try again")
        return link.answer_of(msg.data)

    async def _ask(self, subject: str, payload: bytes) -> Msg:
        """One request; ``unavailable`` if the host is lost or silent meanwhile."""
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[lost] = _Sent(self._host, time.monotonic())
        asked = asyncio.ensure_future(self.nc.request(subject, payload, timeout=self.timeout_s))
        try:
            await asyncio.wait((asked, lost), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # our caller was cancelled: so is its request
            asked.cancel()
            raise
        finally:
            del self._waiters[lost]
        if not asked.done():
            asked.cancel()
            with contextlib.suppress(asyncio.CancelledError, nats.errors.Error):
                await asked
            raise link.unavailable(
                f"{lost.result()} while answering; if this was a strike it may have been "
                "applied: retry it with the same strike_id"
            )
        try:
            return asked.result()
        except nats.errors.NoRespondersError:
            raise
        except nats.errors.TimeoutError:
            raise link.unavailable("the raid host did not answer in time; try again") from None
        except nats.errors.Error as exc:
            raise link.unavailable(f"the raid host cannot be reached ({exc}); try again") from None

    async def _api(self, op: str, **body: Any) -> Any:
        return await self._request(link.api_subject(self.prefix, op), body)

    async def _on_raid(self, raid_id: str, op: str, **body: Any) -> Any:
        return await self._request(link.raid_subject(self.prefix, raid_id, op), body)

    async def hello(self, user_id: str, role: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._api("hello", user_id=user_id, role=role)
        return result

    async def hub(self, user_id: str, raid_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(raid_id, "hub", user_id=user_id)
        return result

    async def team_options(self, user_id: str, raid_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(raid_id, "team_options", user_id=user_id)
        return result

    async def rewards_list(self, user_id: str, raid_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(raid_id, "rewards_list", user_id=user_id)
        return result

    async def rewards_claim(self, user_id: str, raid_id: str, key: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(
            raid_id, "rewards_claim", user_id=user_id, key=key
        )
        return result

    async def create_raid(
        self,
        boss: str,
        start: float | None = None,
        end: float | None = None,
        raid_id: str | None = None,
    ) -> str:
        return str(await self._api("create_raid", boss=boss, start=start, end=end, raid_id=raid_id))

    async def end_raid_status(self, raid_id: str) -> str:
        return str(await self._on_raid(raid_id, "end_raid_status"))

    async def grant_roster(self, user_id: str, grants: list[CharacterGrant]) -> list[str]:
        plain = [
            {
                "character_id": g.character_id,
                "name": g.name,
                "rarity": g.rarity,
                "stats": dict(g.stats),
                "tags": list(g.tags),
            }
            for g in grants
        ]
        return [str(i) for i in await self._api("grant_roster", user_id=user_id, grants=plain)]

    async def take_snapshot(self, raid_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(raid_id, "take_snapshot")
        return result

    async def restore_to_snapshot(self, raid_id: str, snapshot_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._on_raid(
            raid_id, "restore_to_snapshot", snapshot_id=snapshot_id
        )
        return result

    async def rewards_pending(self, limit: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._api("rewards_pending", limit=limit)
        return result

    async def rewards_ack(self, ids: Sequence[int]) -> int:
        return int(await self._api("rewards_ack", ids=list(ids)))

    # -- strikes, batched per raid and loop iteration ----------------------------------------

    async def strike(
        self, user_id: str, raid_id: str, action: Action, team: Sequence[str], strike_id: str
    ) -> dict[str, Any]:
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def done(report: dict[str, Any] | None, error: BaseException | None) -> None:
            if waiter.done():  # the caller went away (its connection closed)
                return
            if error is not None:
                waiter.set_exception(error)
            else:
                assert report is not None
                waiter.set_result(report)

        self.strike_nowait(user_id, raid_id, action, team, strike_id, done)
        return await waiter

    def strike_nowait(
        self,
        user_id: str,
        raid_id: str,
        action: Action,
        team: Sequence[str],
        strike_id: str,
        done: StrikeDone,
    ) -> None:
        subject = link.raid_subject(self.prefix, raid_id, "strikes")
        batch = self._batches.get(raid_id)
        if batch is None or len(batch.items) >= self.max_batch:
            batch = self._batches[raid_id] = _StrikeBatch(subject)
            asyncio.get_running_loop().call_soon(self._send, raid_id, batch)
        batch.items.append([user_id, action.value, list(team), strike_id])
        batch.waiters.append(done)

    def _send(self, raid_id: str, batch: _StrikeBatch) -> None:
        if self._batches.get(raid_id) is batch:
            del self._batches[raid_id]
        task = asyncio.create_task(self._send_batch(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_batch(self, batch: _StrikeBatch) -> None:
        self.batches_sent += 1
        try:
            results = await self._request(batch.subject, {"strikes": batch.items})
        except RaidError as exc:
            for done in batch.waiters:
                done(None, exc)
            return
        except BaseException as exc:  # a bug or a cancellation: no caller may hang
            for done in batch.waiters:
                done(None, exc)
            raise
        for done, result in zip(batch.waiters, results, strict=True):
            if "error" in result:
                done(None, link.error_from_data(result["error"]))
            else:
                done(result["ok"], None)

    # -- subscriptions and events -----------------------------------------------------------

    async def subscribe(
        self, subscriber_id: str, raid_id: str, since_seq: int | None, rid: Rid
    ) -> None:
        subject = link.events_subject(self.prefix, raid_id)
        feed = self._feeds.get(raid_id)
        if feed is None:
            feed = self._feeds[raid_id] = _Feed(self, raid_id)
            await feed.open(subject)
        feed.waiting += 1
        try:
            answer = await self._on_raid(raid_id, "subscribe", since_seq=since_seq)
        except RaidError:  # an unknown raid must not leave a subscription behind
            feed.waiting -= 1
            await self._maybe_close(raid_id)
            raise
        except BaseException:
            feed.waiting -= 1
            raise
        feed.waiting -= 1
        reply: dict[str, Any] = {"rid": rid, **answer["reply"]}
        replay: list[dict[str, Any]] = list(answer["replay"])
        seq = int(reply["seq"])
        replay.extend(e for e in feed.recent if e["seq"] > seq)
        last = replay[-1]["seq"] if replay else seq
        if feed.last_seq is not None and feed.last_seq >= last:
            feed.followers[subscriber_id] = None
        else:
            feed.pending[subscriber_id] = last  # live events past ``last`` only
        self._following.setdefault(subscriber_id, set()).add(raid_id)
        if self.sink is not None:
            self.sink.subscribed(subscriber_id, reply, replay)
        await self._maybe_close(raid_id)

    async def unsubscribe(self, subscriber_id: str, raid_id: str) -> None:
        await self._on_raid(raid_id, "unsubscribe")
        self._drop(subscriber_id, raid_id)
        self._following.get(subscriber_id, set()).discard(raid_id)
        await self._maybe_close(raid_id)

    def subscriber_gone(self, subscriber_id: str) -> None:
        for raid_id in self._following.pop(subscriber_id, set()):
            self._drop(subscriber_id, raid_id)
            feed = self._feeds.get(raid_id)
            if feed is not None and feed.idle:
                task = asyncio.ensure_future(self._maybe_close(raid_id))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    def _drop(self, subscriber_id: str, raid_id: str) -> None:
        feed = self._feeds.get(raid_id)
        if feed is not None:
            feed.followers.pop(subscriber_id, None)
            feed.pending.pop(subscriber_id, None)

    async def _maybe_close(self, raid_id: str) -> None:
        """Leave the raid's events subject once no session of ours follows the raid."""
        feed = self._feeds.get(raid_id)
        if feed is not None and feed.idle:
            del self._feeds[raid_id]
            await feed.close()

    def _events(self, feed: _Feed, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        feed.recent.extend(events)
        feed.last_seq = int(events[-1]["seq"])
        sink = self.sink
        if sink is None:
            return
        if feed.followers:
            sink.deliver(tuple(feed.followers), events)
        for subscriber_id, after in list(feed.pending.items()):
            newer = [e for e in events if e["seq"] > after]
            if newer:
                sink.deliver((subscriber_id,), newer)
            if feed.last_seq >= after:
                del feed.pending[subscriber_id]
                feed.followers[subscriber_id] = None


class _Sent(NamedTuple):
    host: tuple[str, int] | None  # (instance, link epoch) of the host heard last, if any
    at: float  # monotonic time the request was sent


class _StrikeBatch:
    __slots__ = ("items", "subject", "waiters")

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.items: list[list[Any]] = []  # [user_id, action, team, strike_id]
        self.waiters: list[StrikeDone] = []  # one per item, same order


class _Feed:
    """One raid's events subscription in this gateway process, and who follows it here."""

    def __init__(self, owner: RemoteRaids, raid_id: str) -> None:
        self.owner = owner
        self.raid_id = raid_id
        self.sub: Subscription | None = None  # the NATS subscription
        self.followers: dict[str, None] = {}  # subscriber ids receiving every live event
        self.pending: dict[str, int] = {}  # subscriber id -> seq it has up to (joining)
        self.recent: deque[dict[str, Any]] = deque(maxlen=owner.recent_events)
        self.last_seq: int | None = None  # seq of the newest event received
        self.waiting = 0  # subscribe requests in flight

    @property
    def idle(self) -> bool:
        return not self.followers and not self.pending and not self.waiting

    async def open(self, subject: str) -> None:
        # Subscribed before the subscribe request goes out on the same connection: the NATS
        # server sees the SUB first, so no event after the reply's seq can be missed.
        self.sub = await self.owner.nc.subscribe(subject, cb=self._on_msg)

    async def close(self) -> None:
        sub, self.sub = self.sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
            except nats.errors.Error as exc:
                log.debug("unsubscribe from %s: %s", self.raid_id, exc)

    async def _on_msg(self, msg: Msg) -> None:
        try:
            events = link.unpack(msg.data)
        except ValueError:
            log.error("undecodable events for raid %s dropped", self.raid_id)
            return
        self.owner._events(self, events)
