"""Snapshotter: snapshots built from the journal, off the raid actors.

It keeps a *shadow* copy of each raid's state, fed with the results of committed journal
entries (``apply_strike`` is deterministic, so the shadow equals the RaidActor's state as of
the last commit). A snapshot is then taken from the shadow: a RaidActor never pauses for one,
whatever the number of players. Only players changed since the previous snapshot are
serialised (snapshots are incremental), so its cost follows activity, not raid size.

Only a *saved* snapshot may forget what it covers. A capture leaves every changed player
marked, with the seq of their latest change; the caller reports ``Saved`` once the snapshot
is committed, and only players unchanged since the captured seq are unmarked. A capture whose
save fails, times out or is cancelled (shutdown, a client gone) therefore loses nothing: the
next snapshot still carries those players.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from actors.base import Actor
from actors.bridge import Reply
from actors.restore import StateSource
from raid.codec import boss_to_dict, player_to_dict
from raid.models import RaidState, RaidStatus
from raid.strike import StrikeResult, apply_strike

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Track:
    """Start (or restart) following a raid; its shadow is built here, from the restore's
    decoded inputs, so that start-up does not pay for a second copy."""

    source: StateSource


@dataclass(frozen=True, slots=True)
class Forget:
    raid_id: str


@dataclass(frozen=True, slots=True)
class Committed:
    """Results of committed strikes, in commit order."""

    results: list[StrikeResult]


@dataclass(frozen=True, slots=True)
class StatusChanged:
    raid_id: str
    status: RaidStatus
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class Capture:
    """Build a snapshot of a raid (None if the raid is not followed)."""

    raid_id: str
    reply: Reply[SnapshotData | None]


@dataclass(frozen=True, slots=True)
class Saved:
    """A captured snapshot is committed: players unchanged since ``seq`` are clean."""

    raid_id: str
    seq: int
    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SnapshotData:
    raid_id: str
    seq: int
    current_hp: int
    strike_count: int
    raid_state_json: str
    players: list[tuple[str, str]]


@dataclass(slots=True)
class _Shadow:
    state: RaidState
    dirty: dict[str, int] = field(default_factory=dict)
    """user_id -> seq of the player's latest change not yet in a saved snapshot."""


class Snapshotter(Actor):
    def __init__(self, strike_id_window: int | None = None) -> None:
        super().__init__()
        self.strike_id_window = strike_id_window  # as the RaidActors trim theirs
        self.shadows: dict[str, _Shadow] = {}  # raid_id -> shadow state as of the last commit

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Committed):
            for result in message.results:
                shadow = self.shadows.get(result.raid_id)
                if shadow is None:
                    continue
                if result.seq != shadow.state.boss.strike_count + 1:
                    log.error(
                        "snapshotter: raid %s got seq %d after %d; dropping its shadow",
                        result.raid_id,
                        result.seq,
                        shadow.state.boss.strike_count,
                    )
                    del self.shadows[result.raid_id]
                    continue
                apply_strike(shadow.state, result, None, self.strike_id_window)
                shadow.dirty[result.user_id] = result.seq
            return None
        if isinstance(message, Track):
            state = message.source.build()
            seq = state.boss.strike_count
            self.shadows[state.boss.raid_id] = _Shadow(state, dict.fromkeys(state.players, seq))
            return None
        if isinstance(message, Forget):
            self.shadows.pop(message.raid_id, None)
            return None
        if isinstance(message, StatusChanged):
            shadow = self.shadows.get(message.raid_id)
            if shadow is not None and not shadow.state.boss.status.is_final:
                shadow.state.boss.status = message.status
                shadow.state.boss.ended_at = message.ended_at
            return None
        if isinstance(message, Capture):
            message.reply.set(self._capture(message.raid_id))
            return None
        if isinstance(message, Saved):
            shadow = self.shadows.get(message.raid_id)
            if shadow is not None:
                dirty = shadow.dirty
                for user_id in message.user_ids:
                    changed = dirty.get(user_id)
                    if changed is not None and changed <= message.seq:
                        del dirty[user_id]
            return None
        log.error("snapshotter: unexpected message %r", message)
        return None

    def _capture(self, raid_id: str) -> SnapshotData | None:
        shadow = self.shadows.get(raid_id)
        if shadow is None:
            return None
        dirty = list(shadow.dirty)  # cleared only by Saved, once the snapshot is committed
        players = shadow.state.players
        boss = shadow.state.boss
        return SnapshotData(
            raid_id=raid_id,
            seq=boss.strike_count,
            current_hp=boss.current_hp,
            strike_count=boss.strike_count,
            raid_state_json=orjson.dumps(boss_to_dict(boss)).decode(),
            players=[
                (user, orjson.dumps(player_to_dict(players[user])).decode()) for user in dirty
            ],
        )
