"""Python client for the World-Threat Raid server (asyncio, websockets, MessagePack).

::

    import raidclient

    async with await raidclient.connect("ws://127.0.0.1:8765/ws", token) as client:
        hub = await client.hub("leviathan-1")
        options = await client.team_options("leviathan-1")
        report = await client.strike("leviathan-1", "fight", options.best_team())

See docs/client.md for the whole API and a complete example.
"""

from raidclient.backoff import Backoff
from raidclient.client import RaidClient, Subscription, connect
from raidclient.errors import (
    AlreadyClaimed,
    BadRequest,
    CharacterExhausted,
    CharacterNotOwned,
    ConnectionLost,
    Forbidden,
    Internal,
    InvalidTeam,
    NotEligible,
    OnCooldown,
    ProtocolViolation,
    RaidClientError,
    RaidNotActive,
    RateLimited,
    RequestTimeout,
    ServerError,
    Unauthenticated,
    Unavailable,
    UnknownOp,
    UnknownRaid,
)
from raidclient.models import (
    AnnouncementEvent,
    BreakthroughEvent,
    CharacterOption,
    Event,
    Hello,
    HpEvent,
    Hub,
    MilestoneEvent,
    PendingReward,
    RaidEndedEvent,
    RaidView,
    Resync,
    RetaliationEvent,
    Reward,
    Rewards,
    Snapshot,
    StrikeReport,
    TeamOptions,
    VictoryEvent,
)
from raidclient.wire import Format

__all__ = [
    "AlreadyClaimed",
    "AnnouncementEvent",
    "Backoff",
    "BadRequest",
    "BreakthroughEvent",
    "CharacterExhausted",
    "CharacterNotOwned",
    "CharacterOption",
    "ConnectionLost",
    "Event",
    "Forbidden",
    "Format",
    "Hello",
    "HpEvent",
    "Hub",
    "Internal",
    "InvalidTeam",
    "MilestoneEvent",
    "NotEligible",
    "OnCooldown",
    "PendingReward",
    "ProtocolViolation",
    "RaidClient",
    "RaidClientError",
    "RaidEndedEvent",
    "RaidNotActive",
    "RaidView",
    "RateLimited",
    "RequestTimeout",
    "Resync",
    "RetaliationEvent",
    "Reward",
    "Rewards",
    "ServerError",
    "Snapshot",
    "StrikeReport",
    "Subscription",
    "TeamOptions",
    "Unauthenticated",
    "Unavailable",
    "UnknownOp",
    "UnknownRaid",
    "VictoryEvent",
    "connect",
]
