"""PlayerActor: serialises one player's state-changing requests in one raid.

Every request of the player passes through this one actor, in order, and it forwards strikes
to the RaidActor in that order; the RaidActor decides them one at a time in its inbox order,
so two sessions of one player can never use one character twice. Forwarding does not wait for
the RaidActor's answer: the answer goes straight to the caller on the event loop once the
strike is committed (one thread hop fewer per strike), and the outcome comes back to this
actor with the player's next request (``learned``).

Its cache (cooldown, exhausted characters, strike_ids, the raid's state of play) answers
repeated strike_ids and obvious refusals (cooldown, exhausted) without bothering the
RaidActor, which stays the authority: the cache may only ever be behind, never ahead, so
whatever it lets through is checked again. It is rebuilt from the RaidActor on start, so an
evicted actor loses nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pykka

from actors.base import Actor
from actors.bridge import Reply
from actors.inbox import fail_pending
from actors.messages import (
    ClaimRequest,
    PlayerStateRequest,
    PlayerView,
    StrikeOutcome,
    StrikeRequest,
)
from raid.errors import RaidError, Unavailable
from raid.models import PlayerRaidState
from raid.strike import StrikeCommand, cooldown_rejection, exhausted_rejection

log = logging.getLogger(__name__)

KEPT_REPORTS = 64
"""This player's latest accepted strikes kept for repeated strike_ids."""


@dataclass(frozen=True, slots=True)
class PlayerStrike:
    command: StrikeCommand
    now: float
    reply: Reply[Any]
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


class PlayerActor(Actor):
    def __init__(
        self, raid_id: str, user_id: str, raid: pykka.ActorRef[Any], safe_team_size: int
    ) -> None:
        super().__init__()
        self.safe_team_size = safe_team_size  # no team_cap curse can make a team this big invalid
        self.raid_id = raid_id  # the raid this actor serves
        self.user_id = user_id  # the player it serialises
        self.raid = raid  # the authoritative RaidActor
        self.view: PlayerView | None = None  # cached player state; None until (re)built
        self.reports: OrderedDict[str, StrikeOutcome] = OrderedDict()  # strike_id -> outcome

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Invalidate):
            self.view = None
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
                message.reply.set(self._ask(ClaimRequest(self.user_id, message.key, message.now)))
        except RaidError as error:
            message.reply.fail(error)
        return None

    def on_stop(self) -> None:
        fail_pending(self, Unavailable("player session moved; try again"))

    def _ask(self, request: Any) -> Any:
        try:
            answer = self.raid.ask(request)
        except pykka.ActorDeadError:
            self.view = None
            raise Unavailable(f"raid {self.raid_id} is restarting; try again") from None
        if isinstance(answer, RaidError):
            raise answer
        return answer

    def _cached(self, now: float) -> PlayerView:
        if self.view is None:
            self.view = self._ask(PlayerStateRequest(self.user_id, now))
        assert self.view is not None
        return self.view

    def _strike(self, message: PlayerStrike) -> StrikeOutcome | None:
        """A known strike_id's outcome, or None once the strike is forwarded."""
        command = message.command
        known = self.reports.get(command.strike_id)
        if known is not None:
            return known
        view = self._cached(message.now)
        if view.player is not None and command.strike_id not in view.player.strike_ids:
            self._precheck(view, view.player, command, message.now)
        try:
            self.raid.tell(StrikeRequest(command, message.now, message.reply))
        except pykka.ActorDeadError:
            self.view = None
            raise Unavailable(f"raid {self.raid_id} is restarting; try again") from None
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
        player = view.player if view is not None else None
        if player is None:
            self.view = None
            return
        for character_id in result.team:
            player.exhausted[character_id] = result.rest_until
        player.strike_ids[result.strike_id] = result.seq
        player.cooldown_until = max(player.cooldown_until, result.cooldown_until)
        self.view = PlayerView(player, outcome.raid_active, outcome.event_end)
