"""Snapshot scheduling: every live raid with new committed strikes, every interval and at
shutdown, one snapshot at a time (they form an incremental chain). The Snapshotter builds
them off the RaidActors; this module saves them and keeps each raid's latest snapshot seq."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors.api import Telemetry
from actors.bridge import LoopBridge
from actors.calls import REQUEST_TIMEOUT_S
from actors.snapshotter import Capture, Saved, SnapshotData
from actors.supervision import LiveRaid
from persistence.database import Database
from persistence.records import SnapshotInfo
from raid.errors import RaidError, Unavailable

log = logging.getLogger(__name__)


class SnapshotScheduler:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        telemetry: Telemetry,
        bridge: LoopBridge,
        snapshotter: pykka.ActorRef[Any],
        live: dict[str, LiveRaid],
        lock: asyncio.Lock,
    ) -> None:
        self.db = db
        self.clock = clock
        self.telemetry = telemetry
        self.bridge = bridge
        self.snapshotter = snapshotter  # builds the snapshots from its shadow states
        self.live = live  # the supervisor's live raids
        self._lock = lock  # one snapshot at a time (incremental chain); rewrites hold it too

    async def every(self, interval_s: float) -> None:
        """Snapshot changed raids every ``interval_s`` seconds, forever (a task).

        Survives every failure: each is logged and the next period tries again (the journal
        replay on restart would otherwise grow without bound)."""
        while True:
            await asyncio.sleep(interval_s)
            await self.changed("snapshot")

    async def changed(self, what: str) -> int:
        """Snapshot every live raid with journal entries since its last snapshot; how many.

        A raid whose snapshot fails (a timeout, a dead actor, a database error) is logged
        and skipped; the other raids are still snapshotted.
        """
        taken = 0
        for raid_id, live in list(self.live.items()):
            if not live.needs_snapshot:
                continue
            try:
                await self.snapshot(raid_id)
                taken += 1
            except RaidError as error:
                log.error("%s of %s failed: %s", what, raid_id, error.message)
            except Exception:  # any failure: the loop must live on
                log.exception("%s of %s failed", what, raid_id, extra={"raid": raid_id})
        return taken

    async def snapshot(self, raid_id: str) -> SnapshotInfo:
        """Save a snapshot of the raid as of its last committed journal entry."""
        async with self._lock:
            started = time.perf_counter()
            reply, future = self.bridge.reply()
            try:
                self.snapshotter.tell(Capture(raid_id, reply))
                data: SnapshotData | None = await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
            except pykka.ActorDeadError:
                raise Unavailable("the snapshotter has stopped; see the server log") from None
            except TimeoutError:
                raise Unavailable(f"the snapshot of {raid_id} was not captured in time") from None
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
                log.exception("saving a snapshot of %s failed", raid_id)
                raise Unavailable(f"snapshot of {raid_id} failed: {exc}") from exc
            # Only now may the snapshotter forget these players (actors/snapshotter.py).
            with contextlib.suppress(pykka.ActorDeadError):
                self.snapshotter.tell(Saved(raid_id, data.seq, tuple(u for u, _ in data.players)))
            self.telemetry.snapshot_took(time.perf_counter() - started)
            live = self.live.get(raid_id)
            if live is not None:
                live.snapshot_seq = max(live.snapshot_seq, info.seq)
            return info
