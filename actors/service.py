"""RaidService: the asyncio facade the gateway calls; it owns and supervises the actors.

It runs on the event loop. It never blocks on an actor: requests go out with ``tell`` and a
``Reply`` (actors.bridge) and come back as asyncio futures. It also wires the edges together:
journal commits feed the broadcaster and the snapshotter, raid actors that crash or whose
journal batch failed are restarted from durable state, and a clock drives raid status changes,
hp coalescing, snapshots and idle PlayerActor eviction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import pykka

from actors.api import EventSink, Rid, Telemetry
from actors.batch_sender import BatchSender
from actors.bridge import Answer, LoopBridge, Reply
from actors.broadcaster import (
    BroadcasterActor,
    BroadcastSinks,
    DropSubscriber,
    FlushTick,
    Publish,
    Subscribe,
    Unsubscribe,
)
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
from actors.raid_actor import RaidActor, RaidSinks, StrikePayload, Submission
from actors.raids import CharacterGrant, create_raid, not_found, roster_of, validate_grants
from actors.restore import RestoreError, StateSource, restore_raid
from actors.snapshotter import (
    Capture,
    CaptureFailed,
    Committed,
    Forget,
    SnapshotData,
    Snapshotter,
    StatusChanged,
    Track,
)
from persistence.database import Database
from persistence.errors import JournalWriteFailed, RosterConflict
from persistence.journal import JournalEntry, JournalWriter
from persistence.records import SnapshotInfo
from raid.codec import result_from_dict
from raid.config import Action, Config, CurseKind
from raid.errors import ErrorCode, RaidError, Rejection, Unavailable
from raid.models import RaidState, RaidStatus, Roster
from raid.strike import StrikeCommand, StrikeResult
from raid.views import status_events, strike_report

log = logging.getLogger(__name__)


REQUEST_TIMEOUT_S = 30.0
"""An actor that has not answered by then is presumed dead: the caller gets ``unavailable``."""

STATUS_TICK_S = 1.0
REAP_EVERY_S = 5.0


@dataclass(slots=True)
class LiveRaid:
    """A raid with a running RaidActor."""

    raid_id: str
    ref: pykka.ActorRef[Any]
    inbox: BatchSender  # every message from the loop goes through it, batched
    generation: int
    hp_events_per_s: float
    total_hp: int
    last_entry: JournalEntry | None = None  # the newest entry submitted for this raid
    committed_seq: int = 0  # the raid's last committed strike
    snapshot_seq: int = 0  # the seq of its latest snapshot

    @property
    def needs_snapshot(self) -> bool:
        return self.committed_seq != self.snapshot_seq


@dataclass(slots=True)
class _Batch:
    results: list[StrikeResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


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
        self.rules = config.rules  # the game rules shared by every raid
        self.db = db  # opened Database
        self.metrics = metrics  # where the actors report their counts and durations
        self.sink: EventSink | None = None  # where events go (the gateway attaches it)
        self.clock = clock  # wall clock (unix seconds) handed to the rules as ``now``
        self.live: dict[str, LiveRaid] = {}  # raid_id -> running raid
        self.statuses: dict[str, RaidStatus] = {}  # raid_id -> status, as this server knows it
        self._restarting: dict[str, asyncio.Future[None]] = {}  # raid_id -> done when back
        self._loading: dict[str, asyncio.Future[LiveRaid | None]] = {}
        self._generations: dict[str, int] = {}  # raid_id -> last generation started
        self._rosters: OrderedDict[str, Roster] = OrderedDict()  # user_id -> roster (LRU)
        self._snapshot_lock = asyncio.Lock()  # one snapshot at a time (incremental chain)
        self._deadlines: dict[asyncio.Future[Any], float] = {}  # actor calls awaiting a reply
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self.bridge: LoopBridge | None = None
        self.dispatcher: LoopDispatcher | None = None  # runs the PlayerActors on the loop
        self.journal: JournalWriter | None = None
        self.broadcaster: pykka.ActorRef[Any] | None = None
        self.snapshotter: pykka.ActorRef[Any] | None = None
        self.players = PlayerPool(
            config.actors.max_player_actors,
            config.actors.player_idle_s,
            safe_team_size(config),
            config.actors.strike_id_window,
            on_count=lambda n: self.metrics.actors_live("player", n),
        )
        self.ready = False  # True once every unfinished raid is restored

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the actors and restore every unfinished raid before accepting clients."""
        loop = asyncio.get_running_loop()
        self.bridge = bridge = LoopBridge(loop)
        self.dispatcher = self.players.dispatcher = LoopDispatcher(loop)
        self.journal = JournalWriter(
            self.db,
            max_batch=self.config.persistence.journal_max_batch,
            on_committed=self._on_committed,
            on_failed=self._on_journal_failed,
            observer=_JournalMetrics(self.metrics),
        )
        self.journal.start()
        self.broadcaster = BroadcasterActor.start(
            BroadcastSinks(
                post=bridge.post,
                deliver=self._deliver,
                subscribed=self._subscribed,
                coalesced=self.metrics.count_coalesced,
            ),
            self.config.actors.replay_buffer,
        )
        self.snapshotter = Snapshotter.start(self.config.actors.strike_id_window)
        self.metrics.actors_live("other", 2)
        now = self.clock()
        for row in await self.db.list_boss_raids():
            status = RaidStatus(row.status)
            self.statuses[row.raid_id] = status
            grace = json.loads(row.template_json)["settings"]["claim_grace_s"]
            if not status.is_final or now <= (row.ended_at or row.event_end) + grace:
                await self._load(row.raid_id)
        self._tasks = [
            asyncio.create_task(self._clock_loop(), name="raid-clock"),
            asyncio.create_task(self._snapshot_loop(), name="raid-snapshots"),
        ]
        self.ready = True

    async def stop(self) -> None:
        """Commit what is in flight, take a final snapshot of every raid, stop the actors."""
        self.ready = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.journal is not None:
            await self.journal.stop()
        await self._snapshot_changed("final snapshot")
        self.players.stop_all()
        if self.dispatcher is not None:
            self.dispatcher.close()
        for live in self.live.values():
            live.ref.stop(block=False)
        self.live.clear()
        for ref in (self.broadcaster, self.snapshotter):
            if ref is not None:
                await asyncio.to_thread(ref.stop)
        if self.bridge is not None:
            self.bridge.close()

    # -- raids ----------------------------------------------------------------------------

    async def _raid(self, raid_id: str) -> LiveRaid:
        """The running raid, restored on demand; ``unknown_raid`` if there is none."""
        live = self.live.get(raid_id)
        if live is not None:
            return live
        restarting = self._restarting.get(raid_id)
        if restarting is not None:
            raise Unavailable(f"raid {raid_id} is restarting; try again")
        loaded = await self._load(raid_id)
        if loaded is None:
            raise not_found(raid_id)
        return loaded

    async def _load(self, raid_id: str) -> LiveRaid | None:
        pending = self._loading.get(raid_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LiveRaid | None] = asyncio.get_running_loop().create_future()
        self._loading[raid_id] = future
        try:
            restored = await restore_raid(self.db, raid_id, self.clock())
            live = None
            if restored is not None:
                if restored.replayed:
                    log.info(
                        "raid %s restored: snapshot seq %d + %d journal entries",
                        raid_id,
                        restored.snapshot_seq,
                        restored.replayed,
                        extra={"raid": raid_id},
                    )
                boss = restored.state.boss
                self.statuses[raid_id] = boss.status
                live = self._start_raid(restored.state, restored.source)
                live.snapshot_seq = restored.snapshot_seq
                if boss.status.value != restored.row.status:
                    self._on_status_changed(raid_id, boss.status, boss.ended_at)
            future.set_result(live)
            return live
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._loading[raid_id]

    def _start_raid(self, state: RaidState, source: StateSource) -> LiveRaid:
        assert self.bridge is not None and self.snapshotter is not None
        raid_id = state.boss.raid_id
        unknown = sorted(
            {*state.boss.active_curses, *state.boss.curse_pool} - set(self.rules.curses)
        )
        if unknown:
            raise RestoreError(
                f"raid {raid_id} uses curse(s) {unknown} that the config no longer defines"
            )
        generation = self._generations.get(raid_id, 0) + 1
        self._generations[raid_id] = generation
        bridge = self.bridge
        sinks = RaidSinks(
            journal=lambda items: bridge.post(self._journal, items),
            status_changed=lambda rid, status, ended_at: bridge.post(
                self._on_status_changed, rid, status, ended_at
            ),
            crashed=lambda rid, gen, exc: bridge.post(self._on_crashed, rid, gen, exc),
        )
        actors = self.config.actors
        ref = RaidActor.start(
            self.rules,
            state,
            generation,
            sinks,
            recent_outcomes=actors.recent_outcomes,
            strike_id_window=actors.strike_id_window,
        )
        live = LiveRaid(
            raid_id=raid_id,
            ref=ref,
            inbox=BatchSender(ref, bridge.loop, _restarting),
            generation=generation,
            hp_events_per_s=state.boss.settings.hp_events_per_s,
            total_hp=state.boss.total_hp,
            committed_seq=state.boss.strike_count,
            snapshot_seq=state.boss.strike_count,
        )
        self.live[raid_id] = live
        self.snapshotter.tell(Track(source))
        self.metrics.actors_live("raid", len(self.live))
        return live

    def _submit(self, entry: JournalEntry) -> None:
        assert self.journal is not None
        live = self.live.get(entry.raid_id)
        if live is not None and live.generation == entry.generation:
            live.last_entry = entry
        self.journal.submit(entry)

    def _journal(self, items: list[Submission]) -> None:
        """A raid's journal entries (one crossing per batch): journal each; answer the
        request behind it once it is committed."""
        learn = self.players.learn
        for item in items:
            entry = item.entry
            self._submit(entry)
            reply = item.reply
            if reply is None:
                continue
            answer = item.answer
            if isinstance(answer, StrikeOutcome):
                result = answer.result
                learn(result.raid_id, result.user_id, answer)
            entry.on_settled = partial(_answer_on_commit, reply, answer)
            if entry.future is not None and entry.future.done():  # refused at once
                _answer_on_commit(reply, answer, entry.future.exception())

    async def restart(self, raid_id: str, reason: str) -> None:
        """Restart a raid from durable state (latest snapshot + committed journal)."""
        if raid_id in self._restarting:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._restarting[raid_id] = done
        log.error("restarting raid %s: %s", raid_id, reason, extra={"raid": raid_id})
        try:
            live = self.live.pop(raid_id, None)
            self.players.stop_raid(raid_id)
            if live is not None:
                live.ref.stop(block=False)
                if live.last_entry is not None and self.journal is not None:
                    with contextlib.suppress(JournalWriteFailed):
                        await self.journal.wait(live.last_entry)
            assert self.snapshotter is not None and self.journal is not None
            self.snapshotter.tell(Forget(raid_id))
            restored = await restore_raid(self.db, raid_id, self.clock())
            if restored is not None:
                new = self._start_raid(restored.state, restored.source)
                self.journal.reopen_raid(raid_id, new.generation)
        finally:
            del self._restarting[raid_id]
            done.set_result(None)

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    def _on_crashed(self, raid_id: str, generation: int, exc: BaseException) -> None:
        live = self.live.get(raid_id)
        if live is not None and live.generation == generation:
            self._spawn(self.restart(raid_id, f"actor crashed: {exc!r}"), f"restart-{raid_id}")

    def _on_journal_failed(self, raids: set[str], exc: BaseException) -> None:
        for raid_id in raids:
            self._spawn(self.restart(raid_id, f"journal write failed: {exc}"), "restart")

    def _on_status_changed(self, raid_id: str, status: RaidStatus, ended_at: float | None) -> None:
        if raid_id in self.statuses:
            self.statuses[raid_id] = status
        self.players.invalidate_raid(raid_id)
        if self.snapshotter is not None:
            self.snapshotter.tell(StatusChanged(raid_id, status, ended_at))
        self._spawn(
            self.db.update_boss_raid_state(raid_id, status=status.value, ended_at=ended_at),
            f"status-{raid_id}",
        )
        events = status_events(status)
        if events:
            self._publish(raid_id, events, self.live.get(raid_id))

    def _publish(
        self,
        raid_id: str,
        events: list[dict[str, Any]],
        live: LiveRaid | None,
        hp: dict[str, int] | None = None,
        hp_updates: int = 0,
    ) -> None:
        if self.broadcaster is None:
            return
        rate = live.hp_events_per_s if live is not None else self.config.raid.hp_events_per_s
        self.broadcaster.tell(Publish(raid_id, events, hp, hp_updates, rate, self.clock()))

    def _on_committed(self, batch: list[JournalEntry]) -> None:
        per_raid: dict[str, _Batch] = {}
        results: list[StrikeResult] = []
        for entry in batch:
            payload = entry.payload
            if isinstance(payload, StrikePayload):
                group = per_raid.setdefault(entry.raid_id, _Batch())
                group.results.append(payload.result)
                group.events.extend(payload.events)
                results.append(payload.result)
            entry.release()
        if results and self.snapshotter is not None:
            self.snapshotter.tell(Committed(results))
        for raid_id, group in per_raid.items():
            last = group.results[-1]
            live = self.live.get(raid_id)
            if live is not None:
                live.committed_seq = last.seq
            if last.victory:
                self._on_status_changed(raid_id, RaidStatus.DEFEATED, last.at)
            hp = {
                "current_hp": last.boss_hp,
                "total_hp": live.total_hp if live is not None else last.boss_hp,
                "strike_count": last.seq,
                "analysis_points": last.analysis_total,
            }
            self._publish(raid_id, group.events, live, hp, len(group.results))

    # -- clock ------------------------------------------------------------------------------

    async def _clock_loop(self) -> None:
        tick = self.config.actors.tick_s
        last_status = last_reap = 0.0
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            if self.broadcaster is not None:
                self.broadcaster.tell(FlushTick(now))
            mono = time.monotonic()
            if mono - last_status >= STATUS_TICK_S:
                last_status = mono
                for live in list(self.live.values()):
                    with contextlib.suppress(pykka.ActorDeadError):
                        live.ref.tell(Tick(now))
            if mono - last_reap >= REAP_EVERY_S:
                last_reap = mono
                self.players.reap_idle()
                self._expire_calls()

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.persistence.snapshot_interval_s)
            await self._snapshot_changed("snapshot")

    async def _snapshot_changed(self, what: str) -> None:
        """Snapshot every live raid with journal entries since its last snapshot."""
        for raid_id, live in list(self.live.items()):
            if not live.needs_snapshot:
                continue
            try:
                await self.snapshot(raid_id)
            except RaidError as error:
                log.error("%s of %s failed: %s", what, raid_id, error.message)

    async def snapshot(self, raid_id: str) -> SnapshotInfo:
        """Save a snapshot of the raid as of its last committed journal entry."""
        assert self.bridge is not None and self.snapshotter is not None
        async with self._snapshot_lock:
            started = time.perf_counter()
            reply, future = self.bridge.reply()
            self.snapshotter.tell(Capture(raid_id, reply))
            data: SnapshotData | None = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
            if data is None:
                raise Unavailable(f"raid {raid_id} cannot be snapshotted right now")
            try:
                info = await self.db.save_snapshot(
                    raid_id,
                    seq=data.seq,
                    taken_at=self.clock(),
                    current_hp=data.current_hp,
                    strike_count=data.strike_count,
                    raid_state_json=data.raid_state_json,
                    players=data.players,
                )
            except Exception as exc:
                self.snapshotter.tell(CaptureFailed(raid_id, tuple(u for u, _ in data.players)))
                log.exception("saving a snapshot of %s failed", raid_id)
                raise Unavailable(f"snapshot of {raid_id} failed: {exc}") from exc
            self.metrics.snapshot_took(time.perf_counter() - started)
            live = self.live.get(raid_id)
            if live is not None:
                live.snapshot_seq = max(live.snapshot_seq, info.seq)
            return info

    # -- calls into actors --------------------------------------------------------------------

    async def _call(self, send: Callable[[Any], None], make: Callable[[Reply[Any]], Any]) -> Any:
        """Send an actor a request and await its Reply; ``unavailable`` if it never answers.

        The deadline is enforced by the clock loop's sweep rather than one timer per call:
        a timer handle per request was 5 % of the whole strike path.
        """
        assert self.bridge is not None
        reply, future = self.bridge.reply()
        try:
            send(make(reply))
        except pykka.ActorDeadError:
            raise Unavailable("that raid is restarting; try again") from None
        self._deadlines[future] = time.monotonic() + REQUEST_TIMEOUT_S
        try:
            return await future
        finally:
            self._deadlines.pop(future, None)

    def _expire_calls(self) -> None:
        """Fail calls whose actor did not answer by their deadline."""
        now = time.monotonic()
        for future, deadline in list(self._deadlines.items()):
            if deadline <= now and not future.done():
                future.set_exception(Unavailable("the raid did not answer in time; try again"))

    async def _roster(self, user_id: str) -> Roster:
        roster = self._rosters.get(user_id)
        if roster is not None:
            self._rosters.move_to_end(user_id)
            return roster
        roster = roster_of(await self.db.get_user_characters(user_id))
        self._rosters[user_id] = roster
        if len(self._rosters) > self.config.actors.roster_cache:
            self._rosters.popitem(last=False)
        return roster

    # -- player ops (RaidServiceProtocol) -----------------------------------------------------

    async def hello(self, user_id: str, role: str) -> dict[str, Any]:
        """Every raid in the database (also those created by the CLI while running)."""
        raids = []
        for row in await self.db.list_boss_raids():
            status = self.statuses.get(row.raid_id, RaidStatus(row.status)).value
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
        assert self.broadcaster is not None
        self.broadcaster.tell(Subscribe(raid_id, subscriber_id, since_seq, rid))

    async def unsubscribe(self, subscriber_id: str, raid_id: str) -> None:
        await self._raid(raid_id)
        assert self.broadcaster is not None
        self.broadcaster.tell(Unsubscribe(raid_id, subscriber_id))

    def subscriber_gone(self, subscriber_id: str) -> None:
        if self.broadcaster is not None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.broadcaster.tell(DropSubscriber(subscriber_id))

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
        live = await self._raid(raid_id)
        roster = await self._roster(user_id)
        command = StrikeCommand(user_id, action, tuple(team), strike_id, roster)
        player, learned = self.players.checkout(raid_id, user_id, live.inbox)
        now = self.clock()
        answer = await self._call(
            player.tell, lambda reply: PlayerStrike(command, now, reply, learned)
        )
        if isinstance(answer, CheckJournal):
            answer = await self._strike_checked(live, command, now)
            if isinstance(answer, dict):
                return answer
        if isinstance(answer, DuplicateStrike):
            record = await self.db.get_strike_log(raid_id, answer.seq)
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
        record = await self.db.get_strike_log_by_strike_id(
            live.raid_id, command.user_id, command.strike_id
        )
        if record is not None:
            return strike_report(result_from_dict(orjson.loads(record.result_json)))
        answer = await self._call(
            live.inbox.send, lambda reply: StrikeRequest(command, now, reply, checked=True)
        )
        assert isinstance(answer, StrikeOutcome | DuplicateStrike)
        return answer

    async def _durable(self, entry: JournalEntry | None) -> None:
        if entry is None or self.journal is None:
            return
        committed = entry.future
        if committed is not None and committed.done() and committed.exception() is None:
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
        outcome = await self._call(player.tell, lambda reply: PlayerClaim(key, now, reply))
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
        created = await restore_raid(self.db, state.boss.raid_id, now)
        assert created is not None
        self.statuses[created.row.raid_id] = created.state.boss.status
        self._start_raid(created.state, created.source)
        log.info("raid %s created", created.row.raid_id, extra={"raid": created.row.raid_id})
        return created.row.raid_id

    async def end_raid(self, raid_id: str) -> RaidStatus:
        live = await self._raid(raid_id)
        now = self.clock()
        status, ended_at = await self._call(
            live.inbox.send, lambda reply: EndRaidRequest(now, reply)
        )
        await self.db.update_boss_raid_state(raid_id, status=status.value, ended_at=ended_at)
        return RaidStatus(status)

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
        self._rosters.pop(user_id, None)
        return ids


def _restarting(message: Any) -> None:
    """A message whose RaidActor stopped before it could be told."""
    reply = getattr(message, "reply", None)
    if reply is not None:
        reply.fail(Unavailable("that raid is restarting; try again"))


def _answer_on_commit(reply: Answer[Any], answer: Any, error: BaseException | None) -> None:
    if error is None:
        reply.set(answer)
    else:
        reply.fail(Unavailable(f"could not store it ({error}); try again"))


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
