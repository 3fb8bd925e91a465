"""The raid host's end of the NATS link: requests in, the real ``RaidService`` answers.

A raid host owns raids (today's actor core, actors/service.py) and serves them to gateway
processes over NATS (subjects in server/raid_link.py). It subscribes to every request subject
in the queue group ``raid-hosts``, runs each request as its own task (a strike batch waits for
its journal commit; it must not hold back the next request), and publishes each raid's events
once on ``<prefix>.raid.<raid>.events``.

Subscriptions and ``since_seq``: the replay buffer stays where it is, in the host's
BroadcasterActor. The host subscribes ONE subscriber per raid (``nats``) to the broadcaster;
a gateway's ``subscribe`` request is answered with the broadcaster's reply (``seq``,
``resync``) and replay for that ``since_seq``, and the gateway itself tracks which of its
sessions follow which raid (server/remote_raids.py). The host therefore knows no session and
does no per-session work: events cost it one publish per batch, whatever the audience.

Overload: at most ``max_in_flight`` requests run at once; past that a request is answered
``unavailable`` with ``retry_after`` at once, so a burst never builds an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from actors.api import RaidApi
from actors.raids import CharacterGrant
from raid.config import Action
from raid.errors import ErrorCode, RaidError
from server import raid_link as link

log = logging.getLogger("raid.host")

HOST_SUBSCRIBER = "nats"
"""The one broadcaster subscriber per raid: the raid's NATS events subject."""

PROBE_SUBSCRIBER = "nats-probe"
"""A subscriber id that never subscribes: ``unsubscribe`` requests only check the raid."""

SUBSCRIBE_TIMEOUT_S = 5.0
"""How long a subscribe request waits for the broadcaster's reply."""

DEFAULT_MAX_IN_FLIGHT = 10_000
"""Requests (a strike batch counts as one) running at once before new ones are shed."""

MAX_UNPUBLISHED = 10_000
"""Event batches waiting for NATS (it is down, or slower than the raids): past this the
oldest are dropped; gateways then see a gap in ``seq`` and their clients resubscribe."""

Handler = Callable[[str | None, dict[str, Any]], Awaitable[Any]]


class RaidHost:
    """Serves a ``RaidApi`` (the real ``RaidService``) on NATS; also its ``EventSink``."""

    def __init__(
        self,
        service: RaidApi,
        nc: NATS,
        prefix: str = link.DEFAULT_PREFIX,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.service = service  # the raids this host owns
        self.nc = nc  # connected NATS client
        self.prefix = prefix  # subject prefix shared with the gateways
        self.max_in_flight = max_in_flight  # requests at once; past it, shed with unavailable
        self._subs: list[Subscription] = []  # request subscriptions, dropped by stop()
        self._tasks: set[asyncio.Task[None]] = set()  # requests being answered
        self._tokens = itertools.count(1)  # subscribe request -> broadcaster reply matching
        self._waiting: dict[str, asyncio.Future[tuple[dict[str, Any], list[Any]]]] = {}
        self._outbox: deque[tuple[str, bytes]] = deque()  # events to publish, in order
        self._outbox_ready = asyncio.Event()  # set when the outbox has something
        self._publisher: asyncio.Task[None] | None = None  # publishes the outbox in order
        self.instance = uuid.uuid4().hex  # this process's heartbeat id: a restart changes it
        self._heartbeat: asyncio.Task[None] | None = None  # publishes hosts.alive
        self.dropped_batches = 0  # event batches dropped because NATS could not keep up
        self.started = time.monotonic()  # heartbeats carry the uptime: see RemoteRaids._heard
        self.epoch = 0  # NATS reconnections so far: replies of an older epoch may be lost
        self._handlers: dict[str, Handler] = {
            "hub": self._hub,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "team_options": self._team_options,
            "strikes": self._strikes,
            "rewards_list": self._rewards_list,
            "rewards_claim": self._rewards_claim,
            "end_raid_status": self._end_raid_status,
            "take_snapshot": self._take_snapshot,
            "restore_to_snapshot": self._restore_to_snapshot,
        }
        self._api_handlers: dict[str, Handler] = {
            "hello": self._hello,
            "create_raid": self._create_raid,
            "grant_roster": self._grant_roster,
            "rewards_pending": self._rewards_pending,
            "rewards_ack": self._rewards_ack,
        }

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        """Attach to the service and subscribe to every request subject (queue group)."""
        self.service.attach(self)
        self._publisher = asyncio.create_task(self._publish_loop(), name="raid-host-events")
        for op in self._handlers:
            subject = f"{self.prefix}.raid.*.{op}"
            self._subs.append(
                await self.nc.subscribe(subject, queue=link.QUEUE_GROUP, cb=self._on_request)
            )
        for op in self._api_handlers:
            self._subs.append(
                await self.nc.subscribe(
                    link.api_subject(self.prefix, op), queue=link.QUEUE_GROUP, cb=self._on_request
                )
            )
        await self.nc.flush()
        self._heartbeat = asyncio.create_task(self._beat(), name="raid-host-heartbeat")

    async def _beat(self) -> None:
        """Tell the gateways this host lives, so they notice quickly when it no longer does."""
        subject = link.heartbeat_subject(self.prefix)
        while True:
            try:
                uptime = time.monotonic() - self.started
                beat = link.pack({"instance": self.instance, "epoch": self.epoch, "uptime": uptime})
                await self.nc.publish(subject, beat)
            except nats.errors.Error as exc:  # NATS down: the gateways notice the silence
                log.debug("heartbeat not sent: %s", exc)
            await asyncio.sleep(link.HEARTBEAT_S)

    def reconnected(self) -> None:
        """The NATS link came back: replies sent meanwhile may be lost, so the next heartbeat
        (a new epoch) tells the gateways to fail the requests they sent before."""
        self.epoch += 1

    async def stop(self) -> None:
        """Stop taking requests, let those under way answer, publish the last events."""
        for sub in self._subs:
            with contextlib.suppress(nats.errors.Error):  # the connection may already be gone
                await sub.unsubscribe()
        self._subs.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        if self._heartbeat is not None:  # beating until the last answer went out
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._publisher is not None:
            self._outbox.append(("", b""))  # end marker
            self._outbox_ready.set()
            await self._publisher

    # -- actors.api.EventSink ---------------------------------------------------------------

    def subscribed(
        self, subscriber_id: str, reply: dict[str, Any], replay: list[dict[str, Any]]
    ) -> None:
        waiter = self._waiting.pop(str(reply.get("rid")), None)
        if waiter is not None and not waiter.done():
            waiter.set_result((reply, replay))

    def deliver(self, subscriber_ids: Sequence[str], events: list[dict[str, Any]]) -> None:
        if not events:
            return
        raid_id = str(events[0]["raid_id"])  # the broadcaster sends one raid per delivery
        if len(self._outbox) >= MAX_UNPUBLISHED:
            self._outbox.popleft()
            self.dropped_batches += 1
            if self.dropped_batches == 1 or self.dropped_batches % 1000 == 0:
                log.warning(
                    "events not published in time: %d batches dropped", self.dropped_batches
                )
        self._outbox.append((link.events_subject(self.prefix, raid_id), link.pack(events)))
        self._outbox_ready.set()

    async def _publish_loop(self) -> None:
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            subject, data = self._outbox.popleft()
            if not subject:
                return
            try:
                await self.nc.publish(subject, data)
            except nats.errors.Error as exc:  # NATS down: gateways see a seq gap, clients resync
                log.warning("events of %s not published: %s", subject, exc)

    # -- requests ---------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        if len(self._tasks) >= self.max_in_flight:
            await self._respond(msg, _error(link.unavailable("the raid host is overloaded")))
            return
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        try:
            body = link.unpack(msg.data)
            if parts[1] == "api":
                value = await self._api_handlers[parts[2]](None, body)
            else:
                value = await self._handlers[parts[3]](parts[2], body)
            data = link.ok(value)
        except RaidError as exc:
            data = _error(exc)
        except Exception:  # a bug answers internal; the host lives on
            log.exception("request %s failed", msg.subject)
            data = _error(RaidError(ErrorCode.INTERNAL, "internal error"))
        await self._respond(msg, data)

    async def _respond(self, msg: Msg, data: bytes) -> None:
        if not msg.reply:
            return
        try:
            await msg.respond(data)
        except nats.errors.Error as exc:  # link down: the gateway times out with unavailable
            log.warning("reply to %s lost: %s", msg.subject, exc)

    # -- one handler per op -----------------------------------------------------------------

    async def _hello(self, _: str | None, body: dict[str, Any]) -> Any:
        return await self.service.hello(body["user_id"], body["role"])

    async def _hub(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        return await self.service.hub(body["user_id"], _raid(raid_id))

    async def _subscribe(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        token = str(next(self._tokens))
        waiter: asyncio.Future[tuple[dict[str, Any], list[Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting[token] = waiter
        try:
            await self.service.subscribe(HOST_SUBSCRIBER, _raid(raid_id), body["since_seq"], token)
            reply, replay = await asyncio.wait_for(waiter, SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            raise link.unavailable("the raid's event stream did not answer in time") from None
        finally:
            self._waiting.pop(token, None)
        fields = {k: v for k, v in reply.items() if k != "rid"}
        return {"reply": fields, "replay": replay}

    async def _unsubscribe(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        # The gateway tracks its sessions; the host only checks that the raid exists (a
        # subscriber that never subscribed is unsubscribed: the broadcaster ignores it).
        await self.service.unsubscribe(PROBE_SUBSCRIBER, _raid(raid_id))
        return None

    async def _team_options(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        return await self.service.team_options(body["user_id"], _raid(raid_id))

    async def _strikes(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        """One batch from a gateway: every strike through the service's hot path (no task
        per strike), answered together once the last one is committed or refused."""
        raid = _raid(raid_id)
        items = body["strikes"]
        results: list[dict[str, Any] | None] = [None] * len(items)
        finished = asyncio.get_running_loop().create_future()
        left = [len(items)]

        def answer(index: int, report: dict[str, Any] | None, error: BaseException | None) -> None:
            if error is None:
                results[index] = {"ok": report}
            else:
                if not isinstance(error, RaidError):  # one strike's bug must not fail its batch
                    log.error("strike failed", exc_info=error, extra={"raid": raid})
                    error = RaidError(ErrorCode.INTERNAL, "internal error")
                results[index] = {"error": link.error_to_data(error)}
            left[0] -= 1
            if not left[0] and not finished.done():
                finished.set_result(None)

        for index, (user_id, action, team, strike_id) in enumerate(items):
            done = functools.partial(answer, index)
            try:
                self.service.strike_nowait(user_id, raid, Action(action), team, strike_id, done)
            except Exception as exc:  # noqa: BLE001 - answered (and a bug logged) by answer()
                done(None, exc)
        if items:
            await finished
        return results

    async def _rewards_list(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        return await self.service.rewards_list(body["user_id"], _raid(raid_id))

    async def _rewards_claim(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        return await self.service.rewards_claim(body["user_id"], _raid(raid_id), body["key"])

    async def _end_raid_status(self, raid_id: str | None, _: dict[str, Any]) -> Any:
        return await self.service.end_raid_status(_raid(raid_id))

    async def _take_snapshot(self, raid_id: str | None, _: dict[str, Any]) -> Any:
        return await self.service.take_snapshot(_raid(raid_id))

    async def _restore_to_snapshot(self, raid_id: str | None, body: dict[str, Any]) -> Any:
        return await self.service.restore_to_snapshot(_raid(raid_id), body["snapshot_id"])

    async def _create_raid(self, _: str | None, body: dict[str, Any]) -> Any:
        return await self.service.create_raid(
            body["boss"], start=body["start"], end=body["end"], raid_id=body["raid_id"]
        )

    async def _grant_roster(self, _: str | None, body: dict[str, Any]) -> Any:
        grants = [
            CharacterGrant(g["character_id"], g["name"], g["rarity"], g["stats"], tuple(g["tags"]))
            for g in body["grants"]
        ]
        return await self.service.grant_roster(body["user_id"], grants)

    async def _rewards_pending(self, _: str | None, body: dict[str, Any]) -> Any:
        return await self.service.rewards_pending(body["limit"])

    async def _rewards_ack(self, _: str | None, body: dict[str, Any]) -> Any:
        return await self.service.rewards_ack(body["ids"])


def _raid(raid_id: str | None) -> str:
    assert raid_id is not None  # raid subjects always carry one
    return raid_id


def _error(exc: RaidError) -> bytes:
    return link.pack({"error": link.error_to_data(exc)})
