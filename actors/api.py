"""The one interface between the gateway and the raids: plain data in, plain data out.

The gateway (``server/``) reaches the raids only through ``RaidApi``: every argument is a
MessagePack-able value (strings, numbers, lists, dicts, str enums, frozen dataclasses of
those), every reply a dict of such values or a ``RaidError`` refusal. Events come back through
the ``EventSink`` the gateway attaches, addressed to subscriber ids, never to sessions. Nothing
on this side knows a session, a socket or a wire format, so a process boundary can later be put
here (several gateway processes, raids in host processes) without touching rules or actors.

``Telemetry`` is what the actors report about themselves; the server's Prometheus metrics
implement it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from actors.raids import CharacterGrant
from raid.config import Action

Rid = Any
"""A request id, echoed as the client sent it (string, number or null)."""

StrikeDone = Callable[[dict[str, Any] | None, BaseException | None], None]
"""How a strike is answered without a future: ``(report, None)`` or ``(None, error)``."""


async def settle(work: Awaitable[dict[str, Any]], done: StrikeDone) -> None:
    """Await an async strike and hand its outcome to ``done``: how a ``strike_nowait``
    finishes the cases that must await something."""
    try:
        report = await work
    except Exception as exc:  # noqa: BLE001 - handed to done, which answers and logs it
        done(None, exc)
    else:
        done(report, None)


class EventSink(Protocol):
    """Where events leave the raids; called on the event loop, in publication order."""

    def subscribed(
        self, subscriber_id: str, reply: dict[str, Any], replay: list[dict[str, Any]]
    ) -> None:
        """A subscription's reply fields (``seq``, maybe ``resync``), then replayed events."""
        ...

    def deliver(self, subscriber_ids: Sequence[str], events: list[dict[str, Any]]) -> None:
        """Events for these subscribers, in order (the same list for each of them)."""
        ...


class Telemetry(Protocol):
    """What the actors report about themselves (server/metrics.py implements it)."""

    def actors_live(self, kind: str, count: int) -> None: ...

    def count_coalesced(self, count: int) -> None: ...

    def journal_batch(self, size: int, seconds: float) -> None: ...

    def snapshot_took(self, seconds: float) -> None: ...


class RaidApi(Protocol):
    """The raids as the gateway sees them (implemented by actors.service.RaidService).

    Refusals are raised as ``RaidError`` subclasses (raid/errors.py); dict results are the
    reply fields, to which the gateway adds ``op`` and ``rid``.
    """

    def attach(self, sink: EventSink) -> None:
        """Where subscription replies and events go from now on."""
        ...

    async def hello(self, user_id: str, role: str) -> dict[str, Any]:
        """``{"raids": [{raid_id, name, status}], "server_time": float}``."""
        ...

    async def hub(self, user_id: str, raid_id: str) -> dict[str, Any]: ...

    async def subscribe(
        self, subscriber_id: str, raid_id: str, since_seq: int | None, rid: Rid
    ) -> None:
        """Subscribe; the reply (``rid`` included) and replayed events go to the sink."""
        ...

    async def unsubscribe(self, subscriber_id: str, raid_id: str) -> None: ...

    def subscriber_gone(self, subscriber_id: str) -> None:
        """The subscriber's connection is gone: drop its subscriptions."""
        ...

    async def team_options(self, user_id: str, raid_id: str) -> dict[str, Any]: ...

    async def strike(
        self, user_id: str, raid_id: str, action: Action, team: Sequence[str], strike_id: str
    ) -> dict[str, Any]: ...

    def strike_nowait(
        self,
        user_id: str,
        raid_id: str,
        action: Action,
        team: Sequence[str],
        strike_id: str,
        done: StrikeDone,
    ) -> None:
        """``strike`` for the hot path: returns at once; ``done(report, None)`` or
        ``done(None, error)`` is called on the event loop once the strike is committed or
        refused (a ``RaidError``; any other exception is an internal failure)."""
        ...

    async def rewards_list(self, user_id: str, raid_id: str) -> dict[str, Any]: ...

    async def rewards_claim(self, user_id: str, raid_id: str, key: str) -> dict[str, Any]: ...

    async def create_raid(
        self,
        boss: str,
        start: float | None = None,
        end: float | None = None,
        raid_id: str | None = None,
    ) -> str: ...

    async def end_raid_status(self, raid_id: str) -> str:
        """End the raid now; its status afterwards."""
        ...

    async def grant_roster(self, user_id: str, grants: list[CharacterGrant]) -> list[str]: ...

    async def take_snapshot(self, raid_id: str) -> dict[str, Any]:
        """``{"snapshot_id", "seq"}``."""
        ...

    async def restore_to_snapshot(self, raid_id: str, snapshot_id: int) -> dict[str, Any]:
        """Move a running raid to a snapshot (``admin.raid.restore``); the reply fields."""
        ...

    async def rewards_pending(self, limit: int) -> list[dict[str, Any]]: ...

    async def rewards_ack(self, ids: Sequence[int]) -> int: ...
