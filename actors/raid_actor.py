"""RaidActor: the one authoritative owner of a raid's state.

It processes its inbox strictly one message at a time; the loop sends its messages in
batches (``actors.batch_sender``), which it handles one message at a time, in order. For a
strike it calls the pure rules (``decide_strike`` then ``apply_strike``) and puts the journal
entry in its outbox; the outbox goes to the loop in one crossing per handled batch, in seq
order, and each accepted strike is answered from there once committed. It never does I/O.

If a handler fails unexpectedly the state may be half-changed, so the actor answers
``unavailable``, reports the crash and stops; the directory restarts the raid from durable
state (latest snapshot + journal).
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.base import Actor
from actors.batch_sender import Batch
from actors.bridge import Answer
from actors.deadlines import caller_gone
from actors.inbox import BoundedInbox, fail_pending
from actors.journaling import claim_record, strike_record
from actors.messages import (
    CheckJournal,
    ClaimableRequest,
    ClaimOutcome,
    ClaimRequest,
    DuplicateStrike,
    EndRaidRequest,
    HubRequest,
    PlayerStateRequest,
    PlayerView,
    RaidSummary,
    StrikeOutcome,
    StrikeRequest,
    SummaryRequest,
    TeamOptionsRequest,
    Tick,
)
from persistence.journal import JournalEntry
from raid.config import Rules
from raid.errors import RaidError, Unavailable
from raid.leaderboard import Leaderboards
from raid.lifecycle import advance_status, end_raid, status_at
from raid.models import RaidState, RaidStatus
from raid.rewards import apply_claim, claimable, decide_claim
from raid.scoring import ScoringContext
from raid.strike import apply_strike, changes_scoring, decide_strike
from raid.strike_ids import maybe_older_repeat
from raid.views import hub_view, strike_events, team_options_view

log = logging.getLogger(__name__)

ANSWERED_ON_COMMIT = object()
"""A handler's result meaning: the Reply is answered later (an accepted strike, on commit)."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A journal entry for the loop's JournalWriter; with a reply, the request to answer
    with ``answer`` once the entry is committed (``unavailable`` if it never is)."""

    entry: JournalEntry
    reply: Answer[Any] | None = None
    answer: Any = None


@dataclass(frozen=True, slots=True)
class RaidSinks:
    """Where a RaidActor sends what leaves it; each callable is safe from the actor thread."""

    journal: Callable[[list[Submission]], None]
    """Hand journal entries to the loop's JournalWriter, in order: one crossing per batch."""
    status_changed: Callable[[str, RaidStatus, float | None], None]
    """The raid's status changed (expiry, operator end), with the boss's ``ended_at``.
    A victory is not reported here: it is known once its strike is committed."""
    crashed: Callable[[str, int, BaseException], None]


@dataclass(frozen=True, slots=True)
class StrikePayload:
    """What consumers of a committed strike entry need: the result and its events."""

    result: Any
    events: list[dict[str, Any]]


class RaidActor(Actor):
    def __init__(
        self,
        rules: Rules,
        state: RaidState,
        generation: int,
        sinks: RaidSinks,
        rng: random.Random | None = None,
        *,
        recent_outcomes: int = 10_000,
        strike_id_window: int | None = None,
        inbox_limit: int = 20_000,
    ) -> None:
        self.inbox_limit = inbox_limit  # requests queued at most; read by _create_actor_inbox
        super().__init__()
        self.rules = rules  # the shared game rules (immutable)
        self.state = state  # authoritative raid state; only this actor's thread touches it
        self.generation = generation  # this incarnation; journal entries carry it
        self.sinks = sinks  # journal, status and crash notifications, all via the bridge
        self.rng = rng or random.Random()  # draws are recorded in results: no seed to persist
        # Derived index over every player, built in on_start: pykka runs __init__ on the
        # caller's thread (the event loop), on_start on the actor's own thread.
        self.boards = Leaderboards()
        self.context = ScoringContext.build(rules, state.boss)  # rebuilt when curses change
        self.recent: OrderedDict[tuple[str, str], StrikeOutcome] = OrderedDict()
        self.recent_outcomes = recent_outcomes  # bound of ``recent``
        self.strike_id_window = strike_id_window  # latest strike_ids per player kept in memory
        self.broken = False  # a handler failed mid-change: answer nothing more from this state
        self.outbox: list[Submission] = []  # journal entries not yet handed to the loop
        self.dropped = 0  # requests not decided because their caller was gone (tests)
        self._handlers: dict[type[Any], Callable[[Any], Any]] = {
            StrikeRequest: lambda message: self._strike(message, message.reply),
            ClaimRequest: self._claim,
            HubRequest: self._hub,
            TeamOptionsRequest: self._team_options,
            ClaimableRequest: self._claimable,
            PlayerStateRequest: self._player_state,
            EndRaidRequest: self._end,
            SummaryRequest: self._summary,
            Tick: self._tick,
        }

    def _create_actor_inbox(self) -> BoundedInbox:  # type: ignore[override]
        """pykka's hook, called by ``Actor.__init__``: the bounded inbox of actors/inbox.py."""
        return BoundedInbox(self.inbox_limit)

    @property
    def raid_id(self) -> str:
        return self.state.boss.raid_id

    def on_receive(self, message: Any) -> Any:
        """Handle a message (or each message of a ``Batch``), then hand the outbox over."""
        try:
            if type(message) is Batch:
                for item in message.messages:
                    self._handle(item)
                return None
            return self._handle(message)
        finally:
            self._flush()

    def _flush(self) -> None:
        if self.outbox:
            outbox, self.outbox = self.outbox, []
            self.sinks.journal(outbox)

    def _handle(self, message: Any) -> Any:
        """Run the message's handler; answer through its Reply, or return to an ``ask``.

        Refusals are answers, not failures: under ``ask`` a ``RaidError`` is *returned*, so
        the asking actor checks ``isinstance(result, RaidError)``.
        """
        handler = self._handlers.get(type(message))
        if handler is None:
            log.error("raid %s: unexpected message %r", self.raid_id, message)
            return None
        reply = getattr(message, "reply", None)
        if reply is not None and caller_gone(reply):
            # Nobody waits for it (timed out, cancelled, connection closed): not decided.
            self.dropped += 1
            reply.fail(Unavailable("the request waited too long and was dropped; try again"))
            return None
        if self.broken:
            failure = Unavailable(f"raid {self.raid_id} is restarting; try again")
            if reply is None:
                return failure
            reply.fail(failure)
            return None
        try:
            result = handler(message)
        except RaidError as error:
            if reply is None:
                return error
            # Entries accepted before this refusal reach the loop before it: an
            # already_claimed then finds the claim it collides with (RaidService.rewards_claim
            # answers it only once that claim is committed).
            self._flush()
            reply.fail(error)
            return None
        except Exception as exc:
            log.exception("raid %s crashed on %s", self.raid_id, type(message).__name__)
            failure = Unavailable(f"raid {self.raid_id} is restarting; try again")
            if reply is not None:
                reply.fail(failure)
            self.broken = True
            self._flush()  # entries accepted before the crash reach the journal before the news
            self.sinks.crashed(self.raid_id, self.generation, exc)
            self.stop()
            return failure if reply is None else None
        if reply is not None and result is not ANSWERED_ON_COMMIT:
            reply.set(result)
        return result

    def on_start(self) -> None:
        """Start-up work over every player, on this actor's thread, before any message."""
        self.boards = Leaderboards.of(self.state.players.values())

    def on_stop(self) -> None:
        fail_pending(self, Unavailable(f"raid {self.raid_id} is restarting; try again"))

    # -- handlers ---------------------------------------------------------------------------

    def _strike(
        self, message: StrikeRequest, reply: Answer[Any] | None
    ) -> StrikeOutcome | DuplicateStrike | CheckJournal | object:
        """Decide and apply a strike. With ``reply``, a new accepted strike is handed to the
        loop with it and answered once committed: ``ANSWERED_ON_COMMIT`` is returned."""
        command = message.command
        player = self.state.players.get(command.user_id)
        if player is not None and command.strike_id in player.strike_ids:
            known = self.recent.get((command.user_id, command.strike_id))
            if known is not None:
                return known
            return DuplicateStrike(player.strike_ids[command.strike_id])
        if (
            player is not None
            and not message.checked
            and maybe_older_repeat(player, command.strike_id)
        ):
            return CheckJournal()
        result = decide_strike(self.rules, self.state, self.context, command, message.now, self.rng)
        apply_strike(self.state, result, self.boards, self.strike_id_window)
        if changes_scoring(result):
            self.context = ScoringContext.build(self.rules, self.state.boss)
        entry = JournalEntry(
            raid_id=self.raid_id,
            generation=self.generation,
            record=strike_record(result),
            payload=StrikePayload(result, strike_events(self.rules, result)),
        )
        outcome = StrikeOutcome(
            result=result,
            entry=entry,
            raid_active=self.state.boss.status is RaidStatus.ACTIVE,
            event_end=self.state.boss.event_end,
        )
        self.outbox.append(Submission(entry, reply, outcome))
        self._remember(command.user_id, command.strike_id, outcome)
        return outcome if reply is None else ANSWERED_ON_COMMIT

    def _remember(self, user_id: str, strike_id: str, outcome: StrikeOutcome) -> None:
        self.recent[(user_id, strike_id)] = outcome
        if len(self.recent) > self.recent_outcomes:
            self.recent.popitem(last=False)

    def _claim(self, message: ClaimRequest) -> ClaimOutcome | object:
        claim = decide_claim(self.rules, self.state, message.user_id, message.key, message.now)
        apply_claim(self.state, claim)
        entry = JournalEntry(
            raid_id=self.raid_id,
            generation=self.generation,
            record=claim_record(claim),
            payload=claim,
        )
        outcome = ClaimOutcome(claim, entry)
        self.outbox.append(Submission(entry, message.reply, outcome))
        return outcome if message.reply is None else ANSWERED_ON_COMMIT

    def _hub(self, message: HubRequest) -> dict[str, Any]:
        return hub_view(self.rules, self.state, self.boards, message.user_id, message.now)

    def _team_options(self, message: TeamOptionsRequest) -> dict[str, Any]:
        return team_options_view(
            self.state, self.context, message.roster, message.user_id, message.now
        )

    def _claimable(self, message: ClaimableRequest) -> dict[str, Any]:
        return dict(claimable(self.rules, self.state, message.user_id, message.now))

    def _player_state(self, message: PlayerStateRequest) -> PlayerView:
        player = self.state.players.get(message.user_id)
        copy = None if player is None else player.copy()
        active = status_at(self.state.boss, message.now) is RaidStatus.ACTIVE
        return PlayerView(copy, active, self.state.boss.event_end)

    def _end(self, message: EndRaidRequest) -> tuple[RaidStatus, float | None]:
        """End the raid now (a raid already over keeps its status); (status, ended_at)."""
        boss = self.state.boss
        before = boss.status
        status = end_raid(boss, message.now)
        if status is not before:
            self._flush()
            self.sinks.status_changed(self.raid_id, status, boss.ended_at)
        return status, boss.ended_at

    def _summary(self, message: SummaryRequest) -> RaidSummary:
        boss = self.state.boss
        return RaidSummary(
            raid_id=boss.raid_id,
            name=boss.name,
            status=status_at(boss, message.now),
            current_hp=boss.current_hp,
            total_hp=boss.total_hp,
            strike_count=boss.strike_count,
        )

    def _tick(self, message: Tick) -> None:
        changed = advance_status(self.state.boss, message.now)
        if changed is not None:
            self._flush()
            self.sinks.status_changed(self.raid_id, changed, self.state.boss.ended_at)
