"""RaidService: the raids behind the one interface the gateway uses (actors.api.RaidApi).

It runs on the event loop and never blocks on an actor: requests go out with ``tell`` and a
``Reply`` and come back as asyncio futures (actors.calls). It builds and owns the parts, each
in a file that says what it does:

- actors/supervision.py   live raids: restore on demand, start, restart when broken
- actors/commit_feed.py   RaidActor journal entries -> JournalWriter -> answers, events,
                          shadow state, status changes
- actors/snapshots.py     snapshot scheduling
- actors/rosters.py       the roster cache
- actors/strike_id_lookups.py  journal lookups of possibly repeated strike_ids, batched
- actors/calls.py         requests to actors and their deadlines

and a clock drives raid status changes, hp coalescing, idle PlayerActor eviction and the
unloading of idle finished raids.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import pykka

from actors.api import EventSink, Rid, StrikeDone, Telemetry, settle
from actors.bridge import LoopBridge, Reply
from actors.broadcaster import (
    BroadcasterActor,
    BroadcastSinks,
    DropSubscriber,
    FlushTick,
    Subscribe,
    Unsubscribe,
)
from actors.calls import ActorCalls
from actors.commit_feed import CommitFeed
from actors.live_restore import restore_live
from actors.loop_actor import LoopDispatcher
from actors.messages import (
    CheckJournal,
    ClaimableRequest,
    ClaimOutcome,
    DuplicateStrike,
    EndRaidRequest,
    HubRequest,
    StrikeOutcome,
    StrikeRequest,
    TeamOptionsRequest,
    Tick,
)
from actors.player_actor import PlayerClaim, PlayerStrike
from actors.players import PlayerPool
from actors.raids import CharacterGrant, create_raid, validate_grants
from actors.rosters import RosterCache
from actors.snapshots import SnapshotScheduler
from actors.snapshotter import Snapshotter
from actors.strike_id_lookups import StrikeIdLookups
from actors.supervision import LiveRaid, RaidSupervisor
from persistence.database import Database
from persistence.errors import JournalWriteFailed, RosterConflict
from persistence.journal import JournalEntry, JournalWriter
from persistence.records import SnapshotInfo
from raid.codec import result_from_dict
from raid.config import Action, Config, CurseKind
from raid.errors import ErrorCode, Rejection, Unavailable
from raid.models import RaidStatus, Roster
from raid.strike import StrikeCommand
from raid.views import strike_report

log = logging.getLogger(__name__)

_T = TypeVar("_T")

STATUS_TICK_S = 1.0
REAP_EVERY_S = 5.0


def _committed(entry: JournalEntry | None) -> bool:
    """True when there is nothing to wait for: no entry, or one committed without error."""
    if entry is None:
        return True
    committed = entry.future
    return committed is not None and committed.done() and committed.exception() is None


class _Parts:
    """What start() builds once the loop runs."""

    def __init__(
        self,
        bridge: LoopBridge,
        dispatcher: LoopDispatcher,
        calls: ActorCalls,
        supervisor: RaidSupervisor,
        feed: CommitFeed,
        journal: JournalWriter,
        snapshots: SnapshotScheduler,
        broadcaster: pykka.ActorRef[Any],
        snapshotter: pykka.ActorRef[Any],
    ) -> None:
        self.bridge = bridge
        self.dispatcher = dispatcher
        self.calls = calls
        self.supervisor = supervisor
        self.feed = feed
        self.journal = journal
        self.snapshots = snapshots
        self.broadcaster = broadcaster
        self.snapshotter = snapshotter


class RaidService:
    """Implements actors.api.RaidApi."""

    def __init__(
        self,
        config: Config,
        db: Database,
        metrics: Telemetry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config  # validated configuration
        self.db = db  # opened Database
        self.metrics = metrics  # where the actors report their counts and durations
        self.clock = clock  # wall clock (unix seconds) handed to the rules as ``now``
        self.sink: EventSink | None = None  # where events go (the gateway attaches it)
        self.rosters = RosterCache(db, config.actors.roster_cache)
        self.strike_ids = StrikeIdLookups(db)  # journal lookups of possible older repeats
        self.players = PlayerPool(
            config.actors.max_player_actors,
            config.actors.player_idle_s,
            safe_team_size(config),
            config.actors.strike_id_window,
            on_count=lambda n: self.metrics.actors_live("player", n),
        )
        self.parts: _Parts | None = None  # built by start()
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False  # True once every unfinished raid is restored
        self.final_snapshots = 0  # snapshots taken by stop() (shutdown summary)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the actors and restore every unfinished raid before accepting clients."""
        loop = asyncio.get_running_loop()
        actors = self.config.actors  # queue bounds: actors/inbox.py, actors/bridge.py
        bridge = LoopBridge(loop, actors.bridge_queue)
        dispatcher = self.players.dispatcher = LoopDispatcher(loop, inbox_limit=actors.player_inbox)
        broadcaster = BroadcasterActor.start(
            BroadcastSinks(
                post=bridge.post,
                deliver=self._deliver,
                subscribed=self._subscribed,
                coalesced=self.metrics.count_coalesced,
            ),
            self.config.actors.replay_buffer,
        )
        snapshotter = Snapshotter.start(self.config.actors.strike_id_window)
        self.metrics.actors_live("other", 2)
        snapshot_lock = asyncio.Lock()  # snapshots form a chain; a rewrite waits for one
        feeds: list[CommitFeed] = []  # the feed and the supervisor report to each other
        supervisor = RaidSupervisor(
            self.config,
            self.db,
            self.clock,
            self.metrics,
            bridge,
            snapshotter,
            self.players,
            on_journal=lambda items: feeds[0].journal_items(items),  # noqa: PLW0108 - built next
            on_status_changed=lambda *change: feeds[0].status_changed(*change),  # noqa: PLW0108
            snapshot_lock=snapshot_lock,
        )
        feed = CommitFeed(
            self.config, self.db, self.clock, supervisor, self.players, broadcaster, snapshotter
        )
        feeds.append(feed)
        journal = JournalWriter(
            self.db,
            max_batch=self.config.persistence.journal_max_batch,
            on_committed=feed.committed,
            on_failed=supervisor.journal_failed,
            observer=_JournalMetrics(self.metrics),
        )
        supervisor.journal = feed.journal = journal
        journal.start()
        snapshots = SnapshotScheduler(
            self.db, self.clock, self.metrics, bridge, snapshotter, supervisor.live, snapshot_lock
        )
        self.parts = _Parts(
            bridge,
            dispatcher,
            ActorCalls(bridge, actors.request_timeout_s),
            supervisor,
            feed,
            journal,
            snapshots,
            broadcaster,
            snapshotter,
        )
        now = self.clock()
        for row in await self.db.list_boss_raids():
            status = RaidStatus(row.status)
            supervisor.statuses[row.raid_id] = status
            grace = json.loads(row.template_json)["settings"]["claim_grace_s"]
            if not status.is_final or now <= (row.ended_at or row.event_end) + grace:
                with contextlib.suppress(Unavailable):  # out of service: logged, others go on
                    await supervisor.load(row.raid_id)
        self._tasks = [
            asyncio.create_task(self._clock_loop(), name="raid-clock"),
            asyncio.create_task(
                snapshots.every(self.config.persistence.snapshot_interval_s),
                name="raid-snapshots",
            ),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Commit what is in flight, take a final snapshot of every raid, stop the actors.

        Every step runs even if an earlier one fails (each failure is logged): an error in
        the final snapshot must not leave actor threads keeping the process alive.
        """
        self.ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        parts = self.parts
        if parts is None:
            return
        await _step("stopping the journal", parts.journal.stop())
        await _step("the final snapshot", self._final_snapshot(parts))
        await _step("stopping the player actors", _now(self.players.stop_all))
        await _step("closing the loop dispatcher", _now(parts.dispatcher.close))
        live = parts.supervisor.live
        for raid in live.values():
            await _step(f"stopping raid {raid.raid_id}", _now(raid.ref.stop, block=False))
        live.clear()
        for ref in (parts.broadcaster, parts.snapshotter):
            await _step("stopping an actor", asyncio.to_thread(ref.stop))
        parts.bridge.close()

    async def _final_snapshot(self, parts: _Parts) -> None:
        self.final_snapshots = await parts.snapshots.changed("final snapshot")

    def _parts(self) -> _Parts:
        if self.parts is None:
            raise Unavailable("the server is starting; try again")
        return self.parts

    # -- views of the parts (tests, benchmarks) --------------------------------------------------

    @property
    def live(self) -> dict[str, LiveRaid]:
        return self._parts().supervisor.live

    @property
    def statuses(self) -> dict[str, RaidStatus]:
        return self._parts().supervisor.statuses

    @property
    def out_of_service(self) -> dict[str, str]:
        """raid_id -> why it cannot be restored (its requests answer ``unavailable``)."""
        return self._parts().supervisor.out_of_service

    @property
    def snapshotter(self) -> pykka.ActorRef[Any]:
        return self._parts().snapshotter

    @property
    def bridge(self) -> LoopBridge:
        return self._parts().bridge

    @property
    def journal(self) -> JournalWriter:
        return self._parts().journal

    @property
    def replayed_entries(self) -> int:
        """Journal entries replayed by restores (start-up summary)."""
        return self.parts.supervisor.replayed_entries if self.parts is not None else 0

    async def restart(self, raid_id: str, reason: str) -> None:
        await self._parts().supervisor.restart(raid_id, reason)

    async def rewrite(self, raid_id: str, change: Callable[[], Awaitable[_T]] | None) -> _T | None:
        """Stop the raid, run ``change`` on its durable state, start it again (supervision)."""
        return await self._parts().supervisor.rewrite(raid_id, change)

    def publish_events(self, raid_id: str, events: list[dict[str, Any]]) -> None:
        """Events for the raid's subscribers, outside any strike (e.g. ``resync``)."""
        self._parts().feed.publish(raid_id, events)

    async def snapshot(self, raid_id: str) -> SnapshotInfo:
        """Save a snapshot of the raid as of its last committed journal entry."""
        return await self._parts().snapshots.snapshot(raid_id)

    async def _raid(self, raid_id: str) -> LiveRaid:
        return await self._parts().supervisor.raid(raid_id)

    async def _call(self, send: Callable[[Any], None], make: Callable[[Reply[Any]], Any]) -> Any:
        return await self._parts().calls.call(send, make)

    async def _roster(self, user_id: str) -> Roster:
        return await self.rosters.get(user_id)

    # -- clock ------------------------------------------------------------------------------

    async def _clock_loop(self) -> None:
        parts = self._parts()
        tick = self.config.actors.tick_s
        last_status = last_reap = 0.0
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            parts.broadcaster.tell(FlushTick(now))
            mono = time.monotonic()
            if mono - last_status >= STATUS_TICK_S:
                last_status = mono
                for live in list(parts.supervisor.live.values()):
                    with contextlib.suppress(pykka.ActorDeadError):
                        live.ref.tell(Tick(now))
            if mono - last_reap >= REAP_EVERY_S:
                last_reap = mono
                self.players.reap_idle()
                parts.calls.expire()
                self.unload_idle()

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload finished raids idle for ``[actors] raid_idle_s`` (the clock does it every
        5 s); the ids of those unloaded. ``now``: ``time.monotonic()`` unless given."""
        return self._parts().supervisor.unload_idle(self.config.actors.raid_idle_s, now)

    # -- player ops (RaidServiceProtocol) -----------------------------------------------------

    async def hello(self, user_id: str, role: str) -> dict[str, Any]:
        """The raids in the database (also those created by the CLI while running), at most
        ``[server] hello_raids``: unfinished ones first, then the most recently created.

        Bounded because any player may then load each raid listed (actors/supervision.py
        unloads finished ones again once idle)."""
        raids = []
        for row in await self.db.list_recent_raids(self.config.server.hello_raids):
            known = self.parts.supervisor.statuses if self.parts is not None else {}
            status = known.get(row.raid_id, RaidStatus(row.status)).value
            raids.append({"raid_id": row.raid_id, "name": row.name, "status": status})
        return {"server_time": self.clock(), "raids": raids}

    async def hub(self, user_id: str, raid_id: str) -> dict[str, Any]:
        live = await self._raid(raid_id)
        now = self.clock()
        result: dict[str, Any] = await self._call(
            live.inbox.send, lambda reply: HubRequest(user_id, now, reply)
        )
        return result

    def attach(self, sink: EventSink) -> None:
        self.sink = sink

    def _deliver(self, subscriber_ids: tuple[str, ...], events: list[dict[str, Any]]) -> None:
        if self.sink is not None:
            self.sink.deliver(subscriber_ids, events)

    def _subscribed(
        self, subscriber_id: str, reply: dict[str, Any], replay: list[dict[str, Any]]
    ) -> None:
        if self.sink is not None:
            self.sink.subscribed(subscriber_id, reply, replay)

    async def subscribe(
        self, subscriber_id: str, raid_id: str, since_seq: int | None, rid: Rid
    ) -> None:
        await self._raid(raid_id)
        self._parts().broadcaster.tell(Subscribe(raid_id, subscriber_id, since_seq, rid))

    async def unsubscribe(self, subscriber_id: str, raid_id: str) -> None:
        await self._raid(raid_id)
        self._parts().broadcaster.tell(Unsubscribe(raid_id, subscriber_id))

    def subscriber_gone(self, subscriber_id: str) -> None:
        if self.parts is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.parts.broadcaster.tell(DropSubscriber(subscriber_id))

    async def team_options(self, user_id: str, raid_id: str) -> dict[str, Any]:
        live = await self._raid(raid_id)
        roster = await self._roster(user_id)
        now = self.clock()
        result: dict[str, Any] = await self._call(
            live.inbox.send, lambda reply: TeamOptionsRequest(user_id, roster, now, reply)
        )
        return result

    async def strike(
        self, user_id: str, raid_id: str, action: Action, team: Sequence[str], strike_id: str
    ) -> dict[str, Any]:
        parts = self._parts()
        # The hot path: a live raid and a cached roster cost no extra coroutine each.
        live = parts.supervisor.live.get(raid_id) or await parts.supervisor.raid(raid_id)
        roster = self.rosters.cached(user_id) or await self.rosters.get(user_id)
        command = StrikeCommand(user_id, action, tuple(team), strike_id, roster)
        player, learned = self.players.checkout(raid_id, user_id, live.inbox)
        now = self.clock()
        answer = await parts.calls.call(
            player.tell, lambda reply: PlayerStrike(command, now, reply, learned)
        )
        return await self._strike_answered(live, command, now, answer)

    def strike_nowait(
        self,
        user_id: str,
        raid_id: str,
        action: Action,
        team: Sequence[str],
        strike_id: str,
        done: StrikeDone,
    ) -> None:
        """``strike`` without a task, a coroutine or a future per strike: ``done(report,
        None)`` or ``done(None, error)`` is called on the loop once the strike is committed
        or refused. The hot path (live raid, cached roster, a new strike answered on commit)
        runs entirely in callbacks; anything else finishes in a task through ``strike``."""
        parts = self._parts()
        live = parts.supervisor.live.get(raid_id)
        roster = self.rosters.cached(user_id)
        if live is None or roster is None:
            self._finish_in_task(self.strike(user_id, raid_id, action, team, strike_id), done)
            return
        command = StrikeCommand(user_id, action, tuple(team), strike_id, roster)
        player, learned = self.players.checkout(raid_id, user_id, live.inbox)
        now = self.clock()

        def answered(answer: Any, error: BaseException | None) -> None:
            if error is not None:
                done(None, error)
            elif isinstance(answer, StrikeOutcome) and _committed(answer.entry):
                done(strike_report(answer.result), None)
            else:  # a repeat older than the window, or an outcome not yet committed
                self._finish_in_task(self._strike_answered(live, command, now, answer), done)

        reply = parts.calls.callback(answered)
        try:
            player.tell(PlayerStrike(command, now, reply, learned))
        except pykka.ActorDeadError as refused:  # a full inbox (InboxFull) or a dead actor
            parts.calls.refused(reply, refused)

    def _finish_in_task(self, work: Awaitable[dict[str, Any]], done: StrikeDone) -> None:
        self._parts().supervisor.spawn(settle(work, done), "strike")

    async def _strike_answered(
        self, live: LiveRaid, command: StrikeCommand, now: float, answer: Any
    ) -> dict[str, Any]:
        """The rest of ``strike`` once the PlayerActor answered (the slow cases)."""
        if isinstance(answer, CheckJournal):
            answer = await self._strike_checked(live, command, now)
            if isinstance(answer, dict):
                return answer
        if isinstance(answer, DuplicateStrike):
            record = await self.db.get_strike_log(live.raid_id, answer.seq)
            if record is None:
                raise Unavailable("that strike's report cannot be read right now")
            return strike_report(result_from_dict(orjson.loads(record.result_json)))
        assert isinstance(answer, StrikeOutcome)
        await self._durable(answer.entry)
        return strike_report(answer.result)

    async def _strike_checked(
        self, live: LiveRaid, command: StrikeCommand, now: float
    ) -> dict[str, Any] | StrikeOutcome | DuplicateStrike:
        """A strike_id older than the player's window in memory: the journal's index says
        whether it is a repeat (its report) or new (decided by the RaidActor, ``checked``)."""
        seq = await self.strike_ids.seq_of(live.raid_id, command.user_id, command.strike_id)
        if seq is not None:
            record = await self.db.get_strike_log(live.raid_id, seq)
            if record is None:  # rolled back by an operator restore since the lookup
                raise Unavailable("that strike's report cannot be read right now; try again")
            return strike_report(result_from_dict(orjson.loads(record.result_json)))
        answer = await self._call(
            live.inbox.send, lambda reply: StrikeRequest(command, now, reply, checked=True)
        )
        assert isinstance(answer, StrikeOutcome | DuplicateStrike)
        return answer

    async def _durable(self, entry: JournalEntry | None) -> None:
        if entry is None or _committed(entry):
            return
        try:
            await self.journal.wait(entry)
        except JournalWriteFailed as exc:
            raise Unavailable(f"could not store it ({exc}); nothing was changed") from None

    async def rewards_list(self, user_id: str, raid_id: str) -> dict[str, Any]:
        live = await self._raid(raid_id)
        now = self.clock()
        claimable: dict[str, Any] = await self._call(
            live.inbox.send, lambda reply: ClaimableRequest(user_id, now, reply)
        )
        claimed = await self.db.list_player_rewards(raid_id, user_id)
        return {
            "claimable": [{"key": k, "bundle": dict(b)} for k, b in claimable.items()],
            "claimed": [{"key": g.key, "bundle": dict(g.bundle), "at": g.at} for g in claimed],
        }

    async def rewards_claim(self, user_id: str, raid_id: str, key: str) -> dict[str, Any]:
        live = await self._raid(raid_id)
        player = self.players.get(raid_id, user_id, live.inbox)
        now = self.clock()
        try:
            outcome = await self._call(player.tell, lambda reply: PlayerClaim(key, now, reply))
        except Rejection as refusal:
            if refusal.code is ErrorCode.ALREADY_CLAIMED and live.last_entry is not None:
                # The claim (or strike) this one collides with may still be on its way to
                # disk: say "already claimed" only once it is there. Should it fail, this
                # answers unavailable and a retry can claim the key.
                await self._durable(live.last_entry)
            raise
        assert isinstance(outcome, ClaimOutcome)
        await self._durable(outcome.entry)
        return {"key": outcome.claim.key, "bundle": dict(outcome.claim.bundle)}

    # -- operator ops -------------------------------------------------------------------------

    async def create_raid(
        self,
        boss: str,
        start: float | None = None,
        end: float | None = None,
        raid_id: str | None = None,
    ) -> str:
        now = self.clock()
        state = await create_raid(
            self.db, self.config, boss, now=now, start=start, end=end, raid_id=raid_id
        )
        raid_id = state.boss.raid_id
        # Through the supervisor's load: a request for the new raid arriving meanwhile (it is
        # listed by hello once committed) shares this actor instead of starting a second one.
        live = await self._parts().supervisor.load(raid_id)
        if live is None:
            raise Unavailable(f"raid {raid_id} was created but cannot be read back; try again")
        log.info("raid %s created", raid_id, extra={"raid": raid_id})
        return raid_id

    async def end_raid(self, raid_id: str) -> RaidStatus:
        live = await self._raid(raid_id)
        now = self.clock()
        status, ended_at = await self._call(
            live.inbox.send, lambda reply: EndRaidRequest(now, reply)
        )
        await self.db.update_boss_raid_state(raid_id, status=status.value, ended_at=ended_at)
        return RaidStatus(status)

    async def restore_to_snapshot(self, raid_id: str, snapshot_id: int) -> dict[str, Any]:
        return await restore_live(self, raid_id, snapshot_id)

    async def end_raid_status(self, raid_id: str) -> str:
        return (await self.end_raid(raid_id)).value

    async def take_snapshot(self, raid_id: str) -> dict[str, Any]:
        await self._raid(raid_id)
        info = await self.snapshot(raid_id)
        return {"snapshot_id": info.snapshot_id, "seq": info.seq}

    async def rewards_pending(self, limit: int) -> list[dict[str, Any]]:
        return [
            {
                "id": p.id,
                "raid_id": p.raid_id,
                "user_id": p.user_id,
                "key": p.key,
                "bundle": dict(p.bundle),
                "at": p.at,
            }
            for p in await self.db.pending_rewards(limit)
        ]

    async def rewards_ack(self, ids: Sequence[int]) -> int:
        acked: int = await self.db.ack_rewards(list(ids))
        return acked

    async def grant_roster(self, user_id: str, grants: list[CharacterGrant]) -> list[str]:
        rows = validate_grants(self.config, user_id, grants)
        try:
            ids = await self.db.upsert_characters(rows)
        except RosterConflict as exc:
            raise Rejection(ErrorCode.BAD_REQUEST, str(exc)) from None
        self.rosters.forget(user_id)
        return ids


async def _step(what: str, work: Awaitable[Any]) -> None:
    """One shutdown step: a failure is logged and the next step still runs."""
    try:
        await work
    except Exception:  # shutdown goes on whatever one step did
        log.exception("shutdown: %s failed", what)


async def _now(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """A synchronous shutdown step, as an awaitable for ``_step``."""
    fn(*args, **kwargs)


def safe_team_size(config: Config) -> int:
    """The largest team no team_cap curse of the config can make invalid."""
    caps = [c.max for c in config.rules.curses.values() if c.kind is CurseKind.TEAM_CAP]
    return min([config.rules.player.max_team_size] + [int(cap) for cap in caps if cap])


class _JournalMetrics:
    """Feeds JournalWriter batches into Prometheus."""

    def __init__(self, metrics: Telemetry) -> None:
        self.metrics = metrics

    def batch_committed(self, size: int, seconds: float) -> None:
        self.metrics.journal_batch(size, seconds)

    def batch_failed(self, size: int) -> None:
        log.error("journal batch of %d entries failed", size)
