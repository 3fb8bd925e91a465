"""The commit feed: what flows from the RaidActors through the journal to everyone else.

A RaidActor's journal entries arrive here (one crossing per batch) and go to the
JournalWriter; each request behind one is answered once its entry is committed. Committed
entries then feed the Snapshotter's shadow state and the broadcaster (events of durable
strikes only, with the raid's latest hp), and a raid's status changes are persisted and
announced. Runs on the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pykka

from actors.bridge import Answer
from actors.broadcaster import Publish
from actors.messages import StrikeOutcome
from actors.players import PlayerPool
from actors.raid_actor import StrikePayload, Submission
from actors.snapshotter import Committed, StatusChanged
from actors.supervision import LiveRaid, RaidSupervisor
from persistence.database import Database
from persistence.journal import JournalEntry, JournalWriter
from raid.config import Config
from raid.errors import Unavailable
from raid.models import RaidStatus
from raid.strike import StrikeResult
from raid.views import status_events


@dataclass(slots=True)
class _Batch:
    results: list[StrikeResult] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class CommitFeed:
    def __init__(
        self,
        config: Config,
        db: Database,
        clock: Callable[[], float],
        supervisor: RaidSupervisor,
        players: PlayerPool,
        broadcaster: pykka.ActorRef[Any],
        snapshotter: pykka.ActorRef[Any],
    ) -> None:
        self.config = config
        self.db = db  # the raid's status is persisted there
        self.clock = clock
        self.supervisor = supervisor  # the live raids
        self.players = players  # learn accepted outcomes; invalidated on status changes
        self.broadcaster = broadcaster  # events of committed strikes
        self.snapshotter = snapshotter  # results of committed strikes
        self.journal: JournalWriter | None = None  # set once built (it reports to us)

    def journal_items(self, items: list[Submission]) -> None:
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
            entry.on_settled = partial(_answer_on_commit, reply, answer)
            if entry.future is not None and entry.future.done():  # refused (a retired actor)
                _answer_on_commit(reply, answer, entry.future.exception())
            elif isinstance(answer, StrikeOutcome):  # refused entries teach nothing
                result = answer.result
                learn(result.raid_id, result.user_id, answer)

    def _submit(self, entry: JournalEntry) -> None:
        assert self.journal is not None
        live = self.supervisor.live.get(entry.raid_id)
        if live is not None and live.generation == entry.generation:
            live.last_entry = entry
        self.journal.submit(entry)

    def committed(self, batch: list[JournalEntry]) -> None:
        """A committed batch: shadow state, events, victories."""
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
        if results:
            # A dead snapshotter must not stop events and bookkeeping: the snapshot loop
            # reports it every period.
            with contextlib.suppress(pykka.ActorDeadError):
                self.snapshotter.tell(Committed(results))
        for raid_id, group in per_raid.items():
            last = group.results[-1]
            live = self.supervisor.live.get(raid_id)
            if live is not None:
                live.committed_seq = last.seq
            if last.victory:
                self.status_changed(raid_id, RaidStatus.DEFEATED, last.at)
            hp = {
                "current_hp": last.boss_hp,
                "total_hp": live.total_hp if live is not None else last.boss_hp,
                "strike_count": last.seq,
                "analysis_points": last.analysis_total,
            }
            self._publish(raid_id, group.events, live, hp, len(group.results))

    def status_changed(self, raid_id: str, status: RaidStatus, ended_at: float | None) -> None:
        statuses = self.supervisor.statuses
        if raid_id in statuses:
            statuses[raid_id] = status
        self.players.invalidate_raid(raid_id)
        with contextlib.suppress(pykka.ActorDeadError):  # reported by the snapshot loop
            self.snapshotter.tell(StatusChanged(raid_id, status, ended_at))
        self.supervisor.spawn(
            self.db.update_boss_raid_state(raid_id, status=status.value, ended_at=ended_at),
            f"status-{raid_id}",
        )
        events = status_events(status)
        if events:
            self._publish(raid_id, events, self.supervisor.live.get(raid_id))

    def publish(self, raid_id: str, events: list[dict[str, Any]]) -> None:
        """Events for the raid's subscribers, outside any strike (e.g. ``resync``)."""
        self._publish(raid_id, events, self.supervisor.live.get(raid_id))

    def _publish(
        self,
        raid_id: str,
        events: list[dict[str, Any]],
        live: LiveRaid | None,
        hp: dict[str, int] | None = None,
        hp_updates: int = 0,
    ) -> None:
        rate = live.hp_events_per_s if live is not None else self.config.raid.hp_events_per_s
        self.broadcaster.tell(Publish(raid_id, events, hp, hp_updates, rate, self.clock()))


def _answer_on_commit(reply: Answer[Any], answer: Any, error: BaseException | None) -> None:
    if error is None:
        reply.set(answer)
    else:
        reply.fail(Unavailable(f"could not store it ({error}); try again"))
