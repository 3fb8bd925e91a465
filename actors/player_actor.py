"""PlayerActor: serialises one player's state-changing requests in one raid.

It is a ``LoopActor``: its messages run on the event loop's dispatcher, not on a thread of its
own, so a raid can hold one per player (100,000 and more) and waking one costs no thread
switch. Running on the loop, it never blocks: it talks to the RaidActor with messages only
(through the raid's ``BatchSender``), and learns answers as messages.

Every request of the player passes through this one actor, in order, and it forwards strikes
to the RaidActor in that order; the RaidActor decides them one at a time in its inbox order,
so two sessions of one player can never use one character twice. Forwarding does not wait for
the RaidActor's answer: the answer goes straight to the caller on the event loop once the
strike is committed, and the outcome comes back to this actor with the player's next request
(``learned``).

Its cache (cooldown, exhausted characters, strike_ids, the raid's state of play) answers
repeated strike_ids and obvious refusals (cooldown, exhausted) without bothering the
RaidActor, which stays the authority: the cache may only ever be behind, never ahead, so
whatever it lets through is checked again. It is fetched from the RaidActor (a
``PlayerStateRequest`` answered with a ``ViewLoaded`` message) when missing; meanwhile requests
go to the RaidActor unchecked. An evicted actor loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pykka

from actors.batch_sender import BatchSender
from actors.bridge import Answer, Reply
from actors.loop_actor import LoopActor, LoopDispatcher
from actors.messages import (
    ClaimRequest,
    PlayerStateRequest,
    PlayerView,
    StrikeOutcome,
    StrikeRequest,
)
from raid.errors import RaidError, Unavailable
from raid.models import PlayerRaidState
from raid.strike import (
    StrikeCommand,
    cooldown_rejection,
    exhausted_rejection,
)
from raid.strike_ids import maybe_older_repeat, remember

log = logging.getLogger(__name__)

KEPT_REPORTS = 4
"""This player's latest accepted strikes kept for repeated strike_ids: a client resends its
last strike or two; older repeats are answered by the RaidActor (its ``recent_outcomes``,
then the journal). Each kept outcome holds ~800 bytes (result, journal entry, future), and
every PlayerActor keeps its own: 16 were 12 KiB per player."""


@dataclass(frozen=True, slots=True)
class PlayerStrike:
    command: StrikeCommand
    now: float
    reply: Answer[Any]
    learned: tuple[StrikeOutcome, ...] = ()
    """Outcomes of this player's earlier strikes the actor has not seen yet."""


@dataclass(frozen=True, slots=True)
class PlayerClaim:
    key: str
    now: float
    reply: Reply[Any]


@dataclass(frozen=True, slots=True)
class Invalidate:
    """The raid changed under the cache (status change, restart): rebuild it on next use."""


@dataclass(frozen=True, slots=True)
class ViewLoaded:
    """The RaidActor's answer to this actor's PlayerStateRequest number ``epoch``."""

    epoch: int
    view: PlayerView | None


class _ToActor:
    """An ``Answer`` that comes back to a PlayerActor as a ``ViewLoaded`` message."""

    __slots__ = ("epoch", "ref")

    def __init__(self, ref: Any, epoch: int) -> None:
        self.ref = ref
        self.epoch = epoch

    def set(self, value: Any) -> None:
        self._tell(value if isinstance(value, PlayerView) else None)

    def fail(self, error: BaseException) -> None:
        self._tell(None)

    def _tell(self, view: PlayerView | None) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.ref.tell(ViewLoaded(self.epoch, view))


class PlayerActor(LoopActor):
    def __init__(
        self,
        dispatcher: LoopDispatcher,
        raid_id: str,
        user_id: str,
        raid: BatchSender,
        safe_team_size: int,
        strike_id_window: int = 64,
    ) -> None:
        super().__init__(dispatcher)
        self.safe_team_size = safe_team_size  # no team_cap curse can make a team this big invalid
        self.strike_id_window = strike_id_window  # strike_ids the cached view keeps at most
        self.raid_id = raid_id  # the raid this actor serves
        self.user_id = user_id  # the player it serialises
        self.raid = raid  # the authoritative RaidActor's batched inbox
        self.view: PlayerView | None = None  # cached player state; None until (re)built
        self.epoch = 0  # numbers view requests: only the latest one's answer is taken
        self.loading = False  # a view request is on its way
        self.reports: OrderedDict[str, StrikeOutcome] = OrderedDict()  # strike_id -> outcome

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ViewLoaded):
            if message.epoch == self.epoch:
                self.loading = False
                self.view = message.view
            return None
        if isinstance(message, Invalidate):
            self._forget_view()
            return None
        if not isinstance(message, PlayerStrike | PlayerClaim):
            log.error("player %s: unexpected message %r", self.user_id, message)
            return None
        try:
            if isinstance(message, PlayerStrike):
                for outcome in message.learned:
                    self._learn(outcome)
                answer = self._strike(message)
                if answer is not None:
                    message.reply.set(answer)
            else:
                self.raid.send(ClaimRequest(self.user_id, message.key, message.now, message.reply))
        except RaidError as error:
            message.reply.fail(error)
        return None

    def on_dead_letter(self, message: Any) -> None:
        reply = getattr(message, "reply", None)
        if reply is not None:
            reply.fail(Unavailable("player session moved; try again"))

    def _forget_view(self) -> None:
        self.view = None
        self.loading = False
        self.epoch += 1

    def _request_view(self, now: float) -> None:
        if not self.loading:
            self.loading = True
            self.epoch += 1
            answer = _ToActor(self.actor_ref, self.epoch)
            self.raid.send(PlayerStateRequest(self.user_id, now, answer))

    def _strike(self, message: PlayerStrike) -> StrikeOutcome | None:
        """A known strike_id's outcome, or None once the strike is forwarded."""
        command = message.command
        known = self.reports.get(command.strike_id)
        if known is not None:
            return known
        view = self.view
        if view is None:
            self._request_view(message.now)
        elif (
            view.player is not None
            and command.strike_id not in view.player.strike_ids
            and not maybe_older_repeat(view.player, command.strike_id)  # the RaidActor asks
        ):
            self._precheck(view, view.player, command, message.now)
        self.raid.send(StrikeRequest(command, message.now, message.reply))
        return None

    def _precheck(
        self, view: PlayerView, player: PlayerRaidState, command: StrikeCommand, now: float
    ) -> None:
        """Refuse what the RaidActor would surely refuse, in the order of RULES.md.

        Only when the raid is surely still active and the team's shape surely valid (no bigger
        than any team_cap curse allows): earlier checks belong to the RaidActor, whose answer
        decides which error comes first.
        """
        team = command.team
        if not view.raid_active or now >= view.event_end:
            return
        if not 1 <= len(team) <= self.safe_team_size:
            return
        if len(set(team)) != len(team):
            return
        if now < player.cooldown_until:
            raise cooldown_rejection(player.cooldown_until, now)
        missing = [c for c in team if c not in command.roster]
        if missing:
            return
        tired = [c for c in team if player.is_exhausted(c, now)]
        if tired:
            raise exhausted_rejection(tired)

    def _learn(self, outcome: StrikeOutcome) -> None:
        result = outcome.result
        if result.strike_id in self.reports:
            return
        self.reports[result.strike_id] = outcome
        if len(self.reports) > KEPT_REPORTS:
            self.reports.popitem(last=False)
        view = self.view
        if view is None:  # a view on its way is behind at worst, which is safe
            return
        player = view.player
        if player is None:
            self._forget_view()
            return
        for character_id in result.team:
            player.exhausted[character_id] = result.rest_until
        player.strikes += 1
        remember(player, result.strike_id, result.seq, self.strike_id_window)
        player.cooldown_until = max(player.cooldown_until, result.cooldown_until)
        if view.raid_active is not outcome.raid_active or view.event_end != outcome.event_end:
            self.view = PlayerView(player, outcome.raid_active, outcome.event_end)
