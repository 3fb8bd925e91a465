"""Supervision of the raids: restored on demand, started with their actor, restarted when broken,
unloaded when finished and idle.

A raid runs as one RaidActor (``LiveRaid``). It is restored from durable state (latest snapshot
+ committed journal) on first use or at start-up; a RaidActor that crashes, or whose journal
batch failed, is stopped, its in-flight entries are let settle, and it is restored again with
a new generation (its old entries are refused by the journal from then on). A finished raid
nobody uses is unloaded (its actor and the Snapshotter's shadow copy freed) and restored again
on demand. Runs on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pykka

from actors.api import Telemetry
from actors.batch_sender import BatchSender
from actors.bridge import LoopBridge
from actors.players import PlayerPool
from actors.raid_actor import RaidActor, RaidSinks, Submission
from actors.raids import not_found
from actors.restore import RestoredRaid, RestoreError, StateSource, restore_raid, unknown_curses
from actors.snapshotter import Forget, Track
from persistence.database import Database
from persistence.errors import JournalWriteFailed
from persistence.journal import JournalEntry, JournalWriter
from raid.config import Config
from raid.errors import Unavailable
from raid.models import RaidState, RaidStatus

log = logging.getLogger(__name__)

_T = TypeVar("_T")


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
    used_batches: int = 0  # ``inbox.batches`` when last looked at (idle detection)
    used_at: float = field(default_factory=time.monotonic)  # when it last changed

    @property
    def needs_snapshot(self) -> bool:
        return self.committed_seq != self.snapshot_seq

    def touch(self, now: float) -> None:
        """Note whether anything was sent to the raid since the last look (no hot-path cost:
        every request reaches the actor through its inbox, which counts its batches)."""
        if self.inbox.batches != self.used_batches:
            self.used_batches = self.inbox.batches
            self.used_at = now

    @property
    def settled(self) -> bool:
        """Nothing of it is on its way to the journal, and its latest state is snapshotted:
        it can be unloaded and later restored cheaply, losing nothing."""
        entry = self.last_entry
        committed = entry is None or (entry.future is not None and entry.future.done())
        return committed and not self.needs_snapshot


StatusSink = Callable[[str, RaidStatus, "float | None"], None]


class RaidSupervisor:
    """The live raids, and every way a raid starts, stops and comes back."""

    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Callable[[], float],
        telemetry: Telemetry,
        bridge: LoopBridge,
        snapshotter: pykka.ActorRef[Any],
        players: PlayerPool,
        on_journal: Callable[[list[Submission]], None],
        on_status_changed: StatusSink,
        snapshot_lock: asyncio.Lock,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.telemetry = telemetry
        self.bridge = bridge
        self.snapshotter = snapshotter  # follows every live raid (Track / Forget)
        self.players = players  # PlayerActors of a restarting raid are stopped
        self.on_journal = on_journal  # a RaidActor's journal entries (the commit feed)
        self.on_status_changed = on_status_changed  # a raid's status changed (the commit feed)
        self.journal: JournalWriter | None = None  # set once built (it reports to us)
        self.live: dict[str, LiveRaid] = {}  # raid_id -> running raid
        self.statuses: dict[str, RaidStatus] = {}  # raid_id -> status, as this server knows it
        self._restarting: dict[str, asyncio.Future[None]] = {}  # raid_id -> done when back
        self._loading: dict[str, asyncio.Future[LiveRaid | None]] = {}
        self._generations: dict[str, int] = {}  # raid_id -> last generation started
        self.out_of_service: dict[str, str] = {}  # raid_id -> why it cannot be restored
        self._background: set[asyncio.Task[Any]] = set()
        self.snapshot_lock = snapshot_lock  # held by snapshots: none may land after a rewrite
        self.replayed_entries = 0  # journal entries replayed by restores (start-up summary)

    async def raid(self, raid_id: str) -> LiveRaid:
        """The running raid, restored on demand; ``unknown_raid`` if there is none."""
        live = self.live.get(raid_id)
        if live is not None:
            return live
        if raid_id in self._restarting:
            raise Unavailable(f"raid {raid_id} is restarting; try again")
        if raid_id in self.out_of_service:
            raise _out_of_service(raid_id)
        loaded = await self.load(raid_id)
        if loaded is None:
            raise not_found(raid_id)
        return loaded

    async def load(self, raid_id: str, *, joined_stale: bool = False) -> LiveRaid | None:
        """Restore and start a raid (None if there is no such raid); ``unavailable`` if it
        cannot be restored (it is then marked out of service).

        The one way a raid's actor is started outside a restart: concurrent loads of one raid
        (a ``raid.hub`` racing ``create_raid``) share one restore and one actor. A shared load
        that found nothing may have read before the raid's row was committed (the hub asked
        first): the caller then loads once more, in a load that began after it was called.
        """
        live = self.live.get(raid_id)
        if live is not None:
            return live
        if raid_id in self._restarting:
            raise Unavailable(f"raid {raid_id} is restarting; try again")
        pending = self._loading.get(raid_id)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None or joined_stale:
                return shared
            return await self.load(raid_id, joined_stale=True)
        future: asyncio.Future[LiveRaid | None] = asyncio.get_running_loop().create_future()
        self._loading[raid_id] = future
        try:
            try:
                restored = await self._restore(raid_id)
            except RestoreError as exc:
                self._mark_out_of_service(raid_id, str(exc))
                raise _out_of_service(raid_id) from None
            live = None
            if restored is not None:
                self.replayed_entries += restored.replayed
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
                live = self.start_raid(restored.state, restored.source)
                live.snapshot_seq = restored.snapshot_seq
                if boss.status.value != restored.row.status:
                    self.on_status_changed(raid_id, boss.status, boss.ended_at)
                self.shed_finished(raid_id, self.config.actors.max_finished_raids)
            future.set_result(live)
            return live
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            del self._loading[raid_id]

    async def _restore(self, raid_id: str) -> RestoredRaid | None:
        """The raid's durable state; ``RestoreError`` if it cannot run with this config."""
        restored = await restore_raid(self.db, raid_id, self.clock())
        if restored is not None:
            unknown = unknown_curses(self.config.rules, restored.state)
            if unknown:
                raise RestoreError(
                    f"raid {raid_id} uses curse(s) {unknown} that the config no longer defines"
                )
        return restored

    def _mark_out_of_service(self, raid_id: str, reason: str) -> None:
        """A raid that cannot be restored: its requests answer ``unavailable``, every other
        raid is served. An operator inspects it with ``raid-server check RAID_ID`` (and
        retires it with ``--retire``), or fixes the config and restarts the server."""
        self.out_of_service[raid_id] = reason
        log.error(
            "raid %s is out of service, it cannot be restored: %s "
            "(inspect with `raid-server check %s`)",
            raid_id,
            reason,
            raid_id,
            extra={"raid": raid_id},
        )

    def start_raid(self, state: RaidState, source: StateSource) -> LiveRaid:
        rules = self.config.rules
        raid_id = state.boss.raid_id
        unknown = unknown_curses(rules, state)
        if unknown:
            raise RestoreError(
                f"raid {raid_id} uses curse(s) {unknown} that the config no longer defines"
            )
        if raid_id in self.live:
            # One raid, one actor: a second one would be an orphan nobody stops.
            raise RuntimeError(f"raid {raid_id} already has a running actor")
        generation = self._generations.get(raid_id, 0) + 1
        self._generations[raid_id] = generation
        bridge = self.bridge
        sinks = RaidSinks(
            journal=lambda items: bridge.post(self.on_journal, items),
            status_changed=lambda rid, status, ended_at: bridge.post(
                self.on_status_changed, rid, status, ended_at
            ),
            crashed=lambda rid, gen, exc: bridge.post(self._crashed, rid, gen, exc),
        )
        actors = self.config.actors
        ref = RaidActor.start(
            rules,
            state,
            generation,
            sinks,
            recent_outcomes=actors.recent_outcomes,
            strike_id_window=actors.strike_id_window,
            inbox_limit=actors.raid_inbox,
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
        self.telemetry.actors_live("raid", len(self.live))
        return live

    async def restart(self, raid_id: str, reason: str) -> None:
        """Restart a raid from durable state (latest snapshot + committed journal)."""
        if raid_id in self._restarting:
            return
        log.error("restarting raid %s: %s", raid_id, reason, extra={"raid": raid_id})
        await self.rewrite(raid_id, None)

    async def rewrite(self, raid_id: str, change: Callable[[], Awaitable[_T]] | None) -> _T | None:
        """Stop the raid's actors, run ``change`` (a rewrite of its durable state, e.g. an
        operator restore), and start the raid again from durable state.

        With a ``change``, the old actor's entries not yet written are refused (their callers
        get ``unavailable``), so nothing of the old state lands after the rewrite; the raid
        comes back even if ``change`` fails. Requests meanwhile answer ``unavailable``.
        """
        if raid_id in self._restarting:
            raise Unavailable(f"raid {raid_id} is restarting; try again")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._restarting[raid_id] = done
        assert self.journal is not None
        try:
            loading = self._loading.get(raid_id)
            if loading is not None:  # let it start its actor, then stop that one
                with contextlib.suppress(Exception):
                    await asyncio.shield(loading)
            live = self.live.pop(raid_id, None)
            self.players.stop_raid(raid_id)
            if live is not None:
                live.ref.stop(block=False)
                if change is not None:
                    self.journal.reopen_raid(raid_id, live.generation + 1)  # retire the old one
                if live.last_entry is not None:
                    with contextlib.suppress(JournalWriteFailed):
                        await self.journal.wait(live.last_entry)
            self.snapshotter.tell(Forget(raid_id))
            # No snapshot of the old state may land after the change: wait for one in flight.
            hold = self.snapshot_lock if change is not None else contextlib.nullcontext()
            try:
                async with hold:
                    result = await change() if change is not None else None
            finally:
                try:
                    restored = await self._restore(raid_id)
                except RestoreError as exc:
                    restored = None
                    self._mark_out_of_service(raid_id, str(exc))
                if restored is not None:
                    new = self.start_raid(restored.state, restored.source)
                    new.snapshot_seq = restored.snapshot_seq
                    self.journal.reopen_raid(raid_id, new.generation)
                    boss = restored.state.boss
                    self.statuses[raid_id] = boss.status
                    if boss.status.value != restored.row.status:
                        self.on_status_changed(raid_id, boss.status, boss.ended_at)
            return result
        finally:
            del self._restarting[raid_id]
            done.set_result(None)

    # -- unloading ----------------------------------------------------------------------------

    def unload_idle(self, idle_s: float, now: float | None = None) -> list[str]:
        """Unload every finished raid nobody sent anything for ``idle_s`` seconds; their ids.

        A finished raid is still loaded on demand (its hub, its rewards, claims in the grace
        window); without unloading, each raid anyone ever looked at would keep its actor and
        the Snapshotter's shadow copy until the server stops.
        """
        now = time.monotonic() if now is None else now
        unloaded: list[str] = []
        for raid_id, live in list(self.live.items()):
            live.touch(now)
            if now - live.used_at >= idle_s and self._unloadable(raid_id, live):
                self.unload(raid_id, "finished and idle")
                unloaded.append(raid_id)
        return unloaded

    def shed_finished(self, keep: str, most: int, now: float | None = None) -> list[str]:
        """Unload the least recently used finished raids beyond ``most`` loaded (not ``keep``,
        the one just loaded); raids with work in flight stay. Their ids."""
        now = time.monotonic() if now is None else now
        finished = [
            live for raid_id, live in self.live.items() if raid_id != keep and self._final(raid_id)
        ]
        excess = len(finished) + (1 if self._final(keep) else 0) - most
        if excess <= 0:
            return []
        for live in finished:
            live.touch(now)
        finished.sort(key=lambda live: live.used_at)
        unloaded: list[str] = []
        for live in finished:
            if len(unloaded) == excess:
                break
            if self._unloadable(live.raid_id, live):
                self.unload(live.raid_id, f"more than {most} finished raids loaded")
                unloaded.append(live.raid_id)
        return unloaded

    def unload(self, raid_id: str, why: str) -> None:
        """Stop a raid's actor and its PlayerActors, free the Snapshotter's shadow copy; the
        raid is restored from durable state on its next request."""
        live = self.live.pop(raid_id)
        self.players.stop_raid(raid_id)
        live.ref.stop(block=False)
        self.snapshotter.tell(Forget(raid_id))
        self.telemetry.actors_live("raid", len(self.live))
        log.info("raid %s unloaded (%s)", raid_id, why, extra={"raid": raid_id})

    def _final(self, raid_id: str) -> bool:
        status = self.statuses.get(raid_id)
        return status is not None and status.is_final

    def _unloadable(self, raid_id: str, live: LiveRaid) -> bool:
        """Finished (an active raid's clock must keep ticking), not restarting, settled."""
        return self._final(raid_id) and raid_id not in self._restarting and live.settled

    def journal_failed(self, raids: set[str], exc: BaseException) -> None:
        """The journal poisoned these raids: bring each back from durable state."""
        for raid_id in raids:
            self.spawn(self.restart(raid_id, f"journal write failed: {exc}"), "restart")

    def _crashed(self, raid_id: str, generation: int, exc: BaseException) -> None:
        live = self.live.get(raid_id)
        if live is not None and live.generation == generation:
            self.spawn(self.restart(raid_id, f"actor crashed: {exc!r}"), f"restart-{raid_id}")

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run ``coro`` in the background; its failure is logged."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())


def _out_of_service(raid_id: str) -> Unavailable:
    return Unavailable(f"raid {raid_id} is out of service; the operators have been told")


def _restarting(message: Any) -> None:
    """A message whose RaidActor stopped before it could be told."""
    reply = getattr(message, "reply", None)
    if reply is not None:
        reply.fail(Unavailable("that raid is restarting; try again"))
